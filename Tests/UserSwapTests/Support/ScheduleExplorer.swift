import CUserSwap
import Foundation
import Synchronization

@testable import UserSwap

/// A cooperative scheduler for the engine's yield points: the test's threads run one at a time
/// and switch only at yield points, in an order chosen by the explorer, so an interleaving can be
/// forced and replayed. A thread about to sleep on a folio lock announces it (`.blocking`) and
/// the scheduler runs another; it pauses again at its next yield point.
///
/// A legacy racer about to sleep a tick before it looks again (`.swapInRetry`) pauses there like
/// at any yield point, and is not picked again until another thread has taken a step (unless
/// nobody else can run): its sleep is what lets the bit's holder run. The sleep itself happens
/// while the scheduler waits for the racer, so how late the scheduler wakes never decides what
/// a run does. (Announced as `.blocking`, the racer raced the scheduler: on a loaded machine
/// it was back before the scheduler looked, was picked again by the default first choice while
/// the holder stayed paused, and every run became a long retry loop that depth-first search
/// then branched on.)
///
/// The allocator's point under the cluster lock (`YieldPoint.holdsClusterLock`) is passed by
/// unless the test asks for it (`pausesUnderClusterLock`): a thread that then waits for that
/// cluster lock sleeps in a futex the scheduler cannot see, and the run would hang. A test asks
/// only when its other threads need no cluster lock of the device while the allocation is paused.
final class ControlledScheduler: YieldScheduler, @unchecked Sendable {
    enum Status: Equatable { case starting, waiting(YieldPoint), running, blocked, done }

    private struct State {
        var ids: [UInt32: Int] = [:]  // thread slot → test thread index
        var status: [Status]
        var trace: [String] = []
        /// Threads paused at a retry point that wait for another thread's step.
        var retrying: Set<Int> = []
    }

    private let state: Mutex<State>
    private let semaphores: [DispatchSemaphore]
    private let events = DispatchSemaphore(value: 0)
    /// Tests of the scheduler itself: a delay before every look at the threads' states, the way
    /// a loaded machine wakes the scheduler late.
    private let lag: Duration
    /// Whether threads pause at the yield point reached under a cluster lock.
    private let pausesUnderClusterLock: Bool

    init(threads: Int, lag: Duration = .zero, pausesUnderClusterLock: Bool = false) {
        state = Mutex(State(status: Array(repeating: .starting, count: threads)))
        semaphores = (0..<threads).map { _ in DispatchSemaphore(value: 0) }
        self.lag = lag
        self.pausesUnderClusterLock = pausesUnderClusterLock
    }

    /// Called by test thread `i` before its work: waits for its first turn.
    func enter(_ i: Int) {
        state.withLock {
            $0.ids[cus_thread_slot()] = i
            $0.status[i] = .waiting(.swapInMissed)
        }
        events.signal()
        semaphores[i].wait()
    }

    func finish(_ i: Int) {
        state.withLock { $0.status[i] = .done }
        events.signal()
    }

    func reached(_ point: YieldPoint) {
        if point.holdsClusterLock && !pausesUnderClusterLock { return }
        guard let i = state.withLock({ $0.ids[cus_thread_slot()] }) else { return }
        if point == .blocking {
            state.withLock { $0.status[i] = .blocked }
            events.signal()
            return
        }
        state.withLock { s in
            s.status[i] = .waiting(point)
            s.trace.append("\(i):\(point.rawValue)")
            if point == .swapInRetry { s.retrying.insert(i) }
        }
        events.signal()
        semaphores[i].wait()
    }

