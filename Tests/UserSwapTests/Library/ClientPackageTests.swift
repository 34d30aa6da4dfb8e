import Foundation
import Testing

/// A package outside the repository, as a user writes one: it depends on UserSwap by path,
/// shares one `SwappableArray` between two threads in Swift 6 mode (no `nonisolated(unsafe)`),
/// builds in release with no warning, and verifies its data when run. The same package builds
/// the programs of `Examples/` (their sources linked in, so that one release build serves both)
/// and runs each on small sizes: each verifies its own data. The library it builds in release
/// carries nothing of the tests.
///
/// It builds UserSwap's library in release from nothing (about 35 s on two busy cores), in a
/// scratch folder of its own, so it neither reuses nor disturbs the repository's `.build`.
@Suite("A client package builds without warnings and runs")
struct ClientPackageTests {
    @Test(
        "a package depending on UserSwap by path builds in release with zero warnings and verifies its data",
        .timeLimit(.minutes(10)))
    func clientPackage() throws {
        let root = try #require(Self.repositoryRoot(), "no Package.swift of UserSwap above \(#filePath)")
        let swift = try #require(Self.swiftExecutable(), "no swift on PATH nor at /opt/swift/usr/bin/swift")
        let files = FileManager.default
        let scratch = files.temporaryDirectory.appendingPathComponent("userswap-client-\(UUID().uuidString)")
        defer { try? files.removeItem(at: scratch) }
        let sources = scratch.appendingPathComponent("Sources/Client")
        try files.createDirectory(at: sources, withIntermediateDirectories: true)
        // SwiftPM names a package required by path after its folder.
        let identity = root.lastPathComponent.lowercased()
        try Self.manifest(root: root.path, identity: identity)
            .write(to: scratch.appendingPathComponent("Package.swift"), atomically: true, encoding: .utf8)
        try Self.program.write(to: sources.appendingPathComponent("main.swift"), atomically: true, encoding: .utf8)
        let trapSources = scratch.appendingPathComponent("Sources/Trap")
        try files.createDirectory(at: trapSources, withIntermediateDirectories: true)
        try Self.trapProgram.write(to: trapSources.appendingPathComponent("main.swift"), atomically: true, encoding: .utf8)
        for example in Self.examples {
            try files.createSymbolicLink(
                at: scratch.appendingPathComponent("Sources/\(example)"),
                withDestinationURL: root.appendingPathComponent("Examples/Sources/\(example)"))
        }

        let build = try DeviceTestSupport.run(
            swift.path,
            [
                "build", "-c", "release", "--package-path", scratch.path,
                "--scratch-path", scratch.appendingPathComponent(".build").path,
            ])
        #expect(build.status == 0, "swift build failed:\n\(build.output)")
        let warnings = build.output.split(separator: "\n").filter { $0.contains("warning:") }
        #expect(warnings.isEmpty, "the client's build printed warnings:\n\(warnings.joined(separator: "\n"))")
        guard build.status == 0 else { return }
        try Self.expectNoTestScaffolding(in: scratch.appendingPathComponent(".build/release/UserSwap.build"))

        let binary = scratch.appendingPathComponent(".build/release/Client")
        let run = try DeviceTestSupport.run(binary.path, [])
        print("client package: \(run.output.trimmingCharacters(in: .whitespacesAndNewlines))")
        #expect(run.status == 0, "the client failed:\n\(run.output)")
        #expect(run.output.contains("verified 30000 elements"), "\(run.output)")

        // A trap in the release library prints its message (the standard library's precondition
        // would stop on an illegal instruction and say nothing).
        let trap = try DeviceTestSupport.run(scratch.appendingPathComponent(".build/release/Trap").path, [])
        #expect(trap.status != 0, "the trapping program exited normally:\n\(trap.output)")
        #expect(
            trap.output.contains("Fatal error: a swap header describes 1...") && trap.output.contains("not 0"),
            "a release-build trap did not print its message:\n\(trap.output.prefix(2000))")

        for example in Self.examples {
            let binary = scratch.appendingPathComponent(".build/release/\(example)")
            let run = try DeviceTestSupport.run(binary.path, ["--small"])
            print(run.output.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(run.status == 0, "Examples/\(example) failed:\n\(run.output)")
            #expect(run.output.contains("\(example): verified"), "\(run.output)")
        }
    }

    /// The programs of `Examples/`, one executable target each.
    static let examples = ["Records", "KeyValueCache", "ImageBuffer", "Tenants"]

    /// What only tests may see (hooks, planted bugs, the test scheduler, fault injection),
    /// as it appears in a symbol name; a release build of the library defines none of it.
    static let scaffoldingNames = ["testhook", "planted", "recordafterdelete", "skiprecheck", "yieldscheduler", "faultinjecting"]

