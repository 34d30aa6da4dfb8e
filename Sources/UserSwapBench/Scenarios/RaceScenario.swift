import CUserSwap
import Foundation
import Glibc
import Synchronization
import UserSwap

/// `userswap bench race`: what swap-cache synchronization claims. Many threads fault in the same swapped-out entries at
/// once; under the swap-cache protocol the losers of each race wait on the winner's folio lock
/// for the length of one read; under the legacy has-cache-bit protocols they sleep until the next
/// tick (`legacy`, the kernel just before swap-cache synchronization, only in the short window before the insert), until woken
/// or the next tick (`legacy-wq`), or a whole tick, 4 ms (`legacy-bypass`).
/// `--protocol all` runs the four side by side, with the swap cache's ratios to each.
///
/// Each round the controller swaps all K pages of a region out, then releases T worker threads
/// together; each pins every page for reading in the same order (so they collide on every entry),
/// timing each `pin` alone and checking the page's bytes. Rounds repeat for `--seconds` (2 s).
/// Then, with a fresh space, one thread runs as many rounds: the uncontended baseline
/// (`baseline_1thread_latency_us`, and `p999_vs_1thread`).
///
/// `ops` counts pins and `seconds` is the time of the pin phases only (gate open to the last
/// thread done; the swap-outs between rounds are not counted). `latency_us` is every pin, most of
/// which find the page already mapped by another thread; `swapin_latency_us` is the pins that
/// found their page swapped out when they began, the racers proper. `start_delay_us` is how long
/// after the gate each thread got going: with more threads than cores most wait their turn.
///
/// Workers are spread round-robin over the CPUs the process may use (`affinity=spread`): left
/// to itself, the scheduler tends to keep the spinning workers queued on one core while the other
/// runs the controller, and then the threads run one after another and never race.
///
/// Parameters: `pages=64`, `device=memory|file`, `order=same|rotate`, `retry_ms=4` (the legacy
/// protocols' tick: one jiffy at HZ=250), `affinity=spread|none`, `sweep=1,2,4,8,16` (thread counts, each timed for `--seconds`,
/// into `results`; the headline is the `--threads` one, 8 by default, or the last).
enum RaceScenario: BenchScenario {
    static let name = "race"
    static let summary = "threads racing to swap in the same pages: swap-cache sync vs the legacy has-cache-bit protocols"

    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        let config = try Configuration(options: options, harness: harness)
        let headlineThreads = config.sweep.contains(config.threads) ? config.threads : config.sweep.last!
        return try config.withDevices(harness) { makeDevice in
            var measured: [(threads: Int, result: Measurement)] = []
            for threads in config.sweep {
                let result = try measure(
                    threads: threads, until: .seconds(config.seconds), config: config,
                    device: makeDevice(), harness: harness)
                measured.append((threads, result))
            }
            let headline = measured.first { $0.threads == headlineThreads }!.result
            let baseline = try measure(
                threads: 1, until: .rounds(headline.rounds), config: config,
                device: makeDevice(), harness: harness)

            var report = harness.report(headline.run)
            report.budgetBytes = Int64(config.memoryBytes(threads: headlineThreads))
            report.dataBytes = Int64(config.pages * SwapPage.size)
            report.swapIns = Int64(headline.counters[.swapIns] ?? 0)
            report.swapOuts = Int64(headline.counters[.swapOuts] ?? 0)
            report.deviceReads = Int64(headline.counters[.deviceReads] ?? 0)
            report.deviceWrites = Int64(headline.counters[.deviceWrites] ?? 0)
            let all = measured.map(\.result) + [baseline]
            report.verified = all.allSatisfy(\.verified)
            report.extras["legacy_sleeps"] = JSONValue(headline.counters[.legacySleeps] ?? 0)
            report.extras["race_losses"] = JSONValue(headline.counters[.raceLosses] ?? 0)
            report.extras["cache_hits"] = JSONValue(headline.counters[.cacheHits] ?? 0)
            report.extras["rounds"] = JSONValue(headline.rounds)
            report.extras["pages"] = JSONValue(config.pages)
            report.extras["order"] = .string(config.order.rawValue)
            report.extras["device"] = .string(config.fileDevice ? "file" : "memory")
            report.extras["affinity"] = .string(
                config.cpus.isEmpty ? "none" : "spread over CPUs \(config.cpus.map(String.init).joined(separator: ","))")
            report.extras["start_delay_us"] = JSONValue(headline.startDelay)
            report.extras["swapin_latency_us"] = JSONValue(headline.swapIns)
            report.extras["baseline_1thread_swapin_latency_us"] = JSONValue(baseline.swapIns)
            report.extras["baseline_1thread_latency_us"] = JSONValue(baseline.run.latency)
            report.extras["baseline_1thread_ops_per_s"] = JSONValue(baseline.run.opsPerSecond)
            if baseline.run.latency.p999 > 0 {
                report.extras["p999_vs_1thread"] = JSONValue(headline.run.latency.p999 / baseline.run.latency.p999)
            }
            if options.parameters["sweep"] != nil {
                report.extras["results"] = .array(
                    measured.map { threads, result in
                        [
                            "threads": JSONValue(threads), "ops_per_s": JSONValue(result.run.opsPerSecond),
                            "latency_us": JSONValue(result.run.latency), "swapin_latency_us": JSONValue(result.swapIns),
                            "rounds": JSONValue(result.rounds), "device_writes": JSONValue(result.counters[.deviceWrites] ?? 0),
                            "legacy_sleeps": JSONValue(result.counters[.legacySleeps] ?? 0),
                            "race_losses": JSONValue(result.counters[.raceLosses] ?? 0),
                        ]
                    })
            }
            // What went wrong, when something did: the counts, and the walker's first complaints.
            let mismatches = all.reduce(0) { $0 + $1.mismatches }
            let shortfalls = all.reduce(0) { $0 + $1.shortfalls }
            let problems = all.flatMap(\.problems)
            if mismatches > 0 { report.extras["page_mismatches"] = JSONValue(mismatches) }
            if shortfalls > 0 { report.extras["swap_out_shortfalls"] = JSONValue(shortfalls) }
            if !problems.isEmpty { report.extras["invariant_problems"] = .array(problems.prefix(10).map { .string($0) }) }
            if !report.verified {
                harness.log(
                    "NOT verified: \(mismatches) page mismatches, \(shortfalls) rounds with pages left in memory, \(problems.count) invariant problems \(problems.prefix(3))"
                )
            }
            return report
        }
    }

    /// Until when one measurement runs rounds.
    enum Limit {
        case seconds(Double)
        case rounds(Int)
    }

    /// What one worker thread counts.
    struct Worker: Sendable {
        var histogram = LatencyHistogram()
        /// From the gate's opening to this thread's first pin, per round: how "together" the
        /// release was.
        var startDelay = LatencyHistogram()
        /// The pins that found their page swapped out when they began: the racing swap-ins
        /// (pins of pages another thread already brought back take the fast path).
        var swapIns = LatencyHistogram()
        var pins: Int64 = 0
        var mismatches = 0
    }

    /// One measurement: a fresh space, `threads` workers, rounds until `limit`.
    struct Measurement {
        /// Pins (ops), the time spent in the pin phases (swap-outs excluded) and their latency.
        var run: TimedRun
        /// Gate to first pin, every thread every round.
        var startDelay: LatencySummary
        /// Pins that began on a swapped-out page.
        var swapIns: LatencySummary
        var rounds: Int
        /// The space's counters at the end (setup included: the first swap-out's writes).
        var counters: [SwapStatistics.Counter: Int]
        var mismatches: Int
        /// Rounds in which `swapOut` left some page in memory (nothing should hold one then).
        var shortfalls: Int
        /// `checkInvariants()` of the space after the workers stopped.
        var problems: [String]
        var expectedPins: Int64

        var verified: Bool { mismatches == 0 && shortfalls == 0 && problems.isEmpty && run.ops == expectedPins }
    }

    static func measure(
        threads: Int, until limit: Limit, config: Configuration, device: SwapSpace.DeviceConfiguration,
        harness: BenchHarness
    ) throws -> Measurement {
        let space = try SwapSpace(
            .init(
                memory: config.memoryBytes(threads: threads), devices: [device], sync: config.sync,
                encryption: harness.options.spaceEncryption))
        let region = try space.makeRegion(bytes: config.pages * SwapPage.size)
        // Every pin must race for its own entry: readahead would bring the set in ahead of the
        // threads and turn the race into cache hits.
        try region.advise(.random)
        let seed = config.seed
        for page in 0..<config.pages {
            try region.withPage(page, for: .write) { Pattern.fill($0, page: page, seed: seed) }
        }
        let orders = (0..<threads).map { config.order.pages(thread: $0, threads: threads, pages: config.pages) }
        let workers = RoundThreads<Worker>(threads: threads, name: "race", cpus: config.cpus) { _ in
            Worker()
        } round: { worker, thread, opened in
            worker.startDelay.record(cus_monotonic_ns() &- opened)
            for page in orders[thread] {
                let swapped = region.state(ofPage: page) == .swapped
                let before = cus_monotonic_ns()
                let pin = try region.pin(page, for: .read)
                let nanoseconds = cus_monotonic_ns() &- before
                worker.histogram.record(nanoseconds)
                if swapped { worker.swapIns.record(nanoseconds) }
                worker.pins += 1
                if !Pattern.matches(UnsafeRawBufferPointer(pin.bytes), page: page, seed: seed) { worker.mismatches += 1 }
            }
        }
        let progress = harness.progress(threads == 1 ? "1 thread" : "\(threads) threads")
        var rounds = 0
        var shortfalls = 0
        var pinPhaseNs: UInt64 = 0
        let start = cus_monotonic_ns()
        do {
            rounds: while true {
                if try region.swapOut(pages: 0..<config.pages) != config.pages { shortfalls += 1 }
                let phase = cus_monotonic_ns()
                try workers.runRound()
                pinPhaseNs &+= cus_monotonic_ns() &- phase
                rounds += 1
                switch limit {
                case .seconds(let seconds):
                    let elapsed = Double(cus_monotonic_ns() &- start) / 1e9
                    progress.update(elapsed / seconds)
                    if elapsed >= seconds { break rounds }
                case .rounds(let count):
                    progress.update(Double(rounds) / Double(count))
                    if rounds >= count { break rounds }
                }
            }
        } catch {
            _ = workers.finish()
            progress.finish(detail: "failed")
            throw error
        }
        let states = workers.finish()
        let histogram = LatencyHistogram.merged(states.map(\.histogram))
        let pins = states.reduce(0) { $0 + $1.pins }
        let run = TimedRun(
            threads: threads, calls: pins, ops: pins, seconds: Double(pinPhaseNs) / 1e9,
            histogram: histogram, opsPerThread: states.map(\.pins))
        progress.finish(detail: "\(rounds) rounds, p99.9 \(LatencySummary.format(run.latency.p999))")
        var counters: [SwapStatistics.Counter: Int] = [:]
        for counter in SwapStatistics.Counter.allCases { counters[counter] = space.statistics[counter] }
        return Measurement(
            run: run,
            startDelay: LatencyHistogram.merged(states.map(\.startDelay)).summary,
            swapIns: LatencyHistogram.merged(states.map(\.swapIns)).summary,
            rounds: rounds,
            counters: counters,
            mismatches: states.reduce(0) { $0 + $1.mismatches },
            shortfalls: shortfalls,
            problems: space.checkInvariants(),
            expectedPins: Int64(rounds) * Int64(threads) * Int64(config.pages)
        )
    }
}

