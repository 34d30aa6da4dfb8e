// swift-tools-version: 6.0
import PackageDescription

/// One settings array for every Swift target: Swift 6 language mode everywhere.
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "UserSwap",
    products: [
        .library(name: "UserSwap", targets: ["UserSwap"]),
        .executable(name: "userswap", targets: ["userswap"]),
    ],
    targets: [
        // What Swift cannot import: variadic syscalls, ioctl/fcntl, futex, macros. No logic.
        .target(name: "CUserSwap"),
        .target(
            name: "UserSwap",
            dependencies: ["CUserSwap"],
            swiftSettings: swiftSettings
        ),
        // The command line: argument parser, commands, the benchmark harness. A library so
        // that tests can drive the parser as a pure function.
        .target(
            name: "UserSwapCLI",
            dependencies: ["UserSwap", "CUserSwap"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "userswap",
            dependencies: ["UserSwapCLI"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "UserSwapTests",
            dependencies: ["UserSwap", "UserSwapCLI", "CUserSwap"],
            swiftSettings: swiftSettings
        ),
    ]
)
