import Dispatch
import Foundation
import Synchronization
import Testing
import UserSwap

@testable import UserSwapBench
@testable import UserSwapCLI

extension CLI {
    /// `bench/kernel-driver.c`, the C driver of the kernel side of `bench/kernel-compare`: it must
    /// do the work of `userswap bench random|zipf|seq --mode kernel`, so each test builds it with
    /// `cc` (warnings are errors) and holds it against the Swift workload: the pages each thread
    /// touches and whether it writes them, for the same seed and threads; the words a write
    /// stores; and the report of a short real run.
    @Suite(
        "Kernel driver (C)",
        .enabled(
            if: KernelDriver.compiler != nil,
            "no C compiler (cc) on PATH, so bench/kernel-driver.c is NOT tested: install one (apt-get install gcc)"))
    struct KernelDriverTests {
        /// Data size, threads, seed, write ratio and θ of one cross-check.
        struct Case: CustomStringConvertible {
            let data: String
            let threads: Int
            let seed: UInt64
            let writeRatio: Double
            let theta: Double

            var description: String { "\(data), \(threads) threads, seed \(seed), write_ratio \(writeRatio), theta \(theta)" }
        }

        /// The bench's defaults; an odd page count (1025: Lemire's rejection has work to do) with
        /// three threads; every access a write (no draw for the decision); 15 pages (the Zipf
        /// permutation's first multiplier, 9, shares a factor with 15: it searches on); two pages
        /// and more threads than pages.
        static let cases = [
            Case(data: "256M", threads: 2, seed: 24301, writeRatio: 0.2, theta: 0.99),
            Case(data: "4100K", threads: 3, seed: 1, writeRatio: 0.5, theta: 0.5),
            Case(data: "40M", threads: 1, seed: .max, writeRatio: 1, theta: 0.8),
            Case(data: "60K", threads: 2, seed: 99, writeRatio: 0.9, theta: 0.3),
            Case(data: "8K", threads: 4, seed: 0, writeRatio: 0, theta: 0.99),
        ]

        @Test(
            "each thread's first 200 accesses are the Swift workload's, page and write decision",
            arguments: [WorkloadKind.random, .zipf, .seq])
        func sameAccesses(kind: WorkloadKind) throws {
            try withTemporaryFolder { folder in
                let driver = try KernelDriver.build(in: folder)
                for one in Self.cases {
                    let result = try KernelDriver.run(
                        driver,
                        [
                            kind.rawValue, "--data", one.data, "--threads", "\(one.threads)", "--seed", "\(one.seed)",
                            "--param", "write_ratio=\(one.writeRatio)", "--param", "theta=\(one.theta)", "--dump-pages", "200",
                        ])
                    try #require(result.status == 0, "kernel-driver --dump-pages failed (\(one)): \(result.stderr)")
                    let c = try KernelDriver.parseDump(result.stdout, threads: one.threads)
                    let swift = try KernelDriver.swiftAccesses(kind: kind, one, count: 200)
                    for thread in 0..<one.threads {
                        let first = (0..<min(c[thread].count, swift[thread].count)).first { c[thread][$0] != swift[thread][$0] }
                        #expect(
                            c[thread].count == 200 && first == nil,
                            "\(kind.rawValue), \(one), thread \(thread): C and Swift part at access \(first.map(String.init) ?? "-") (C \(first.map { "\(c[thread][$0])" } ?? "-"), Swift \(first.map { "\(swift[thread][$0])" } ?? "-"))"
                        )
                    }
                }
            }
        }

