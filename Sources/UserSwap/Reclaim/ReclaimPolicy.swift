/// How reclaim chooses the pages to swap out.
public enum ReclaimPolicy: String, Sendable, CaseIterable {
    /// The kernel's: an active and an inactive list, a referenced page activated on its second
    /// look, and refault detection — a page evicted only a short refault distance ago comes back
    /// straight to the active list.
    case workingset
    /// The two lists without refault detection: every swapped-in page starts inactive.
    case activeInactive
    /// Frequency-ranked eviction: one list; reclaim takes a batch from its tail and swaps out
    /// the least used quarter, returning the rest to the head. A folio's use count (`UseCount`)
    /// grows with each pin (a transparent page: each time reclaim finds it mapped again), halves every
    /// four budgets' worth of evictions, and survives eviction in its shadow. On skewed access
    /// (Zipf) it keeps the pages used most, not just the pages used last: fewer swap-ins than
    /// the kernel's lists, at the price of looking at four folios per eviction.
    case frequency
    /// Plain second chance (the clock algorithm): one list; a referenced page has its bit cleared
    /// and goes round again, the first unreferenced page is evicted.
    case secondChance
}
