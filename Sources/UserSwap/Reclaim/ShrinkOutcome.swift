/// What `Reclaimer.pageout(lockedFolio:mappedBy:deferringWrite:)` did with a folio.
enum ShrinkOutcome: Equatable {
    /// The folio left memory: its references are all gone (the caller's too).
    case removed
    /// It stays (busy, pinned, remapped).
    case kept
    /// Unmapped and in the swap cache, dirty: the caller writes it (in a batch), still
    /// holding the folio lock and its reference.
    case needsWrite
}
