import Synchronization
import UserSwap
import UserSwapRedis

/// `userswap bench redis`: far memory on a local Redis server. It starts a private
/// `redis-server` on a free loopback port (no persistence) and kills it at the end, unless
/// `--param url=redis://HOST:PORT` names one to use (`scripts/redis start` prints such a URL).
///
/// Two parts, each phase `--seconds` long (2 s):
/// 1. The backend alone, pages straight to and from the server: one-page SET and GET, and
///    `batch`-page MSET and MGET, each on 1 thread and on `--threads` (the cores): pages/s and
///    per-call latency (one page, or one batch).
/// 2. A space over the backend, `--memory` (16M) of budget for `--data` (64M) of pages: the
///    region is written once (every page but the budget's worth leaves through Redis; pages/s
///    of that fill), then `--threads` threads read uniformly random pages (3 of 4 miss the
///    budget and come back from Redis). The headline (`ops_per_s`, `latency_us`) is these
///    accesses; every page read is checked, and every page once more at the end.
///
/// Extras: `backend` (one entry per phase), `fill_pages_per_s`, `server_bytes_per_page` (the
/// server's `used_memory` growth over the keys it gained in the one-page write phases),
/// `redis_server`.
///
/// Parameters: `url=redis://…` (default: a private server), `batch=16` (pages per MSET/MGET).
enum RedisScenario: BenchScenario {
    static let name = "redis"
    static let summary = "far memory on a local redis-server: backend pages/s and a 4× space over it"

    static let url = BenchParameter(
        "url", type: "redis://HOST:PORT or unix:///SOCKET", default: nil,
        "the server to use (default: a private redis-server for the run)"
    ) { (try? RedisBackend.Configuration(url: $0)) != nil }
    static let batch = BenchParameter.integer("batch", 2...512, default: 16, "pages per MSET/MGET")
    static func parameters(mode: BenchMode?) -> [BenchParameter] { [url, batch] }

    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        let batch: Int = try options.value(Self.batch)
        let memory = Int(options.memoryBytes ?? 16 << 20)
        let data = Int(options.dataBytes ?? 64 << 20)
        guard memory >= 64 * SwapPage.size, data > memory else {
            throw BenchError("--memory \(memory) / --data \(data): give at least 256K of memory and more data than memory")
        }
        let threads = harness.threads(default: harness.machine.cores)
        let seconds = harness.seconds(default: 2)
        let seed = options.seed ?? 0x7ED1_5000_0000_0001

        // The server: the user's, or a private one for this run.
        var (configuration, server) = try BenchRedisServer.connect(
            url: options.parameters["url"], harness: harness,
            missing: "redis-server is not installed: run scripts/bootstrap, or give --param url=redis://HOST:PORT")
        defer { server?.kill() }
        configuration.maxConnections = max(threads, 2) * 2
        let dataPages = data / SwapPage.size

