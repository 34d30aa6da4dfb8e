import CUserSwap
import Dispatch
import Foundation
import Synchronization
import UserSwap

/// Runs the phases of a workload: one thread per `threads`, every step timed into a per-thread
/// `LatencyHistogram` (one clock read per step: a step's end is the next one's start), while the
/// calling thread samples a `WorkloadProbe` (resident pages, swap traffic: the space's, or the
/// kernel's for plain memory) ten times a second for the high-water mark and the progress line.
///
/// Like `BenchHarness.runTimed`, but a phase can be a fixed job (each thread does its share) or
/// open (until a `WorkloadLimit`), and the progress line shows what the space is doing:
/// `run access [#####.....] 52%  10.4 s  201k ops/s, resident 255 MiB, swap-ins 1.2M, swap-outs 1.3M`.
public final class WorkloadDriver {
    /// What the driver samples: a space, or the kernel's view of this process.
    public let probe: any WorkloadProbe
    public let threads: Int
    let console: Console
    let showsProgress: Bool
    /// Prefix of progress labels: "run", "zipf".
    let label: String
    /// The most frames seen in use at once, over every phase so far (sampled).
    public private(set) var peakResidentFrames = 0
    /// The process's memory at the sample with the largest resident set, over every phase so
    /// far: what `top` showed at its largest, split into anon, file and shmem.
    public private(set) var peakProcessMemory: ProcessMemory?

    public convenience init(space: SwapSpace, threads: Int, console: Console, showsProgress: Bool, label: String) {
        self.init(probe: SpaceProbe(space: space), threads: threads, console: console, showsProgress: showsProgress, label: label)
    }

    public init(probe: any WorkloadProbe, threads: Int, console: Console, showsProgress: Bool, label: String) {
        require(threads >= 1, "a driver of \(threads) threads; at least 1")
        self.probe = probe
        self.threads = threads
        self.console = console
        self.showsProgress = showsProgress
        self.label = label
    }

    /// What one phase did.
    public struct PhaseOutcome: Sendable {
        public let name: String
        public let measured: Bool
        public let run: TimedRun
        /// Each counter's change over the phase.
        public let counters: [SwapStatistics.Counter: Int]
        /// The most frames in use at once during the phase (sampled).
        public let peakResidentFrames: Int
        /// The latency of a whole step when a step is several operations (a batch); nil when
        /// it is one (`run.latency` is then the step's).
        public var stepLatency: LatencySummary? = nil
        /// The process's context switches during the phase (every thread's: the workload's,
        /// the engine's, the driver's sampling, ten a second).
        public var contextSwitches = ContextSwitches()
    }