    /// Lists the symbols of every object file of the `UserSwap` module in a release build and
    /// expects none to name test scaffolding (`scaffoldingNames`): hooks and planted bugs are
    /// compiled only under `#if DEBUG`, fault injection lives in `UserSwapTestSupport`.
    static func expectNoTestScaffolding(in objects: URL) throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: objects.path).filter { $0.hasSuffix(".o") }
        #expect(files.count > 20, "expected the module's object files in \(objects.path), found \(files)")
        let nm = try DeviceTestSupport.run(
            "/usr/bin/env", ["nm", "--defined-only"] + files.map { objects.appendingPathComponent($0).path })
        try #require(nm.status == 0, "nm failed:\n\(nm.output)")
        // Each symbol line is "ADDRESS TYPE NAME"; the lines naming the object files are not.
        let symbols = nm.output.split(separator: "\n").compactMap { line -> Substring? in
            let fields = line.split(separator: " ")
            return fields.count == 3 ? fields[2] : nil
        }
        #expect(symbols.count > 1000, "nm listed only \(symbols.count) symbols")
        let found = symbols.filter { line in Self.scaffoldingNames.contains { line.lowercased().contains($0) } }
        #expect(found.isEmpty, "a release build defines test scaffolding:\n\(found.prefix(20).joined(separator: "\n"))")
    }

    /// The folder holding this package's Package.swift, found from this file's path.
    static func repositoryRoot() -> URL? {
        var folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while folder.path != "/" {
            let manifest = folder.appendingPathComponent("Package.swift")
            if let text = try? String(contentsOf: manifest, encoding: .utf8), text.contains("name: \"UserSwap\"") {
                return folder
            }
            folder = folder.deletingLastPathComponent()
        }
        return nil
    }

    /// The toolchain's `swift`, found as the Makefile finds it: on PATH, else /opt/swift.
    static func swiftExecutable() -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let candidates = path.split(separator: ":").map { "\($0)/swift" } + ["/opt/swift/usr/bin/swift"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }.map { URL(fileURLWithPath: $0) }
    }

    static func manifest(root: String, identity: String) -> String {
        """
        // swift-tools-version: 6.0
        import PackageDescription

        let package = Package(
            name: "Client",
            dependencies: [.package(path: "\(root)")],
            targets: [
                .executableTarget(
                    name: "Client",
                    dependencies: [.product(name: "UserSwap", package: "\(identity)")],
                    swiftSettings: [.swiftLanguageMode(.v6)]
                ),
                .executableTarget(
                    name: "Trap",
                    dependencies: [.product(name: "UserSwap", package: "\(identity)")],
                    swiftSettings: [.swiftLanguageMode(.v6)]
                ),
            ] + \(examples).map { name in
                .executableTarget(
                    name: name,
                    dependencies: [.product(name: "UserSwap", package: "\(identity)")],
                    swiftSettings: [.swiftLanguageMode(.v6)]
                )
            }
        )

        """
    }

    /// Breaks a documented precondition of the library (a swap header of 0 pages): a trap.
    static let trapProgram = """
        import UserSwap

        let pages = Int(CommandLine.arguments.count) - 1
        print(SwapHeader(pageCount: pages).pageCount)

        """

    /// 20,000 records of 32 bytes (625 KiB) in a 256 KiB budget: one thread appends the second
    /// half while the other reads random elements; then the main thread iterates all of them.
    static let program = #"""
        import Foundation
        import Synchronization
        import UserSwap

        struct Record: Equatable {
            var id: Int64
            var a: UInt64
            var b: UInt64
            var c: UInt64
            init(_ i: Int) { id = Int64(i); a = UInt64(i) &* 3; b = UInt64(i) &* 5; c = UInt64(i) &* 7 }
        }

        let space = try SwapSpace(.init(memory: 256 << 10, devices: [.memory(bytes: 16 << 20)]))
        let records = try SwappableArray<Record>(count: 0, in: space)
        let count = 20_000
        try records.append(contentsOf: (0..<count / 2).map(Record.init))
        let verified = Atomic<Int>(0)
        let failures = Atomic<Int>(0)
        let done = DispatchSemaphore(value: 0)
        for t in 0..<2 {
            Thread.detachNewThread {
                do {
                    if t == 0 {
                        for i in count / 2..<count { try records.append(Record(i)) }
                    } else {
                        for _ in 0..<count / 2 {
                            let i = Int.random(in: 0..<records.count)
                            if try records.element(at: i) != Record(i) { failures.add(1, ordering: .relaxed) }
                        }
                        verified.add(count / 2, ordering: .relaxed)
                    }
                } catch {
                    print("error: \(error)")
                    failures.add(1, ordering: .relaxed)
                }
                done.signal()
            }
        }
        done.wait()
        done.wait()
        var index = 0
        for record in records {
            if record != Record(index) { failures.add(1, ordering: .relaxed) }
            index += 1
        }
        verified.add(index, ordering: .relaxed)
        let swapIns = space.statistics[.swapIns]
        guard failures.load(ordering: .relaxed) == 0, index == count, swapIns > 0 else {
            print("FAILED: \(failures.load(ordering: .relaxed)) mismatches, \(index) elements, \(swapIns) swap-ins")
            exit(1)
        }
        print("verified \(verified.load(ordering: .relaxed)) elements, \(swapIns) swap-ins")

        """#
}