        // 1. The backend alone.
        var phases: [JSONValue] = []
        var bytesPerPage = 0.0
        do {
            let backend = try RedisBackend(pageCount: 1 + dataPages, configuration: configuration)
            defer { _ = try? backend.removeAllPages() }
            let empty = try backend.serverStatus()
            let buffers = PageBuffers(threads: threads, pages: batch)
            let counts = Array(Set([1, threads])).sorted()
            var stored = 0
            for (pagesPerCall, operation) in [(1, "write"), (1, "read"), (batch, "write"), (batch, "read")] {
                if operation == "write" { stored = 0 }
                for t in counts {
                    let run = try backendPhase(
                        operation, pagesPerCall: pagesPerCall, threads: t, dataPages: dataPages,
                        stored: stored, backend: backend, buffers: buffers, seed: seed,
                        seconds: seconds, harness: harness)
                    if operation == "write" && pagesPerCall == 1 {
                        let status = try backend.serverStatus()
                        if status.keys > empty.keys {
                            bytesPerPage = Double(status.usedMemoryBytes - empty.usedMemoryBytes) / Double(status.keys - empty.keys)
                        }
                    }
                    if operation == "write" {
                        // Thread i wrote runs i, i + t, i + 2t, …: every run below the fewest
                        // calls × t is stored (all of them once the writes wrapped around).
                        let runs = (dataPages - 1) / pagesPerCall
                        stored = max(stored, min(runs, Int(run.opsPerThread.min() ?? 0) * t))
                    }
                    let pagesPerSecond = Double(run.calls * Int64(pagesPerCall)) / run.seconds
                    phases.append([
                        "operation": .string(operation), "pages_per_call": JSONValue(pagesPerCall),
                        "command": .string(
                            pagesPerCall == 1 ? (operation == "write" ? "SET" : "GET") : (operation == "write" ? "MSET" : "MGET")),
                        "threads": JSONValue(t), "pages_per_s": JSONValue(pagesPerSecond.rounded()),
                        "latency_us": JSONValue(run.latency),
                    ])
                    harness.log(
                        "backend \(operation) \(pagesPerCall) page\(pagesPerCall == 1 ? "" : "s")/call × \(t) thread\(t == 1 ? "" : "s"): \(BenchReport.count(pagesPerSecond)) pages/s, p50 \(run.latency.p50) µs, p99 \(run.latency.p99) µs per call"
                    )
                }
            }
            // Relaxed: read after the timed threads joined
            if buffers.mismatches.load(ordering: .relaxed) > 0 {
                throw BenchError("the backend returned \(buffers.mismatches.load(ordering: .relaxed)) pages that were not the ones written")
            }
        }

        // 2. A space over the backend.
        let backend = try RedisBackend(pageCount: 1 + 2 * dataPages, configuration: configuration)
        let sync: SwapInSync = harness.swapProtocol.sync()
        let space = try SwapSpace(
            .init(
                memory: memory, devices: [.backend(backend)], sync: sync,
                encryption: options.spaceEncryption))
        let region = try space.makeRegion(bytes: data)
        let fillStart = ContinuousClock.now
        let progress = harness.progress("fill")
        for page in 0..<dataPages {
            try region.withPage(page, for: .write) { RaceScenario.Pattern.fill($0, page: page, seed: seed) }
            if page % 1024 == 0 { progress.update(Double(page) / Double(dataPages)) }
        }
        let fillSeconds = (ContinuousClock.now - fillStart) / .seconds(1)
        progress.finish(detail: "\(BenchReport.count(Double(dataPages) / fillSeconds)) pages/s")

        let wrong = Atomic<Int>(0)
        let access = try harness.runTimed(
            "random reads × \(threads)", threads: threads, limit: .seconds(seconds),
            setUp: { t in SplitMix(seed: seed ^ UInt64(t + 1)) }
        ) { random in
            let page = Int(random.next() % UInt64(dataPages))
            try region.withPage(page, for: .read) { bytes in
                if !RaceScenario.Pattern.matches(UnsafeRawBufferPointer(bytes), page: page, seed: seed) {
                    wrong.add(1, ordering: .relaxed)  // Relaxed: a count read after the threads joined
                }
            }
        }
        var intact = wrong.load(ordering: .relaxed) == 0  // Relaxed: read after the threads joined
        for page in 0..<dataPages {
            intact =
                try region.withPage(page, for: .read) {
                    RaceScenario.Pattern.matches(UnsafeRawBufferPointer($0), page: page, seed: seed)
                } && intact
        }
        let problems = space.checkInvariants()