extension RaceScenario {
    /// The scenario's settings, from the options and `--param`s.
    struct Configuration {
        var pages: Int
        var threads: Int
        /// Thread counts to measure; `[threads]` without a sweep.
        var sweep: [Int]
        var seconds: Double
        var order: PageOrder
        var fileDevice: Bool
        /// CPUs the workers are spread over, round-robin; empty: wherever the scheduler likes.
        var cpus: [Int]
        var sync: SwapInSync
        var seed: UInt64
        /// `--memory`, if given.
        var memory: Int?

        init(options: BenchOptions, harness: BenchHarness) throws {
            pages = try options.value(RaceScenario.pages)
            threads = harness.threads(default: 8)
            sweep = try options.parameters["sweep"].map(RaceScenario.parseSweep) ?? [threads]
            seconds = harness.seconds(default: 2)
            let orderName: String = try options.value(RaceScenario.order)
            guard let order = PageOrder(rawValue: orderName) else {
                throw BenchError("--param order=\(orderName): use one of \(PageOrder.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            self.order = order
            let device: String = try options.value(RaceScenario.device)
            fileDevice = device == "file"
            let affinity: String = try options.value(RaceScenario.affinity)
            cpus = affinity == "spread" ? CPUAffinity.allowed() : []
            let retry: Double = try options.value(RaceScenario.retry)
            sync = harness.swapProtocol.sync(tick: .microseconds(Int64(retry * 1000)))
            seed = options.seed ?? 0x5EED_5EED_5EED_5EED
            if let bytes = options.memoryBytes {
                memory = Int(bytes)
                let needed = (pages + sweep.max()!) * SwapPage.size
                guard Int(bytes) >= needed else {
                    throw BenchError(
                        "--memory \(ByteSize.format(bytes)) cannot hold the \(pages) shared pages plus one frame per racing thread; give at least \(ByteSize.format(Int64(needed)))"
                    )
                }
            }
        }

        /// The RAM budget: the shared pages, plus one frame per thread (every racer allocates its
        /// folio before it learns whether it won), plus slack.
        func memoryBytes(threads: Int) -> Int { memory ?? (pages + threads + 16) * SwapPage.size }

        /// Swap device size in pages: the header and at least four slots per page, in whole
        /// clusters, so the device stays under half full and swapped-in folios stay cached.
        var devicePages: Int { 1 + max(1, (pages * 4 + 511) / 512) * 512 }

        /// Runs `body` with a maker of fresh devices: memory devices, or swap files in a scratch
        /// folder removed at the end.
        func withDevices<T>(_ harness: BenchHarness, _ body: (_ makeDevice: () -> SwapSpace.DeviceConfiguration) throws -> T) throws -> T {
            let pages = devicePages
            guard fileDevice else { return try body { .memory(bytes: pages * SwapPage.size) } }
            return try harness.withScratchDirectory { directory in
                try body { .temporary(size: Int64(pages * SwapPage.size), directory: directory) }
            }
        }
    }

    /// `"1,2,4,8,16"` → `[1, 2, 4, 8, 16]`: thread counts 1…4096, in the order given.
    static let pages = BenchParameter.integer("pages", 1...1 << 20, default: 64, "the shared pages every thread pins")
    static let sweep = BenchParameter(
        "sweep", type: "thread counts 1…4096, comma-separated", default: nil,
        "run once per thread count (default: --threads)"
    ) { (try? parseSweep($0)) != nil }
    static let order = BenchParameter.choice(
        "order", PageOrder.allCases.map(\.rawValue), default: PageOrder.same.rawValue,
        "the order in which each thread pins the pages")
    static let device = BenchParameter.choice("device", ["memory", "file"], default: "memory", "swap to process memory or a file")
    static let affinity = BenchParameter.choice(
        "affinity", ["spread", "none"], default: "spread",
        "spread the threads over the allowed CPUs, or leave them to the scheduler")
    static let retry = BenchParameter.number("retry_ms", 0...1000, default: 4, "the legacy protocols' tick, in milliseconds")
    static func parameters(mode: BenchMode?) -> [BenchParameter] { [pages, sweep, order, device, affinity, retry] }

    static func parseSweep(_ text: String) throws(BenchError) -> [Int] {
        let counts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ $0 != nil && (1...4096).contains($0!) }) else {
            throw BenchError("--param sweep=\(text): give thread counts 1 to 4096 separated by commas, e.g. sweep=1,2,4,8")
        }
        return counts.map { $0! }
    }

