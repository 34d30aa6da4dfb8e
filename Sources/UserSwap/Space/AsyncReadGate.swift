import Synchronization

/// How many reads async pins keep in flight at once, and the tasks waiting to start one, in
/// order of arrival: back-pressure for the frames those reads hold. A read's folio is locked
/// and off the LRU until the read completes, so reclaim cannot take it; a thousand tasks each
/// starting a read could hold every frame of the budget that way, and their allocations would
/// find nothing to reclaim. A blocking pin is bounded by its threads; an async one by this
/// gate: `limit` reads (a quarter of the frames), and every further task that must start a
/// read suspends here until one ends — no spinning, no blocked thread — and is let through
/// first come, first served. Tasks that find their page cached, or being read by another,
/// pass without a slot.
final class AsyncReadGate: Sendable {
    /// Reads in flight at most.
    let limit: Int

    private struct State: ~Copyable {
        var available: Int
        var nextID = 0
        /// Waiting tasks, oldest first.
        var waiters: [(id: Int, continuation: UnsafeContinuation<Bool, Never>?)] = []
        /// Tasks given a slot by `release` before they suspended.
        var granted: Set<Int> = []
        /// Tasks cancelled before they suspended.
        var cancelled: Set<Int> = []
    }

    private let state: Mutex<State>

    init(limit: Int) {
        require(limit >= 1, "an async read gate of \(limit) reads lets none through")
        self.limit = limit
        state = Mutex(State(available: limit), rank: .folioWaitBucket)
    }

    /// Takes a slot if one is free and nobody is waiting for one (arrival order).
    func tryAcquire() -> Bool {
        state.withLock { s in
            guard s.available > 0 && s.waiters.isEmpty else { return false }
            s.available -= 1
            return true
        }
    }

    /// Suspends until a slot is free for this task (after every task that came before it).
    /// Throws `.cancelled` if the task is cancelled while waiting, holding no slot then.
    func acquire() async throws(SwapError) {
        let id: Int? = state.withLock { s in
            if s.available > 0 && s.waiters.isEmpty {
                s.available -= 1
                return nil
            }
            defer { s.nextID += 1 }
            s.waiters.append((s.nextID, nil))
            return s.nextID
        }
        guard let id else { return }
        let got = await withTaskCancellationHandler {
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
                if c == nil { s.cancelled.insert(id) }
                return .some(c)
            }
            if case .some(.some(let c)) = c { c.resume(returning: false) }
        }
        guard got else { throw SwapError(.cancelled, "the task was cancelled while it waited to read a page; nothing was pinned") }
    }

    /// Gives a slot back: to the oldest waiting task, or to the pool.
    func release() {
        let c: UnsafeContinuation<Bool, Never>? = state.withLock { s in
            guard !s.waiters.isEmpty else {
                s.available += 1
                require(s.available <= limit, "async read gate released more than taken")
                return nil
            }
            let next = s.waiters.removeFirst()
            if next.continuation == nil { s.granted.insert(next.id) }
            return next.continuation
        }
        c?.resume(returning: true)
    }

    /// Slots free now (tests).
    var available: Int { state.withLock { $0.available } }
}
