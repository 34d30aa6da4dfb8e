import Synchronization

/// How many pages the `async` API holds pinned at once in a space, and the most it may: a task
/// may keep a pin across `await`, and a pinned page cannot be reclaimed, so a thousand tasks
/// each holding a pin could hold the whole budget and leave every allocation waiting for
/// reclaim that can free nothing. Past the limit, an async pin throws `.pinLimit` at once
/// instead. Blocking pins are not counted: a thread holds its pin only while it runs, and
/// their fast path stays free of this atomic.
final class AsyncPinBudget: Sendable {
    /// The most async pins held at once.
    let limit: Int
    private let held = Atomic<Int>(0)

    init(limit: Int) {
        require(limit >= 1, "an async pin limit of \(limit) allows no pin")
        self.limit = limit
    }

    /// Async pins held now.
    var count: Int { held.load(ordering: .relaxed) }  // Relaxed: a count for reports and tests

    /// Takes one pin of the budget, or throws `.pinLimit` when `limit` are held.
    func take() throws(SwapError) {
        // Relaxed: a counter; the pin itself is ordered by the folio's reference count.
        let old = held.wrappingAdd(1, ordering: .relaxed).oldValue
        guard old < limit else {
            held.wrappingSubtract(1, ordering: .relaxed)  // Relaxed: as above
            throw SwapError(
                .pinLimit,
                "\(limit) pages are pinned through the async API already, the most this space allows (SwapSpace.Configuration.asyncPinLimit); release pins before taking more across an await, or raise the limit (keep it below the memory budget: reclaim needs unpinned pages to make room)"
            )
        }
    }

    /// Gives one pin back (an async pin's deinit, or a pin that failed).
    func release() {
        let old = held.wrappingSubtract(1, ordering: .relaxed).oldValue  // Relaxed: as in `take`
        assert(old > 0, "async pin budget released more than taken")
    }
}