    /// The order in which each thread pins the shared pages.
    enum PageOrder: String, CaseIterable, Sendable {
        /// Every thread walks 0, 1, 2, …: they all want the same entry at the same moment.
        case same
        /// Thread t starts at page t × pages ÷ threads and wraps around: a thread collides only
        /// when it catches up with another one.
        case rotate

        /// Every page once, in this order's sequence for `thread`.
        func pages(thread: Int, threads: Int, pages: Int) -> [Int] {
            require(thread >= 0 && thread < threads && pages >= 0, "thread \(thread) of \(threads) over \(pages) pages")
            switch self {
            case .same:
                return Array(0..<pages)
            case .rotate:
                let start = thread * pages / threads
                return (0..<pages).map { ($0 + start) % pages }
            }
        }
    }

    /// The known content of every page: each 8-byte word is a hash of (seed, page, word index),
    /// so a page read from the wrong slot, a stale copy or a torn one all fail the check.
    enum Pattern {
        @inline(__always)
        static func word(page: Int, index: Int, seed: UInt64) -> UInt64 {
            var x = seed ^ (UInt64(truncatingIfNeeded: page) << 32 | UInt64(truncatingIfNeeded: index))
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return x ^ (x >> 31)
        }

        static func fill(_ bytes: UnsafeMutableRawBufferPointer, page: Int, seed: UInt64) {
            for index in 0..<bytes.count / 8 {
                bytes.storeBytes(of: word(page: page, index: index, seed: seed), toByteOffset: index * 8, as: UInt64.self)
            }
        }

