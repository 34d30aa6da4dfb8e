/// How reclaim chooses the pages to swap out.
public enum ReclaimPolicy: String, Sendable, CaseIterable {
    /// The kernel's: an active and an inactive list, a referenced page activated on its second
    /// look, and refault detection — a page evicted only a short refault distance ago comes back
    /// straight to the active list.
    case workingset
    /// The two lists without refault detection: every swapped-in page starts inactive.
    case activeInactive
    /// Plain second chance (the clock algorithm): one list; a referenced page has its bit cleared
    /// and goes round again, the first unreferenced page is evicted.
    case secondChance
}