        var report = harness.report(access)
        report.fill(from: space, budget: Int64(memory), data: Int64(data))
        report.verified = intact && problems.isEmpty
        report.extras["backend"] = .array(phases)
        report.extras["fill_pages_per_s"] = JSONValue((Double(dataPages) / fillSeconds).rounded())
        report.extras["server_bytes_per_page"] = JSONValue(bytesPerPage.rounded())
        report.extras["redis_server"] = .string(backend.server)
        report.extras["batch"] = JSONValue(batch)
        let stats = backend.statistics
        report.extras["backend_statistics"] = [
            "pages_read": JSONValue(stats.pagesRead), "pages_written": JSONValue(stats.pagesWritten),
            "pages_deleted": JSONValue(stats.pagesDeleted), "connections": JSONValue(stats.connectionsOpened),
            "retries": JSONValue(stats.retries),
        ]
        if !problems.isEmpty { report.extras["invariant_problems"] = .array(problems.prefix(10).map { .string($0) }) }
        harness.log(
            "space: fill \(BenchReport.count(Double(dataPages) / fillSeconds)) pages/s; random reads \(BenchReport.count(access.opsPerSecond))/s, p99 \(access.latency.p99) µs; \(Int(bytesPerPage)) server bytes per page"
        )
        if !report.verified {
            harness.log(
                // Relaxed: read after the threads joined
                "NOT verified: \(wrong.load(ordering: .relaxed)) wrong reads, pages intact \(intact), invariants \(problems.prefix(3))")
        }
        return report
    }

    /// One timed phase of the backend alone. Writes cover the device in order (each thread its
    /// own stripe of `pagesPerCall`-page runs); reads pick random runs among the first `stored`,
    /// which the write phases stored, and check the first page of each.
    private static func backendPhase(
        _ operation: String, pagesPerCall: Int, threads: Int, dataPages: Int,
        stored: Int, backend: RedisBackend, buffers: PageBuffers, seed: UInt64, seconds: Double,
        harness: BenchHarness
    ) throws -> TimedRun {
        let runs = (dataPages - 1) / pagesPerCall
        let label = "\(operation) \(pagesPerCall == 1 ? "1 page" : "\(pagesPerCall) pages") × \(threads)"
        return try harness.runTimed(
            label, threads: threads, limit: .seconds(seconds),
            setUp: { t in (t, 0, SplitMix(seed: seed &+ UInt64(t))) }
        ) { state in
            let bytes = buffers.buffer(state.0, pages: pagesPerCall)
            if operation == "write" {
                let run = (state.1 * threads + state.0) % runs
                state.1 += 1
                let first = 1 + run * pagesPerCall
                for i in 0..<pagesPerCall {
                    RaceScenario.Pattern.fill(buffers.page(state.0, i), page: first + i, seed: seed)
                }
                try backend.write(UnsafeRawBufferPointer(bytes), atPage: first)
            } else {
                let run = Int(state.2.next() % UInt64(max(stored, 1)))
                let first = 1 + run * pagesPerCall
                try backend.read(into: bytes, atPage: first)
                if !RaceScenario.Pattern.matches(UnsafeRawBufferPointer(buffers.page(state.0, 0)), page: first, seed: seed) {
                    buffers.mismatches.add(1, ordering: .relaxed)  // Relaxed: a count read after the threads joined
                }
            }
        }
    }
}

/// Per-thread page buffers for the backend phases.
private final class PageBuffers: Sendable {
    private let memory: _PageMemory
    private let pagesPerThread: Int
    /// Pages read back that were not the ones written; relaxed, a counter read after the
    /// phase's threads have ended.
    let mismatches = Atomic<Int>(0)

    init(threads: Int, pages: Int) {
        pagesPerThread = pages
        memory = _PageMemory(bytes: threads * pages * SwapPage.size)
    }

    func buffer(_ thread: Int, pages: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(
            rebasing: memory.bytes[(thread * pagesPerThread * SwapPage.size)..<((thread * pagesPerThread + pages) * SwapPage.size)])
    }

    func page(_ thread: Int, _ i: Int) -> UnsafeMutableRawBufferPointer {
        let start = (thread * pagesPerThread + i) * SwapPage.size
        return UnsafeMutableRawBufferPointer(rebasing: memory.bytes[start..<(start + SwapPage.size)])
    }
}

/// Page-aligned memory for the buffers, freed with its owner. Each thread uses its own slice.
private final class _PageMemory {
    let bytes: UnsafeMutableRawBufferPointer
    init(bytes count: Int) {
        bytes = .allocate(byteCount: count, alignment: SwapPage.size)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
    }
    deinit { bytes.deallocate() }
}

/// SplitMix64: a per-thread generator for random pages.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

// The pointer never changes after init and each bench thread touches only its own slice of the
// memory, so sharing the owner between threads is sound.
extension _PageMemory: @unchecked Sendable {}
