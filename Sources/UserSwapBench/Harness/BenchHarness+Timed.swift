import CUserSwap
import Dispatch
import Foundation
import Synchronization
import UserSwap

/// How long each thread of `runTimed` keeps calling its operation.
public enum TimedLimit: Sendable, Equatable {
    /// Until this many seconds after the common start.
    case seconds(Double)
    /// Exactly this many calls per thread (a fixed job, e.g. one pass over the data).
    case callsPerThread(Int)
}

/// The outcome of `BenchHarness.runTimed`: what was done, how long it took, and the latency of
/// every call, merged over the threads.
public struct TimedRun: Sendable, Equatable {
    public let threads: Int
    /// Calls of the operation, over all threads.
    public let calls: Int64
    /// `calls × opsPerCall`.
    public let ops: Int64
    /// From the common start until the last thread stopped.
    public let seconds: Double
    /// Per-operation latency in nanoseconds (see `runTimed` for batches).
    public let histogram: LatencyHistogram
    /// Operations done by each thread, in thread order: a fairness check.
    public let opsPerThread: [Int64]

    public init(threads: Int, calls: Int64, ops: Int64, seconds: Double, histogram: LatencyHistogram, opsPerThread: [Int64]) {
        self.threads = threads
        self.calls = calls
        self.ops = ops
        self.seconds = seconds
        self.histogram = histogram
        self.opsPerThread = opsPerThread
    }

    public var opsPerSecond: Double { seconds > 0 ? Double(ops) / seconds : 0 }
    public var latency: LatencySummary { histogram.summary }
}

extension BenchHarness {
    /// Runs `operation` on `threads` new threads at once until `limit`, timing every call.
    ///
    /// Each thread first calls `setUp(thread)` (untimed; the state it returns never leaves that
    /// thread, so it need not be `Sendable`), then all threads wait at a common start line, then
    /// each calls `operation(&state)` in a loop, timing each call with `cus_monotonic_ns` (one
    /// clock read per call: a call's end is the next call's start, so a sample also holds ~3 ns
    /// of loop and histogram bookkeeping), and finally `tearDown(&state)`, untimed.
    ///
    /// With `opsPerCall > 1` (a batch per call, to amortise the ~25 ns clock read over short
    /// operations) the histogram gets each call's time ÷ `opsPerCall`, counted `opsPerCall`
    /// times: tails are averaged over the batch, so keep 1 when tails matter.
    ///
    /// The first error any call throws stops every thread; it is rethrown after they all end.
    /// A progress bar follows the clock (or the calls done, for `.callsPerThread`).
    public func runTimed<State>(
        _ label: String,
        threads: Int,
        limit: TimedLimit,
        opsPerCall: Int = 1,
        setUp: @escaping @Sendable (_ thread: Int) throws -> State,
        operation: @escaping @Sendable (_ state: inout State) throws -> Void,
        tearDown: (@Sendable (_ state: inout State) throws -> Void)? = nil
    ) throws -> TimedRun {
        require(threads >= 1, "runTimed needs at least one thread")
        require(opsPerCall >= 1, "opsPerCall counts operations in one call")
        let shared = TimedRunShared(threads: threads)
        let progress = self.progress(label)

        for thread in 0..<threads {
            let worker = Thread {
                shared.work(thread: thread, limit: limit, opsPerCall: opsPerCall, setUp: setUp, operation: operation, tearDown: tearDown)
            }
            worker.name = "bench-\(thread)"
            worker.start()
        }
        // Everybody set up: start the clock and open the gate.
        for _ in 0..<threads { shared.ready.wait() }
        let startNs = cus_monotonic_ns()
        shared.startNs.store(startNs, ordering: .releasing)
        for _ in 0..<threads { shared.go.signal() }

        var finished = 0
        while finished < threads {
            if shared.finished.wait(timeout: .now() + .milliseconds(100)) == .success {
                finished += 1
            }
            switch limit {
            case .seconds(let seconds):
                progress.update(Double(cus_monotonic_ns() &- startNs) / 1e9 / seconds)
            case .callsPerThread(let calls):
                // Relaxed: the counter only feeds the display.
                progress.update(Double(shared.progressCalls.load(ordering: .relaxed)) / Double(calls * threads))
            }
        }
        let results = shared.results.withLock { $0 }
        if let error = shared.firstError.withLock({ $0 }) {
            progress.finish(detail: "failed")
            throw error
        }
        let outcomes = results.map { $0! }
        let endNs = outcomes.map(\.endNs).max() ?? startNs
        let calls = outcomes.reduce(0) { $0 + $1.calls }
        let run = TimedRun(
            threads: threads,
            calls: calls,
            ops: calls * Int64(opsPerCall),
            seconds: Double(endNs &- startNs) / 1e9,
            histogram: LatencyHistogram.merged(outcomes.map(\.histogram)),
            opsPerThread: outcomes.map { $0.calls * Int64(opsPerCall) }
        )
        progress.finish(detail: "\(BenchReport.count(run.opsPerSecond)) ops/s")
        return run
    }

