/// How many reads async pins keep in flight at once, and the tasks waiting to start one, in
/// order of arrival: back-pressure for the frames those reads hold and for the device's I/O
/// engine. A read's folio is locked and off the LRU until the read completes, so reclaim cannot
/// take it; a thousand tasks each starting a read could hold every frame of the budget that
/// way, and their allocations would find nothing to reclaim. And each read holds one of its
/// device's request slots until the completer has finished it: with every slot taken, the
/// engine transfers a further request on the submitting thread (`IOEngine`, `ioInline`), which
/// for an async pin is a cooperative thread blocked in a disk read, with every task queued
/// behind it on that thread. A blocking pin is bounded by its threads; an async one by this
/// gate: `limit` reads (a quarter of the frames, and half of a device's request slots), and
/// every further task that must start a read suspends here until one ends — no spinning, no
/// blocked thread — and is let through first come, first served (`TicketQueue`). Tasks that
/// find their page cached, or being read by another, pass without a slot.
///
/// A slot is held until the task has run again after its read, not just until the read
/// completes: so the reads in flight and the tasks they made ready to run, queued on the
/// executor, are `limit` at most together, which also bounds how long a task that needs no
/// page waits behind them for a thread.
final class AsyncReadGate: Sendable {
    /// Reads in flight at most.
    let limit: Int

    /// The tasks waiting for a slot, with the slots free (`shared`).
    private let queue: TicketQueue<Int>

    init(limit: Int) {
        require(limit >= 1, "an async read gate of \(limit) reads lets none through")
        self.limit = limit
        queue = TicketQueue(limit, rank: .folioWaitBucket)
    }

    /// Takes a slot if one is free and nobody is waiting for one (arrival order).
    func tryAcquire() -> Bool {
        queue.withShared { available, nobodyWaits in Self.take(&available, nobodyWaits) }
    }

    /// Suspends until a slot is free for this task (after every task that came before it).
    /// Throws `.cancelled` if the task is cancelled while waiting, holding no slot then.
    func acquire() async throws(SwapError) {
        guard await queue.wait(unless: Self.take) else {
            throw SwapError(.cancelled, "the task was cancelled while it waited to read a page; nothing was pinned")
        }
    }

    /// Gives a slot back: to the oldest waiting task, or to the pool.
    func release() {
        let limit = self.limit
        queue.resume(upTo: 1) { available, left in
            available += left
            require(available <= limit, "async read gate released more than taken")
        }
    }

    /// Slots free now (tests).
    var available: Int { queue.withShared { available, _ in available } }

    /// Takes a free slot unless tasks wait for one (they came first).
    private static func take(_ available: inout Int, _ nobodyWaits: Bool) -> Bool {
        guard available > 0 && nobodyWaits else { return false }
        available -= 1
        return true
    }
}