    /// Runs `phase` on every thread; open phases last until `limit`. Rethrows the first error a
    /// step threw (after every thread stopped).
    public func run(_ phase: WorkloadPhase, limit: WorkloadLimit) throws -> PhaseOutcome {
        let threads = threads
        let quotas: [Int?] = (0..<threads).map { thread in
            switch phase.length {
            case .steps(let total): WorkloadPhase.share(of: total, thread: thread, threads: threads).count
            case .open:
                // A batch of operations per step: enough steps to do at least the thread's share.
                limit.operations(thread: thread, threads: threads).map { ($0 + phase.opsPerStep - 1) / phase.opsPerStep }
            }
        }
        let seconds: Double? = if case .open = phase.length, case .seconds(let s) = limit { s } else { nil }
        let totalSteps: Int? = quotas.contains(nil) ? nil : quotas.reduce(0) { $0 + $1! }

        let shared = DriverShared(threads: threads)
        let before = probe.counters()
        let progress = ProgressReporter(label: "\(label) \(phase.name)", console: console, enabled: showsProgress)
        for thread in 0..<threads {
            let quota = quotas[thread]
            let worker = Thread {
                shared.work(thread: thread, threads: threads, quota: quota, seconds: seconds, phase: phase)
            }
            worker.name = "workload-\(thread)"
            worker.start()
        }
        for _ in 0..<threads { shared.ready.wait() }
        let switchesBefore = ContextSwitches.now()
        let startNs = cus_monotonic_ns()
        shared.startNs.store(startNs, ordering: .releasing)
        for _ in 0..<threads { shared.go.signal() }

        // Sample until every thread is done.
        var phasePeak = probe.residentPages
        var window = (ns: startNs, steps: 0)
        var rate = 0.0
        var finished = 0
        while finished < threads {
            if shared.finished.wait(timeout: .now() + .milliseconds(100)) == .success {
                finished += 1
            }
            let resident = probe.residentPages
            phasePeak = max(phasePeak, resident)
            sampleProcessMemory()
            let now = cus_monotonic_ns()
            // Relaxed: a display counter.
            let steps = shared.progressSteps.load(ordering: .relaxed)
            if now &- window.ns >= 1_000_000_000 {
                rate = Double((steps - window.steps) * phase.opsPerStep) / (Double(now &- window.ns) / 1e9)
                window = (now, steps)
            }
            let fraction: Double =
                if let seconds {
                    Double(now &- startNs) / 1e9 / seconds
                } else if let totalSteps, totalSteps > 0 {
                    Double(steps) / Double(totalSteps)
                } else {
                    0
                }
            if showsProgress {
                let now = probe.counters()
                progress.update(
                    fraction,
                    detail: Self.progressDetail(
                        opsPerSecond: rate, residentFrames: resident,
                        swapIns: (now[.swapIns] ?? 0) - (before[.swapIns] ?? 0), swapOuts: (now[.swapOuts] ?? 0) - (before[.swapOuts] ?? 0))
                )
            }
        }
        phasePeak = max(phasePeak, probe.residentPages)
        sampleProcessMemory()
        peakResidentFrames = max(peakResidentFrames, phasePeak)
        if let error = shared.firstError.withLock({ $0 }) {
            progress.finish(detail: "failed")
            throw error
        }
        let outcomes = shared.results.withLock { $0 }.map { $0! }
        let endNs = outcomes.map(\.endNs).max() ?? startNs
        let steps = outcomes.reduce(Int64(0)) { $0 + $1.steps }
        let perStep = Int64(phase.opsPerStep)
        let run = TimedRun(
            threads: threads, calls: steps, ops: steps * perStep, seconds: Double(endNs &- startNs) / 1e9,
            histogram: LatencyHistogram.merged(outcomes.map(\.histogram)),
            opsPerThread: outcomes.map { $0.steps * perStep }
        )
        let switches = ContextSwitches.now() - switchesBefore
        let after = probe.counters()
        var delta: [SwapStatistics.Counter: Int] = [:]
        for counter in SwapStatistics.Counter.allCases { delta[counter] = after[counter, default: 0] - before[counter, default: 0] }
        progress.finish(detail: "\(BenchReport.count(run.opsPerSecond)) ops/s")
        var outcome = PhaseOutcome(name: phase.name, measured: phase.measured, run: run, counters: delta, peakResidentFrames: phasePeak)
        if perStep > 1 { outcome.stepLatency = LatencyHistogram.merged(outcomes.compactMap(\.stepHistogram)).summary }
        outcome.contextSwitches = switches
        return outcome
    }

    /// Keeps the process's memory if its resident set is the largest seen.
    private func sampleProcessMemory() {
        guard let now = ProcessMemory.now() else { return }
        if now.rssBytes > peakProcessMemory?.rssBytes ?? -1 { peakProcessMemory = now }
    }

    /// The live part of a progress line: "201k ops/s, resident 255 MiB, swap-ins 1.2M, swap-outs 1.3M".
    static func progressDetail(opsPerSecond: Double, residentFrames: Int, swapIns: Int, swapOuts: Int) -> String {
        "\(BenchReport.count(opsPerSecond)) ops/s, resident \(residentFrames * 4096 / 1_048_576) MiB, swap-ins \(BenchReport.count(Double(swapIns))), swap-outs \(BenchReport.count(Double(swapOuts)))"
    }

    /// Every counter of the space, now.
    static func counters(_ space: SwapSpace) -> [SwapStatistics.Counter: Int] {
        SpaceProbe(space: space).counters()
    }
}

/// What `WorkloadDriver` samples while a phase runs. Read ten times a second from the driver's
/// own thread, never on a worker's hot path, so an existential is fine here.
public protocol WorkloadProbe: Sendable {
    /// Pages of the workload's memory resident now: the space's frames in use, or the memory
    /// cgroup's usage in 4 KiB pages.
    var residentPages: Int { get }
    /// Every counter the probe knows, now (the driver subtracts two readings). Counters a probe
    /// cannot see are absent.
    func counters() -> [SwapStatistics.Counter: Int]
}