        static func matches(_ bytes: UnsafeRawBufferPointer, page: Int, seed: UInt64) -> Bool {
            for index in 0..<bytes.count / 8
            where bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self) != word(page: page, index: index, seed: seed) {
                return false
            }
            return true
        }
    }
}

extension RaceScenario {
    /// Worker threads that run in lockstep rounds: `runRound()` releases all of them at once and
    /// returns when every one has finished its round. Real threads, as many as asked, so that a
    /// race can oversubscribe the cores (`concurrentPerform` uses one thread per core).
    ///
    /// Two futex words: the gate, a generation number the controller bumps to open a round; and
    /// a ticket the last worker to finish bumps to wake the controller. `remaining` counts the
    /// workers still in the round. Between rounds workers spin on the gate with `sched_yield`
    /// (so a thread still being timed, or the controller, gets the core whenever it wants it),
    /// and fall asleep on the futex only after `spinNanoseconds`; the controller wakes sleepers
    /// with one `futex_wake` of everybody.
    ///
    /// Call `finish()` when done: the threads hold the object until they leave.
    final class RoundThreads<State: Sendable> {
        let threads: Int
        /// How long a worker that finished its round spins (yielding) for the next before it sleeps.
        let spinNanoseconds: UInt64
        /// [0]: the gate generation; [1]: the finish ticket. Allocated so the kernel has an
        /// address to sleep on; freed in deinit, which runs only after every thread has left.
        private let words: UnsafeMutablePointer<Atomic<UInt32>>
        /// Workers that have not finished the current round (or their set-up, at first).
        private let remaining: Atomic<Int>
        private let stopping = Atomic<Bool>(false)
        /// When the current round's gate opened.
        private let openedNs = Atomic<UInt64>(0)
        private let firstError = Mutex<(any Error)?>(nil)
        /// Each worker writes its own slot once, when it stops.
        private let states: Mutex<[State?]>

