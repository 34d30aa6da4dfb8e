import Synchronization

/// Tasks suspended first come, first served, each in the place of its ticket, and resumed oldest
/// first by whoever frees what they wait for (kernel: an exclusive wait queue, whose
/// `wake_up_nr` wakes the oldest waiters, as `throttle_direct_reclaim` parks allocating tasks
/// on `pgdat->pfmemalloc_wait`). The queue of `FrameWaitQueue` (free frames) and of
/// `AsyncReadGate` (read slots): one wait, grant and cancel for both.
///
/// A ticket is a place: a task that was resumed but must wait again (beaten to what was freed
/// for it) waits with its old ticket, ahead of every later arrival. `shared` is the owner's
/// state that must change in one step with the queue (the gate's free slots): `wait` may let a
/// task pass on it instead of queueing, and `resume` hands it what no waiter took, both under
/// the queue's lock.
///
/// The hand-off between `resume` and a task not yet suspended (it queued, then calls
/// `withUnsafeContinuation`): `resume` records the ticket as granted, and the task, finding it
/// so, resumes at once. A task cancelled before it suspends is recorded likewise; one cancelled
/// while suspended is taken out of the queue and resumed by its cancellation handler. Each
/// continuation is resumed exactly once, outside the lock.
final class TicketQueue<Shared: Sendable>: Sendable {
    /// A task's place in the queue, kept across its waits.
    struct Ticket: Sendable, Equatable {
        let id: Int
    }

    private struct State: ~Copyable {
        var shared: Shared
        var nextID = 0
        /// Waiting tasks, lowest ticket (oldest) first; the continuation is nil until the task
        /// has suspended.
        var waiters: [(id: Int, continuation: UnsafeContinuation<Bool, Never>?)] = []
        /// Tickets resumed by `resume` before their task suspended.
        var granted: Set<Int> = []
        /// Tickets whose task was cancelled before it suspended.
        var cancelled: Set<Int> = []
        #if DEBUG
        /// Every ticket resumed, in order (tests).
        var resumed: [Int] = []
        #endif

        init(shared: consuming Shared) { self.shared = shared }

        mutating func newTicket() -> Int {
            defer { nextID += 1 }
            return nextID
        }
    }

    private let state: Mutex<State>
    /// How many tasks are queued, for the lock-free `isEmpty`.
    private let waiting = Atomic<Int>(0)

    /// A queue whose lock ranks `rank` in the lock order, with the owner's `shared` state.
    init(_ shared: Shared, rank: LockRank) {
        state = Mutex(State(shared: shared), rank: rank)
    }

    /// Whether no task is waiting. Acquiring: pairs with the queue's releasing updates, so a
    /// task that sees it empty after a `resume` also sees what the resumer freed before it.
    var isEmpty: Bool { waiting.load(ordering: .acquiring) == 0 }

    /// Tasks waiting now (tests, reports).
    var count: Int { waiting.load(ordering: .acquiring) }

    /// A new place at the end of the queue.
    func ticket() -> Ticket {
        state.withLock { s in Ticket(id: s.newTicket()) }
    }

    /// Runs `body` on the shared state under the queue's lock; its second argument says
    /// whether no task is queued.
    func withShared<R>(_ body: (inout Shared, _ nobodyWaits: Bool) -> R) -> R {
        state.withLock { s in body(&s.shared, s.waiters.isEmpty) }
    }

    /// Queues the task in the place of `ticket` (nil: a new ticket, at the end) unless `pass`
    /// — called under the lock with the shared state and whether nobody waits — lets it
    /// through; then calls `queued` (after the queueing, so that a resumer it wakes finds the
    /// task) and suspends until `resume` reaches it. Returns true when passed or resumed, false
    /// when the task was cancelled while it waited (it has left the queue then).
    func wait(
        _ ticket: Ticket? = nil, unless pass: (inout Shared, _ nobodyWaits: Bool) -> Bool = { _, _ in false },
        queued: () -> Void = {}
    ) async -> Bool {
        let id: Int? = state.withLock { s in
            if pass(&s.shared, s.waiters.isEmpty) { return nil }
            let id = ticket?.id ?? s.newTicket()
            // Usually the newest ticket, at the end; a waiting-again task goes back to its place.
            let place = s.waiters.lastIndex { $0.id < id }.map { $0 + 1 } ?? 0
            s.waiters.insert((id, nil), at: place)
            waiting.add(1, ordering: .releasing)
            return id
        }
        guard let id else { return true }
        queued()
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { (c: UnsafeContinuation<Bool, Never>) in
                let now: Bool? = state.withLock { s in
                    if s.granted.remove(id) != nil { return true }
                    if s.cancelled.remove(id) != nil { return false }
                    // Searched from the end: the task queued last, usually.
                    if let i = s.waiters.lastIndex(where: { $0.id == id }) { s.waiters[i].continuation = c }
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
    }

    /// Resumes the `n` oldest waiting tasks (fewer if fewer wait), and hands `leftover`, under
    /// the lock, the shared state and how many of the `n` found no waiter. Returns how many
    /// were resumed. The caller holds no lock of the queue's rank or lower.
    @discardableResult
    func resume(upTo n: Int, leftover: ((inout Shared, Int) -> Void)? = nil) -> Int {
        if leftover == nil && (n <= 0 || isEmpty) { return 0 }
        let (count, ready): (Int, [UnsafeContinuation<Bool, Never>]) = state.withLock { s in
            let taken = s.waiters.prefix(max(n, 0))
            s.waiters.removeFirst(taken.count)
            if !taken.isEmpty { waiting.subtract(taken.count, ordering: .releasing) }
            #if DEBUG
            s.resumed.append(contentsOf: taken.map(\.id))
            #endif
            let ready = taken.compactMap { w in
                if w.continuation == nil { s.granted.insert(w.id) }
                return w.continuation
            }
            leftover?(&s.shared, max(n, 0) - taken.count)
            return (taken.count, ready)
        }
        for c in ready { c.resume(returning: true) }
        return count
    }

    #if DEBUG
    /// Every ticket `resume` reached, in the order it did (tests).
    var resumedTickets: [Int] { state.withLock { $0.resumed } }
    #endif
}