/// A UserSwap space: its frames in use and its statistics.
public struct SpaceProbe: WorkloadProbe {
    public let space: SwapSpace

    public init(space: SwapSpace) { self.space = space }

    public var residentPages: Int { space.residentFrames }

    public func counters() -> [SwapStatistics.Counter: Int] {
        var values: [SwapStatistics.Counter: Int] = [:]
        let stats = space.statistics
        for counter in SwapStatistics.Counter.allCases { values[counter] = stats[counter] }
        return values
    }
}

/// One thread's worker in a phase, with the driver's timing loop made where the worker's type
/// is known (`WorkloadPhase.init`), so that the loop and the worker's `step` are specialized
/// together. Made and used on the worker's own thread.
struct PreparedWorker {
    let drive: (_ shared: DriverShared, _ quota: Int, _ deadline: UInt64) throws -> DriverShared.Outcome

    init<Worker: WorkloadWorker>(_ worker: Worker, opsPerStep: Int = 1) {
        var worker = worker
        drive = { shared, quota, deadline in try shared.drive(&worker, quota: quota, deadline: deadline, opsPerStep: opsPerStep) }
    }
}

/// What the threads of one phase share.
final class DriverShared: Sendable {
    struct Outcome: Sendable {
        var histogram: LatencyHistogram
        /// Each step's own time, when a step is several operations.
        var stepHistogram: LatencyHistogram?
        var steps: Int64
        var endNs: UInt64
    }

    let ready = DispatchSemaphore(value: 0)
    let go = DispatchSemaphore(value: 0)
    let finished = DispatchSemaphore(value: 0)
    /// Written before `go` is signalled (the semaphore orders it too).
    let startNs = Atomic<UInt64>(0)
    /// Set on the first error: every thread stops at its next step.
    let stop = Atomic<Bool>(false)
    /// Steps so far, added every 256 steps, for the display.
    let progressSteps = Atomic<Int>(0)
    /// Each thread writes its own slot once, at its end.
    let results: Mutex<[Outcome?]>
    let firstError = Mutex<(any Error)?>(nil)

    init(threads: Int) {
        results = Mutex(Array(repeating: nil, count: threads))
    }

    func work(thread: Int, threads: Int, quota: Int?, seconds: Double?, phase: WorkloadPhase) {
        defer { finished.signal() }
        let worker = phase.prepare(thread, threads)
        ready.signal()
        go.wait()
        let start = startNs.load(ordering: .acquiring)
        let deadline = seconds.map { start &+ UInt64($0 * 1e9) } ?? .max
        do {
            let outcome = try worker.drive(self, quota ?? .max, deadline)
            results.withLock { $0[thread] = outcome }
        } catch {
            firstError.withLock { if $0 == nil { $0 = error } }
            stop.store(true, ordering: .releasing)
        }
    }

    /// The loop, specialized per worker type (by `PreparedWorker`, where the type is known).
    func drive<W: WorkloadWorker>(_ worker: inout W, quota: Int, deadline: UInt64, opsPerStep: Int = 1) throws -> Outcome {
        var histogram = LatencyHistogram()
        var stepHistogram: LatencyHistogram? = opsPerStep > 1 ? LatencyHistogram() : nil
        var steps = 0
        var before = cus_monotonic_ns()
        // Relaxed: a stop seen one step late costs one step.
        while steps < quota, !stop.load(ordering: .relaxed) {
            try worker.step()
            let after = cus_monotonic_ns()
            if opsPerStep == 1 {
                histogram.record(after &- before)
            } else {
                // As `runTimed` with `opsPerCall`: each operation of the batch gets its share.
                histogram.record((after &- before) / UInt64(opsPerStep), times: UInt64(opsPerStep))
                stepHistogram?.record(after &- before)
            }
            before = after
            steps += 1
            if steps & 255 == 0 {
                // Relaxed: a display counter.
                progressSteps.wrappingAdd(256, ordering: .relaxed)
            }
            if after >= deadline { break }
        }
        worker.finish()
        return Outcome(histogram: histogram, stepHistogram: stepHistogram, steps: Int64(steps), endNs: before)
    }
}
