import CUserSwap
import Foundation
import Synchronization

@testable import UserSwap

/// A cooperative scheduler for the engine's yield points: the test's threads run one at a time
/// and switch only at yield points, in an order chosen by the explorer, so an interleaving can be
/// forced and replayed. A thread about to sleep on a folio lock announces it (`.blocking`) and
/// the scheduler runs another; it pauses again at its next yield point.
final class ControlledScheduler: YieldScheduler, @unchecked Sendable {
    enum Status: Equatable { case starting, waiting(YieldPoint), running, blocked, done }

    private struct State {
        var ids: [UInt32: Int] = [:]  // thread slot → test thread index
        var status: [Status]
        var trace: [String] = []
    }

    private let state: Mutex<State>
    private let semaphores: [DispatchSemaphore]
    private let events = DispatchSemaphore(value: 0)

    init(threads: Int) {
        state = Mutex(State(status: Array(repeating: .starting, count: threads)))
        semaphores = (0..<threads).map { _ in DispatchSemaphore(value: 0) }
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
        guard let i = state.withLock({ $0.ids[cus_thread_slot()] }) else { return }
        if point == .blocking {
            state.withLock { $0.status[i] = .blocked }
            events.signal()
            return
        }
        state.withLock { s in
            s.status[i] = .waiting(point)
            s.trace.append("\(i):\(point.rawValue)")
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
                let (anyRunning, ready, allDone) = state.withLock { s -> (Bool, [Int], Bool) in
                    let running = s.status.contains(.running) || s.status.contains(.starting)
                    let ready = s.status.indices.filter {
                        if case .waiting = s.status[$0] { return true }
                        return false
                    }
                    return (running, ready, s.status.allSatisfy { $0 == .done })
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
            state.withLock { $0.status[pick] = .running }
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
func runControlled(_ threads: [@Sendable () -> Void], choose: @escaping ([Int]) -> Int) -> Bool {
    let scheduler = ControlledScheduler(threads: threads.count)
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