        @Test("a write stores PagePattern's words: every seed, page, version and repeats period alike")
        func sameFill() throws {
            try withTemporaryFolder { folder in
                let driver = try KernelDriver.build(in: folder)
                for (seed, page, version, repeats) in [(UInt64(24301), 0, UInt32(1), 1), (7, 262_143, 2, 4), (.max, 5, 0x7FFF_FFFF, 64)] {
                    let result = try KernelDriver.run(
                        driver,
                        [
                            "--dump-fill", "\(page):\(version)", "--seed", "\(seed)", "--param", "repeats=\(repeats)",
                        ])
                    try #require(result.status == 0, "kernel-driver --dump-fill failed: \(result.stderr)")
                    let words = result.stdout.split(separator: "\n").compactMap { UInt64($0, radix: 16) }
                    let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 8)
                    defer { bytes.deallocate() }
                    PagePattern.fill(bytes, page: page, version: version, seed: seed, period: PagePattern.words / repeats)
                    let expected = (0..<PagePattern.words).map { bytes.load(fromByteOffset: $0 * 8, as: UInt64.self) }
                    #expect(words == expected, "page \(page) version \(version) seed \(seed) repeats \(repeats)")
                }
            }
        }

        @Test("a real run over 8 MiB verifies and reports the kernel-mode keys", arguments: [WorkloadKind.random, .zipf, .seq])
        func realRun(kind: WorkloadKind) throws {
            try withTemporaryFolder { folder in
                let driver = try KernelDriver.build(in: folder)
                let json = folder + "/report.json"
                let result = try KernelDriver.run(
                    driver,
                    [
                        kind.rawValue, "--data", "8M", "--threads", "2", "--seconds", "0.2", "--param", "write_ratio=0.3",
                        "--param", "repeats=4", "--memory", "4M", "--json", json,
                    ])
                try #require(result.status == 0, "kernel-driver \(kind.rawValue) failed: \(result.stderr)")
                let report = try jsonObject(Data(contentsOf: URL(fileURLWithPath: json)))
                for key in [
                    "scenario", "mode", "driver", "threads", "ops", "seconds", "ops_per_s", "latency_us", "budget_bytes",
                    "data_bytes", "peak_resident_bytes", "swap_ins", "swap_outs", "device_reads", "device_writes",
                    "major_faults", "verified", "machine", "populate_seconds", "swap_bytes",
                ] {
                    #expect(report[key] != nil, "the report has no \(key)")
                }
                #expect(report["scenario"] as? String == kind.rawValue)
                #expect(report["mode"] as? String == "kernel")
                #expect(report["driver"] as? String == "c")
                #expect(report["verified"] as? Bool == true)
                #expect(report["threads"] as? Int == 2)
                #expect(report["data_bytes"] as? Int == 8 << 20)
                #expect(report["page_repeats"] as? Int == 4)
                let ops = try #require(report["ops"] as? Int)
                #expect(ops > 0)
                #expect(report["verified_units"] as? Int == 2048)
                let seconds = try #require(report["seconds"] as? Double)
                #expect(seconds >= 0.2 && seconds < 5)
                let latency = try #require(report["latency_us"] as? [String: Any])
                #expect(["p50", "p99", "p999", "max"].allSatisfy { latency[$0] is Double }, "latency_us: \(latency)")
                #expect(latency["count"] as? Int == ops)
                let machine = try #require(report["machine"] as? [String: Any])
                #expect(["cores", "memory_bytes", "kernel", "date"].allSatisfy { machine[$0] != nil }, "machine: \(machine)")
                #expect((report["peak_resident_bytes"] as? Int ?? 0) > 0)
                // Without a limiting cgroup the budget is the informational --memory.
                if report["cgroup"] is NSNull || (report["cgroup"] as? [String: Any])?["limit_bytes"] == nil {
                    #expect(report["budget_bytes"] as? Int == 4 << 20)
                }
            }
        }

        @Test(
            "multiget: the hash table filled, looked up in whole batches with MADV_WILLNEED, and scanned; as many keys as the Swift side looks up",
            arguments: ["on", "off"])
        func multiget(prefetch: String) throws {
            try withTemporaryFolder { folder in
                let driver = try KernelDriver.build(in: folder)
                let json = folder + "/report.json"
                let result = try KernelDriver.run(
                    driver,
                    [
                        "multiget", "--data", "4M", "--threads", "2", "--param", "ops=1000", "--param", "batch=8",
                        "--param", "prefetch=\(prefetch)", "--json", json,
                    ])
                try #require(result.status == 0, "kernel-driver multiget failed: \(result.stderr)")
                let report = try jsonObject(Data(contentsOf: URL(fileURLWithPath: json)))
                #expect(report["verified"] as? Bool == true)
                #expect(report["batch"] as? Int == 8 && report["prefetch"] as? Bool == (prefetch == "on"))
                // 500 keys per thread are 63 batches of 8, as the Swift driver rounds them.
                var configuration = WorkloadConfiguration(
                    kind: .multiget, memoryBytes: 1 << 20, dataBytes: 4 << 20, threads: 2, limit: .operations(1000), seed: 24301)
                configuration.batch = 8
                configuration.prefetch = prefetch == "on"
                let swift = try WorkloadSession.runOnKernelSwap(
                    configuration, cgroup: nil, console: Workloads.quiet, showsProgress: false, label: "test")
                #expect(report["ops"] as? Int == Int(swift.outcome.measured.ops))
                #expect(report["ops"] as? Int == 2 * 63 * 8 && report["reads_checked"] as? Int == 2 * 63 * 8)
                #expect(report["records_found"] as? Int == 1024 * 64 / 2)
                #expect(report["verified_units"] as? Int == 1024)
                let latency = try #require(report["latency_us"] as? [String: Any])
                #expect(latency["count"] as? Int == 2 * 63 * 8)
            }
        }

        @Test("--param ops=N makes exactly N accesses, split over the threads as the Swift driver splits them")
        func fixedOperations() throws {
            try withTemporaryFolder { folder in
                let driver = try KernelDriver.build(in: folder)
                let json = folder + "/report.json"
                let result = try KernelDriver.run(
                    driver, ["zipf", "--data", "1M", "--threads", "3", "--param", "ops=1001", "--json", json])
                try #require(result.status == 0, "kernel-driver zipf --param ops failed: \(result.stderr)")
                let report = try jsonObject(Data(contentsOf: URL(fileURLWithPath: json)))
                #expect(report["ops"] as? Int == 1001)
                #expect(
                    report["ops_per_thread"] as? [Int]
                        == (0..<3).map { WorkloadLimit.operations(1001).operations(thread: $0, threads: 3) ?? -1 })
                #expect(report["verified"] as? Bool == true)
            }
        }

        @Test("usage errors exit 64 and name the problem")
        func usage() throws {
            try withTemporaryFolder { folder in
                let driver = try KernelDriver.build(in: folder)
                for (arguments, words) in [
                    (["hashtable"], "unknown scenario"), (["random", "--threads", "0"], "--threads"),
                    (["zipf", "--param", "theta=1"], "theta"), (["seq", "--data", "12X"], "--data"),
                    (["random", "--param", "repeats=3"], "repeats"), (["random", "--param", "policy=lru"], "policy=lru"),
                    (["random", "--param", "workingset=off"], "workingset"),
                ] {
                    let result = try KernelDriver.run(driver, arguments)
                    #expect(result.status == 64 && result.stderr.contains(words), "\(arguments): \(result.status) \(result.stderr)")
                }
            }
        }
    }
}

