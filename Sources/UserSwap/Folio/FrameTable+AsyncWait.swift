import Synchronization

/// Waiting for a folio without blocking a thread: a task suspends until the folio is unlocked
/// or its writeback ends (kernel: `folio_wait_bit_common` on the hashed wait table, with the
/// task's continuation in place of the sleeping thread). See `FolioWaitTable` for the protocol.
extension FrameTable {
    /// Suspends the calling task until `bit` (`.locked` or `.writeback`) of `f` is clear, or
    /// returns at once if it is clear already. Caller holds a reference to `f` (so the frame
    /// cannot be freed and reused while it waits). Woken by the clearer, from whatever thread
    /// clears the bit (an async read's completer, typically); a wake-up does not mean the bit
    /// is still clear: the caller looks again.
    ///
    /// Throws `.cancelled` when the task is cancelled while suspended: its entry is gone from
    /// the table, and the folio is as it would be had the task never waited.
    func waitAsync(_ f: Folio, untilClear bit: FolioFlags) async throws(SwapError) {
        assert(bit == .locked || bit == .writeback, "tasks wait only for the lock or writeback")
        assert(refcount(f) > 0, "waiting for \(f) without a reference")
        let waiter = FolioWaiter()
        let bucket = waitTable.bucket(f.frame)
        let registered = bucket.entries.withLock { list in
            // Under the bucket's lock: a clearer that sees the flag takes this lock next, and
            // so finds the entry appended here.
            guard markAsyncWaiter(f, whileSet: bit) else { return false }
            list.append(FolioWaitTable.Entry(frame: f.frame, waiter: waiter))
            return true
        }
        guard registered else { return }
        let woken = await withTaskCancellationHandler {
            await withUnsafeContinuation { (c: UnsafeContinuation<Bool, Never>) in waiter.suspend(c) }
        } onCancel: {
            waiter.cancel()
        }
        guard woken else {
            // Not woken, so still listed (a wake-up would have removed it): out with it.
            bucket.entries.withLock { list in list.removeAll { $0.waiter === waiter } }
            throw SwapError(.cancelled, "the task was cancelled while it waited for a page; nothing was pinned")
        }
    }

    /// Sets `asyncWaiters` if `bit` is set (in one step with the check); false if `bit` is
    /// clear. Caller holds the bucket's lock of `f`.
    private func markAsyncWaiter(_ f: Folio, whileSet bit: FolioFlags) -> Bool {
        let word = storage.flags(f.frame)
        let async = FolioFlags.asyncWaiters.rawValue
        var old = word.pointee.load(ordering: .acquiring)
        while old & bit.rawValue != 0 {
            // Set already: the clear that will end this wait has not happened yet in the
            // word's order, and its clearer takes this bucket's lock after it (see the table).
            if old & async != 0 { return true }
            let (done, now) = word.pointee.compareExchange(expected: old, desired: old | async, ordering: .acquiringAndReleasing)
            if done { return true }
            old = now
        }
        return false
    }
}
