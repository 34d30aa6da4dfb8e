// swift-tools-version: 6.0
import PackageDescription

/// One settings array for every Swift target: Swift 6 language mode everywhere.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6)
]

/// The release `userswap` binary carries the Swift runtime and Foundation inside it instead of
/// loading them as shared libraries: a process then holds only the pages of them it touches,
/// without the dynamic loader's symbol tables and relocations of every library
/// (docs/PERFORMANCE.md, "Memory a user sees"). A link-time choice only, so no module is
/// compiled twice. The objects were compiled for the shared runtime, whose autolink entries do
/// not name the static archives' own dependencies: these follow in link order (each after the
/// archives that use it). lld packs the relative relocations (`DT_RELR`, glibc 2.36): 1.8 MiB of
/// `.rela.dyn`, read at every start, become 14 KiB.
let staticRuntimeFlags =
    [
        "-static-stdlib", "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
    ]
    + [
        "Foundation", "CoreFoundation", "FoundationInternationalization", "FoundationEssentials",
        "_FoundationCollections", "_FoundationCShims", "_FoundationICU", "stdc++",
    ].flatMap { ["-Xlinker", "-l\($0)"] }

let package = Package(
    name: "UserSwap",
    products: [
        .library(name: "UserSwap", targets: ["UserSwap"]),
        .library(name: "UserSwapCompression", targets: ["UserSwapCompression"]),
        .library(name: "UserSwapEncryption", targets: ["UserSwapEncryption"]),
        .library(name: "UserSwapRedis", targets: ["UserSwapRedis"]),
        .executable(name: "userswap", targets: ["userswap"]),
        // libuserswap.so for C, C++ and Python (include/userswap.h, `make install`). SwiftPM names
        // the file after the product; the Makefile installs it as libuserswap.so, the soname set
        // in UserSwapC's linker settings.
        .library(name: "UserSwapC", type: .dynamic, targets: ["UserSwapC"]),
    ],
    targets: [
        // What Swift cannot import: variadic syscalls, ioctl/fcntl, futex, macros. No logic.
        .target(name: "CUserSwap"),
        // io_uring for the I/O engine: liburing from Debian's liburing-dev (scripts/bootstrap),
        // found by pkg-config, and thin C wrappers of its static inline helpers. A hard
        // dependency of the engine: the bootstrap installs it everywhere we build, and the
        // engine picks the thread pool at run time when the kernel refuses io_uring.
        .systemLibrary(name: "CURing", pkgConfig: "liburing", providers: [.apt(["liburing-dev"])]),
        .target(name: "CUserSwapURing", dependencies: ["CURing"]),
        // fork + exec of a child that dies with its parent (the private redis-server): the part
        // between fork and exec must be async-signal-safe, so it is C.
        .target(name: "CUserSwapProcess"),
        // libsodium for the encryption tier: every space seals its devices by default, so the
        // cipher is the engine's (Debian's libsodium-dev, installed by scripts/bootstrap).
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        .target(
            name: "UserSwap",
            dependencies: ["CUserSwap", "CUserSwapURing", "CSodium"],
            swiftSettings: swiftSettings
        ),
        // C libraries from Debian's -dev packages (installed by scripts/bootstrap), for the tiers.
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // hiredis without pkg-config: its .pc file adds -D_FILE_OFFSET_BITS=64, a flag SwiftPM
        // prohibits and warns about in every build of every client, even one that does not use
        // UserSwapRedis. The module map includes <hiredis/hiredis.h> from /usr/include and links
        // -lhiredis itself; nothing else is needed (the flag changes nothing on 64-bit Linux).
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        // What tests (and the benchmarks' fault scenarios) use to make the engine fail on purpose:
        // a backend that injects I/O errors, torn transfers and silent corruption. Not part of any
        // library product, so no client of UserSwap links it.
        .target(
            name: "UserSwapTestSupport",
            dependencies: ["UserSwap"],
            swiftSettings: swiftSettings
        ),
        // Tiers: each plugs into the engine through the backend protocol.
        .target(
            name: "UserSwapCompression",
            dependencies: ["UserSwap", "CLZ4", "CZstd"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "UserSwapEncryption",
            dependencies: ["UserSwap"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "UserSwapRedis",
            dependencies: ["UserSwap", "CHiredis", "CUserSwapProcess"],
            swiftSettings: swiftSettings
        ),
        // The C interface: include/userswap.h, seen by Swift through this module map, and the
        // `@_cdecl` entry points that implement it over the engine.
        .systemLibrary(name: "CUserSwapAPI", path: "include"),
        .target(
            name: "UserSwapC",
            dependencies: ["UserSwap", "UserSwapRedis", "CUserSwapAPI"],
            swiftSettings: swiftSettings,
            linkerSettings: [.unsafeFlags(["-Xlinker", "-soname", "-Xlinker", "libuserswap.so"])]
        ),
        // The benchmarks: the harness, the scenarios `userswap bench` runs, the workloads (which
        // `userswap run` runs too), and the console, size and scratch-folder plumbing the user
        // commands share with them. No test code: a test that needs a failing device hands one
        // in (`SwapDeviceOverride`, debug builds only).
        .target(
            name: "UserSwapBench",
            dependencies: [
                "UserSwap", "CUserSwap", "UserSwapCompression", "UserSwapEncryption", "UserSwapRedis",
                "CUserSwapProcess", "CUserSwapURing",
            ],
            swiftSettings: swiftSettings
        ),
        // The command line: argument parser, help, and the user commands (format, inspect, run,
        // redis-clean; bench hands over to UserSwapBench). A library so that tests can drive the
        // parser as a pure function.
        .target(
            name: "UserSwapCLI",
            dependencies: ["UserSwapBench", "UserSwap", "CUserSwap", "UserSwapRedis", "CUserSwapProcess"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "userswap",
            dependencies: ["UserSwapCLI"],
            swiftSettings: swiftSettings,
            linkerSettings: [.unsafeFlags(staticRuntimeFlags, .when(configuration: .release))]
        ),
        .testTarget(
            name: "UserSwapTests",
            dependencies: [
                "UserSwap", "UserSwapCLI", "CUserSwap", "UserSwapCompression", "UserSwapEncryption", "UserSwapRedis", "UserSwapTestSupport",
                "UserSwapBench",
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