        /// Starts `threads` threads, thread t on `cpus[t % cpus.count]` when `cpus` is not empty
        /// (best effort); each calls `setUp(thread)` on itself, and the initializer
        /// returns once all have. Each round, each calls `round(&state, thread, opened)`, where
        /// `opened` is the `cus_monotonic_ns` time at which the controller opened the gate.
        init(
            threads: Int, name: String, cpus: [Int] = [], spinNanoseconds: UInt64 = 5_000_000,
            setUp: @escaping @Sendable (_ thread: Int) -> State,
            round: @escaping @Sendable (_ state: inout State, _ thread: Int, _ opened: UInt64) throws -> Void
        ) {
            require(threads >= 1, "a round needs at least one thread")
            self.threads = threads
            self.spinNanoseconds = spinNanoseconds
            words = .allocate(capacity: 2)
            words.initialize(to: Atomic(0))
            (words + 1).initialize(to: Atomic(0))
            remaining = Atomic(threads)
            states = Mutex(Array(repeating: nil, count: threads))
            for thread in 0..<threads {
                let cpu = cpus.isEmpty ? nil : cpus[thread % cpus.count]
                let worker = Thread { [self] in
                    if let cpu { _ = CPUAffinity.pinCurrentThread(to: cpu) }
                    work(thread: thread, setUp: setUp, round: round)
                }
                worker.name = "\(name)-\(thread)"
                worker.start()
            }
            waitForWorkers()
        }