    /// `runTimed` without per-thread state: `operation(thread)`.
    public func runTimed(
        _ label: String,
        threads: Int,
        limit: TimedLimit,
        opsPerCall: Int = 1,
        operation: @escaping @Sendable (_ thread: Int) throws -> Void
    ) throws -> TimedRun {
        try runTimed(
            label, threads: threads, limit: limit, opsPerCall: opsPerCall,
            setUp: { $0 }, operation: { thread in try operation(thread) })
    }
}

/// What the threads of one `runTimed` share.
private final class TimedRunShared: Sendable {
    struct Outcome: Sendable {
        var histogram: LatencyHistogram
        var calls: Int64
        var endNs: UInt64
    }

    /// Workers signal once set up; the caller waits for all of them.
    let ready = DispatchSemaphore(value: 0)
    /// The caller signals once per worker to start.
    let go = DispatchSemaphore(value: 0)
    /// Workers signal once done (also after a failure).
    let finished = DispatchSemaphore(value: 0)
    /// The common start, written before `go` is signalled (the semaphore orders it too).
    let startNs = Atomic<UInt64>(0)
    /// Set on the first error: every worker stops at its next call.
    let stop = Atomic<Bool>(false)
    /// Calls done so far, updated every 1024 calls, for the progress display.
    let progressCalls = Atomic<Int64>(0)
    /// Each worker writes its own slot once, at its end.
    let results: Mutex<[Outcome?]>
    let firstError = Mutex<(any Error)?>(nil)

    init(threads: Int) {
        results = Mutex(Array(repeating: nil, count: threads))
    }

    func fail(_ error: any Error) {
        firstError.withLock { if $0 == nil { $0 = error } }
        stop.store(true, ordering: .releasing)
    }

    func work<State>(
        thread: Int,
        limit: TimedLimit,
        opsPerCall: Int,
        setUp: @Sendable (Int) throws -> State,
        operation: @Sendable (inout State) throws -> Void,
        tearDown: (@Sendable (inout State) throws -> Void)?
    ) {
        defer { finished.signal() }
        var state: State?
        do {
            state = try setUp(thread)
        } catch {
            fail(error)
        }
        ready.signal()
        go.wait()
        guard var state else { return }

        var histogram = LatencyHistogram()
        var calls: Int64 = 0
        let startNs = startNs.load(ordering: .acquiring)
        let deadline: UInt64
        let maxCalls: Int64
        switch limit {
        case .seconds(let seconds):
            deadline = startNs &+ UInt64(max(0, seconds) * 1e9)
            maxCalls = .max
        case .callsPerThread(let count):
            deadline = .max
            maxCalls = Int64(count)
        }
        var before = cus_monotonic_ns()
        do {
            // Relaxed: a stop seen one call late costs one call, nothing else.
            while calls < maxCalls, !stop.load(ordering: .relaxed) {
                try operation(&state)
                let after = cus_monotonic_ns()
                if opsPerCall == 1 {
                    histogram.record(after &- before)
                } else {
                    histogram.record((after &- before) / UInt64(opsPerCall), times: UInt64(opsPerCall))
                }
                calls += 1
                before = after
                if calls & 1023 == 0 {
                    // Relaxed: a display counter.
                    progressCalls.wrappingAdd(1024, ordering: .relaxed)
                }
                if after >= deadline { break }
            }
            let endNs = before
            try tearDown?(&state)
            results.withLock { $0[thread] = Outcome(histogram: histogram, calls: calls, endNs: endNs) }
        } catch {
            fail(error)
        }
    }
}
