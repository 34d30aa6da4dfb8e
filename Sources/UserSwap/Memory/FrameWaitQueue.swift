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
    typealias Ticket = TicketQueue<Void>.Ticket

    private let queue = TicketQueue((), rank: .frameWaiters)

    /// Whether no task is waiting. Acquiring: pairs with the queue's releasing updates, so a
    /// task that sees it empty after a reclaimer's `resume` also sees the frames it freed.
    var isEmpty: Bool { queue.isEmpty }

    /// Tasks waiting now (tests, reports).
    var count: Int { queue.count }

    /// A new place at the end of the queue.
    func ticket() -> Ticket { queue.ticket() }

    /// Queues `ticket` in its place, calls `queued` (which wakes the reclaimer: after the
    /// queueing, so that the reclaimer's next `resume` finds this task), and suspends until
    /// `resume` reaches it. Throws `.cancelled` if the task is cancelled while waiting.
    func wait(_ ticket: Ticket, queued: () -> Void) async throws(SwapError) {
        guard await queue.wait(ticket, queued: queued) else {
            throw SwapError(.cancelled, "the task was cancelled while it waited for free memory; nothing was pinned")
        }
    }

    /// Resumes the `n` oldest waiting tasks (fewer if fewer wait). Returns how many. The caller
    /// holds no lock of rank 37 or lower.
    @discardableResult
    func resume(upTo n: Int) -> Int { queue.resume(upTo: n) }

    /// Resumes every waiting task: reclaim found nothing to free, and each looks again (to wait
    /// for frames in flight, or to fail with the allocation's error).
    func resumeAll() {
        resume(upTo: .max)
    }

    #if DEBUG
    /// Every ticket `resume` reached, in the order it did (tests).
    var resumedTickets: [Int] { queue.resumedTickets }
    #endif
}