        deinit {
            words.deinitialize(count: 2)
            words.deallocate()
        }

        private var gate: UnsafeMutablePointer<Atomic<UInt32>> { words }
        private var ticket: UnsafeMutablePointer<Atomic<UInt32>> { words + 1 }

        /// Sound: `Atomic<UInt32>` has the layout of a `UInt32`; the kernel only compares and sleeps.
        private static func raw(_ word: UnsafeMutablePointer<Atomic<UInt32>>) -> UnsafeMutablePointer<UInt32> {
            UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self)
        }

        /// Runs one round on every thread. Rethrows the first error any round threw (this one
        /// or an earlier one); the other threads still finish the round.
        func runRound() throws {
            require(!stopping.load(ordering: .relaxed), "a round after finish()")  // Relaxed: only the controller writes it.
            openGate()
            waitForWorkers()
            if let error = firstError.withLock({ $0 }) { throw error }
        }

        /// Ends the threads and returns each one's state, in thread order. Idempotent.
        func finish() -> [State] {
            // Relaxed: only the controller writes it; the gate's release publishes it.
            if !stopping.exchange(true, ordering: .relaxed) {
                openGate()
                waitForWorkers()
            }
            return states.withLock { $0.map { $0! } }
        }

        /// Called only when every worker is parked at the gate (`remaining` is 0).
        private func openGate() {
            // Relaxed: no worker reads `remaining` before it sees the gate move, and the
            // gate's releasing add publishes this store (and `stopping`) to it.
            remaining.store(threads, ordering: .relaxed)
            openedNs.store(cus_monotonic_ns(), ordering: .relaxed)  // Relaxed: as `remaining`
            gate.pointee.wrappingAdd(1, ordering: .releasing)
            _ = cus_futex_wake(Self.raw(gate), Int32.max)
        }

        /// Sleeps until `remaining` reaches 0.
        private func waitForWorkers() {
            while true {
                // Read the ticket before `remaining`: if the last worker arrives in between, the
                // ticket has moved and the futex wait returns at once.
                let seen = ticket.pointee.load(ordering: .acquiring)
                if remaining.load(ordering: .acquiring) == 0 { return }
                _ = cus_futex_wait(Self.raw(ticket), seen, -1)
            }
        }