    /// Runs the threads to completion, asking `choose` which waiting thread goes next at every
    /// switch. Returns false if the threads stopped making progress (a hang).
    func run(choose: ([Int]) -> Int) -> Bool {
        while true {
            // Wait until nobody we scheduled is still running.
            var waited = 0
            var runnable: [Int] = []
            while true {
                if lag > .zero { Thread.sleep(forTimeInterval: Double(lag.components.seconds) + Double(lag.components.attoseconds) / 1e18) }
                let (anyRunning, ready, allDone) = state.withLock { s -> (Bool, [Int], Bool) in
                    let running = s.status.contains(.running) || s.status.contains(.starting)
                    let waiting = s.status.indices.filter {
                        if case .waiting = s.status[$0] { return true }
                        return false
                    }
                    // A retrying thread waits for another's step, unless nobody else can run.
                    let others = waiting.filter { !s.retrying.contains($0) }
                    return (running, others.isEmpty ? waiting : others, s.status.allSatisfy { $0 == .done })
                }
                if allDone { return true }
                if !anyRunning && !ready.isEmpty {
                    runnable = ready
                    break
                }
                if events.wait(timeout: .now() + .milliseconds(50)) == .timedOut {
                    waited += 50
                    if waited > 10_000 { return false }
                }
            }
            let pick = choose(runnable)
            state.withLock { s in
                s.status[pick] = .running
                // Another thread's step ends every retrying thread's wait.
                if s.retrying.contains(pick) { s.retrying.remove(pick) } else { s.retrying.removeAll() }
            }
            semaphores[pick].signal()
        }
    }

    var trace: [String] { state.withLock { $0.trace } }
}

/// Stateless exploration of interleavings: depth-first over the choices made at each switch
/// (replaying a prefix, then the next alternative), up to a budget of runs; or random choices.
struct ScheduleExplorer {
    /// Each decision: the chosen index among the runnable threads, and how many there were.
    private var stack: [(choice: Int, options: Int)] = []
    private(set) var runs = 0

    /// The decision log for the next run, or nil when every interleaving has been tried.
    mutating func nextRun() -> DecisionLog? {
        if runs > 0 {
            // Advance the deepest decision that has an untried alternative.
            while let last = stack.last, last.choice + 1 >= last.options { stack.removeLast() }
            if stack.isEmpty { return nil }
            stack[stack.count - 1].choice += 1
        }
        runs += 1
        return DecisionLog(prefix: stack)
    }

    /// Records the decisions of the run just finished (call after `run`).
    mutating func record(_ log: DecisionLog) { stack = log.decisions }
}

/// The decisions of one run: follows a prefix, then always picks the first runnable thread.
final class DecisionLog: @unchecked Sendable {
    private(set) var decisions: [(choice: Int, options: Int)]
    private var position = 0

    init(prefix: [(choice: Int, options: Int)]) { decisions = prefix }

    func decide(_ runnable: [Int]) -> Int {
        defer { position += 1 }
        if position < decisions.count {
            let c = min(decisions[position].choice, runnable.count - 1)
            decisions[position] = (c, runnable.count)
            return runnable[c]
        }
        decisions.append((0, runnable.count))
        return runnable[0]
    }
}

/// Runs `threads` bodies under a controlled scheduler with `choose`; returns false on a hang.
/// `lag` delays the scheduler before each look at the threads (tests of its determinism);
/// `pausesUnderClusterLock` makes allocations pause under their cluster lock (see
/// `ControlledScheduler`).
func runControlled(
    _ threads: [@Sendable () -> Void], lag: Duration = .zero, pausesUnderClusterLock: Bool = false,
    choose: @escaping ([Int]) -> Int
) -> Bool {
    let scheduler = ControlledScheduler(threads: threads.count, lag: lag, pausesUnderClusterLock: pausesUnderClusterLock)
    YieldPoints.install(scheduler)
    defer { YieldPoints.uninstall() }
    let done = DispatchSemaphore(value: 0)
    for (i, body) in threads.enumerated() {
        Thread {
            scheduler.enter(i)
            body()
            scheduler.finish(i)
            done.signal()
        }.start()
    }
    let ok = scheduler.run(choose: choose)
    if ok { for _ in threads { done.wait() } }
    return ok
}