/// Builds and runs `bench/kernel-driver.c`, and replays the Swift workload's accesses.
enum KernelDriver {
    /// One access: the page and whether it writes.
    struct Access: Equatable, CustomStringConvertible {
        let page: Int
        let write: Bool
        var description: String { "\(page)\(write ? "w" : "r")" }
    }

    /// The C source, from this file's place in the repository.
    static let source = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("bench/kernel-driver.c").path

    /// `cc` on PATH, or nil.
    static var compiler: String? {
        (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            .map { "\($0)/cc" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Compiles the driver into `folder` as the benchmark builds it, warnings as errors.
    static func build(in folder: String) throws -> String {
        let output = folder + "/kernel-driver"
        let compiler = try #require(compiler)
        let result = try run(compiler, ["-O2", "-pthread", "-Wall", "-Wextra", "-Werror", "-o", output, source, "-lm"])
        try #require(result.status == 0, "cc \(source) failed:\n\(result.stderr)")
        return output
    }

    /// Runs `executable` and returns its status, stdout and stderr.
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        // stderr is drained on another thread while stdout is read here, so that neither pipe
        // fills up and stalls the driver.
        let errorHandle = error.fileHandleForReading
        let errors = Mutex(Data())
        let drained = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            let data = errorHandle.readDataToEndOfFile()
            errors.withLock { $0 = data }
            drained.signal()
        }
        let out = output.fileHandleForReading.readDataToEndOfFile()
        drained.wait()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: errors.withLock { $0 }, as: UTF8.self))
    }

    /// `--dump-pages` output, "THREAD PAGE r|w" per line, as each thread's accesses.
    static func parseDump(_ text: String, threads: Int) throws -> [[Access]] {
        var accesses = Array(repeating: [Access](), count: threads)
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            let thread = try #require(fields.count == 3 ? Int(fields[0]) : nil, "bad dump line '\(line)'")
            let page = try #require(Int(fields[1]), "bad dump line '\(line)'")
            try #require(thread < threads && (fields[2] == "r" || fields[2] == "w"), "bad dump line '\(line)'")
            accesses[thread].append(Access(page: page, write: fields[2] == "w"))
        }
        return accesses
    }

    /// Each thread's first `count` accesses in the Swift workload: the bench's own configuration
    /// and workload (`WorkloadConfiguration.makeWorkload`), its access phase's workers (the
    /// pattern, the thread's generator, the write threshold) stepped one thread after another
    /// over a store that records what they touch.
    static func swiftAccesses(kind: WorkloadKind, _ one: CLI.KernelDriverTests.Case, count: Int) throws -> [[Access]] {
        let dataBytes = try ByteSize.parse(one.data).get()
        var configuration = WorkloadConfiguration(
            kind: kind, memoryBytes: 64 << 20, dataBytes: dataBytes, threads: one.threads,
            limit: .operations(count), writeRatio: one.writeRatio, theta: one.theta, seed: one.seed)
        configuration.pageRepeats = 1
        var recorder: RecordingPageStore?
        let workload = try configuration.makeWorkload { pages in
            let store = RecordingPageStore(pageCount: pages)
            recorder = store
            return store
        }
        let store = try #require(recorder)
        let access = try #require(workload.phases.first { $0.name == "access" })
        var accesses: [[Access]] = []
        for thread in 0..<one.threads {
            store.accesses.removeAll()
            let worker = access.prepare(thread, one.threads)
            _ = try worker.drive(DriverShared(threads: one.threads), count, .max)
            accesses.append(store.accesses)
        }
        return accesses
    }
}

/// A page store that records each access and hands out one scratch page for all of them: enough
/// for the workload's steps to run (their checks fail, which the ledger counts and nobody reads).
final class RecordingPageStore: PageStore {
    typealias Failure = Never
    let pageCount: Int
    var accesses: [KernelDriver.Access] = []
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)

    init(pageCount: Int) {
        self.pageCount = pageCount
        scratch.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit { scratch.deallocate() }

    func withPage<R>(_ page: Int, for access: PageAccess, _ body: (UnsafeMutableRawBufferPointer) -> R) -> R {
        accesses.append(KernelDriver.Access(page: page, write: access == .write))
        return body(scratch)
    }

    /// Each prefetch's pages, in order, and how many accesses came before it.
    var prefetches: [(pages: [Int], afterAccesses: Int)] = []

    func prefetch(_ pages: [Int]) {
        prefetches.append((pages, accesses.count))
    }

    func isUntouched(_ page: Int) -> Bool { false }
}

/// One thread uses it at a time: the test steps the workers one after another.
extension RecordingPageStore: @unchecked Sendable {}