        /// A worker is done with its set-up or its round.
        private func arrive() {
            // Acquiring-and-releasing: the last arrival publishes every worker's round to the
            // controller, which acquires `remaining` (and the ticket).
            if remaining.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                ticket.pointee.wrappingAdd(1, ordering: .releasing)
                _ = cus_futex_wake(Self.raw(ticket), 1)
            }
        }

        private func work(
            thread: Int,
            setUp: @Sendable (Int) -> State,
            round: @Sendable (inout State, Int, UInt64) throws -> Void
        ) {
            var state = setUp(thread)
            var seen = gate.pointee.load(ordering: .acquiring)
            arrive()
            while true {
                // Wait for the gate to move past the generation of our last round. Spin first,
                // yielding the core at every look: the next round opens within one swap-out, and
                // a spinning worker starts within a microsecond of the gate, together with the
                // others on a core (futex wake-ups start them tens of µs apart, one by one, and
                // the first has often finished before the last begins: no race at all). After
                // `spinNanoseconds`, sleep.
                var now = gate.pointee.load(ordering: .acquiring)
                let spinUntil = cus_monotonic_ns() &+ spinNanoseconds
                while now == seen && cus_monotonic_ns() < spinUntil {
                    sched_yield()  // A spin on purpose: see above
                    now = gate.pointee.load(ordering: .acquiring)
                }
                while now == seen {
                    _ = cus_futex_wait(Self.raw(gate), seen, -1)
                    now = gate.pointee.load(ordering: .acquiring)
                }
                seen = now
                // Relaxed: the gate's acquiring load above ordered this after the controller's store.
                if stopping.load(ordering: .relaxed) {
                    let final = state
                    states.withLock { $0[thread] = final }
                    arrive()
                    return
                }
                do {
                    // Relaxed: written before the gate's releasing add, read after its acquiring load.
                    try round(&state, thread, openedNs.load(ordering: .relaxed))
                } catch {
                    firstError.withLock { if $0 == nil { $0 = error } }
                }
                arrive()
            }
        }
    }
}

// The raw futex words are atomics; `remaining` and the gate order every other access, and the
// mutable state sits behind the two mutexes.
extension RaceScenario.RoundThreads: @unchecked Sendable {}

extension RaceScenario {
    /// Which CPUs threads may run on, and pinning a thread to one. Glibc declares
    /// `sched_getaffinity`/`sched_setaffinity` only under `_GNU_SOURCE`, which Swift's Glibc module
    /// is not built with, so they are looked up by name (a `cus_` wrapper in the C shim would be
    /// the house way; the shim is not this file's to change).
    enum CPUAffinity {
        private typealias Call = @convention(c) (pid_t, Int, UnsafeMutableRawPointer) -> Int32

        private static func call(_ name: String, _ set: inout cpu_set_t) -> Bool {
            // dlsym(RTLD_DEFAULT, …): glibc's RTLD_DEFAULT is the null handle.
            guard let symbol = dlsym(nil, name) else { return false }
            // Sound: both functions have the C type `int (pid_t, size_t, cpu_set_t *)`.
            let function = unsafeBitCast(symbol, to: Call.self)
            return withUnsafeMutableBytes(of: &set) { function(0, $0.count, $0.baseAddress!) } == 0
        }

        /// The CPUs the calling thread may run on, ascending; empty if that cannot be read.
        static func allowed() -> [Int] {
            var set = cpu_set_t()
            guard call("sched_getaffinity", &set) else { return [] }
            return withUnsafeBytes(of: &set) { bytes in
                (0..<bytes.count * 8).filter { bytes[$0 / 8] & (1 << ($0 % 8)) != 0 }
            }
        }

        /// Restricts the calling thread to `cpu`. False if the kernel refused.
        @discardableResult
        static func pinCurrentThread(to cpu: Int) -> Bool {
            var set = cpu_set_t()
            guard cpu >= 0 && cpu < MemoryLayout<cpu_set_t>.size * 8 else { return false }
            withUnsafeMutableBytes(of: &set) { $0[cpu / 8] |= UInt8(1 << (cpu % 8)) }
            return call("sched_setaffinity", &set)
        }
    }
}
