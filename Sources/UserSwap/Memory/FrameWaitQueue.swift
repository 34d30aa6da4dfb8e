import Synchronization

/// Tasks whose allocation found no free frame, suspended until the background reclaimer has
/// freed some, and resumed in order of arrival (kernel: `pgdat->pfmemalloc_wait`, on which
/// `throttle_direct_reclaim` parks an allocating task until kswapd has freed enough, rather
/// than let it reclaim itself). An async pin must not reclaim on its cooperative thread — a
/// reclaim writes pages out and waits for other threads — nor spin: it takes a ticket, joins
/// the queue, wakes the background reclaimer and suspends. The reclaimer resumes the oldest
/// waiters, as many as frames are free, after each batch it frees (`resume(upTo:)`).
///
/// A task keeps its ticket across its retries: resumed but beaten to the frames (by a blocking
/// thread's allocation), it waits again in its old place, ahead of every later arrival. A new
/// arrival that finds others waiting queues behind them instead of taking a frame that came
/// free for them (`isEmpty`).
final class FrameWaitQueue: Sendable {
    /// A task's place in the queue, kept across its waits.
    struct Ticket: Sendable, Equatable {
        let id: Int
    }

    private struct State: ~Copyable {
        var nextID = 0
        /// Waiting tasks, lowest ticket (oldest) first.
        var waiters: [(id: Int, continuation: UnsafeContinuation<Bool, Never>?)] = []
        /// Tickets resumed by `resume` before their task suspended.
        var granted: Set<Int> = []
        /// Tickets whose task was cancelled before it suspended.
        var cancelled: Set<Int> = []
        #if DEBUG
        /// Every ticket resumed, in order (tests).
        var resumed: [Int] = []
        #endif
    }

    private let state = Mutex(State(), rank: .frameWaiters)
    /// How many tasks are queued, for the lock-free `isEmpty`.
    private let waiting = Atomic<Int>(0)

    /// Whether no task is waiting. Acquiring: pairs with the queue's releasing updates, so a
    /// task that sees it empty after a reclaimer's `resume` also sees the frames it freed.
    var isEmpty: Bool { waiting.load(ordering: .acquiring) == 0 }

    /// Tasks waiting now (tests, reports).
    var count: Int { waiting.load(ordering: .acquiring) }

    /// A new place at the end of the queue.
    func ticket() -> Ticket {
        state.withLock { s in
            defer { s.nextID += 1 }
            return Ticket(id: s.nextID)
        }
    }

    /// Queues `ticket` in its place, calls `queued` (which wakes the reclaimer: after the
    /// queueing, so that the reclaimer's next `resume` finds this task), and suspends until
    /// `resume` reaches it. Throws `.cancelled` if the task is cancelled while waiting.
    func wait(_ ticket: Ticket, queued: () -> Void) async throws(SwapError) {
        let id = ticket.id
        state.withLock { s in
            // Usually the newest ticket, at the end; a retrying task goes back to its place.
            let place = s.waiters.lastIndex { $0.id < id }.map { $0 + 1 } ?? 0
            s.waiters.insert((id, nil), at: place)
            waiting.add(1, ordering: .releasing)
        }
        queued()
        let resumed = await withTaskCancellationHandler {
            await withUnsafeContinuation { (c: UnsafeContinuation<Bool, Never>) in
                let now: Bool? = state.withLock { s in
                    if s.granted.remove(id) != nil { return true }
                    if s.cancelled.remove(id) != nil { return false }
                    if let i = s.waiters.firstIndex(where: { $0.id == id }) { s.waiters[i].continuation = c }
                    return nil
                }
                if let now { c.resume(returning: now) }
            }
        } onCancel: {
            let c: UnsafeContinuation<Bool, Never>?? = state.withLock { s in
                guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                let c = s.waiters.remove(at: i).continuation
                waiting.subtract(1, ordering: .releasing)
                if c == nil { s.cancelled.insert(id) }
                return .some(c)
            }
            if case .some(.some(let c)) = c { c.resume(returning: false) }
        }
        guard resumed else {
            throw SwapError(.cancelled, "the task was cancelled while it waited for free memory; nothing was pinned")
        }
    }

    /// Resumes the `n` oldest waiting tasks (fewer if fewer wait). Returns how many. The caller
    /// holds no lock of rank 37 or lower.
    @discardableResult
    func resume(upTo n: Int) -> Int {
        guard n > 0, !isEmpty else { return 0 }
        let (count, ready): (Int, [UnsafeContinuation<Bool, Never>]) = state.withLock { s in
            let taken = s.waiters.prefix(n)
            s.waiters.removeFirst(taken.count)
            waiting.subtract(taken.count, ordering: .releasing)
            #if DEBUG
            s.resumed.append(contentsOf: taken.map(\.id))
            #endif
            let ready = taken.compactMap { w in
                if w.continuation == nil { s.granted.insert(w.id) }
                return w.continuation
            }
            return (taken.count, ready)
        }
        for c in ready { c.resume(returning: true) }
        return count
    }

    /// Resumes every waiting task: reclaim found nothing to free, and each looks again (to wait
    /// for frames in flight, or to fail with the allocation's error).
    func resumeAll() {
        resume(upTo: .max)
    }

    #if DEBUG
    /// Every ticket `resume` reached, in the order it did (tests).
    var resumedTickets: [Int] { state.withLock { $0.resumed } }
    #endif
}
