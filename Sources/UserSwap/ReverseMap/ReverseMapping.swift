/// What reclaim needs of a mapping it found through the reverse map: a region, seen from below
/// (kernel: the `rmap_walk` callbacks, `try_to_unmap_one`). Regions conform; reclaim knows
/// nothing else of them.
protocol ReverseMapping: AnyObject, Sendable {
    /// The id in the keys of the folios it maps (`ReverseMapKey.region`).
    var id: Int { get }

    /// Swaps out the locked folio `f`, whose owner key names this mapping: gives it slots, unmaps
    /// it and, unless `deferringWrite`, writes it and takes it out of the swap cache. Caller
    /// holds `f`'s lock and one reference.
    func shrink(lockedFolio f: Folio, deferringWrite: Bool) throws(SwapError) -> ShrinkOutcome
}

/// What `ReverseMapping.shrink(lockedFolio:deferringWrite:)` did with the folio.
enum ShrinkOutcome: Equatable {
    /// The folio left memory: its references are all gone (the caller's too).
    case removed
    /// It stays (busy, pinned, remapped).
    case kept
    /// Unmapped and in the swap cache, dirty: the caller writes it (in a batch), still
    /// holding the folio lock and its reference.
    case needsWrite
}
