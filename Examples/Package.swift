// swift-tools-version: 6.0
// Small programs that use UserSwap as a client package does: `swift run -c release Records`
// (or KeyValueCache, ImageBuffer, Tenants) from this folder. Each verifies its own data and
// exits 1 when a value is wrong; `--small` runs it on small sizes (what the test suite does).
import PackageDescription

let examples = ["Records", "KeyValueCache", "ImageBuffer", "Tenants"]

let package = Package(
    name: "Examples",
    dependencies: [.package(name: "UserSwap", path: "..")],
    targets: examples.map { name in
        .executableTarget(
            name: name,
            dependencies: [.product(name: "UserSwap", package: "UserSwap")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    }
)
