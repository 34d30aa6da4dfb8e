/// What reclaim needs of a mapping it found through the reverse map: a region, seen from below
/// (kernel: the `rmap_walk` callbacks, `try_to_unmap_one`). Regions conform; reclaim knows
/// nothing else of them, and drives pageout itself (`Reclaimer.pageout(lockedFolio:mappedBy:deferringWrite:)`).
protocol ReverseMapping: AnyObject, Sendable {
    /// The id in the keys of the folios it maps (`ReverseMapKey.region`).
    var id: Int { get }
    /// Its size in pages: a key's page range must lie inside.
    var pageCount: Int { get }

    /// Replaces every page-table entry of the locked folio `f` (first page `base`, in the swap
    /// cache at `entry` on `device`) with its swap entry, moves each mapping's reference from the
    /// folio to its slot, clears the folio's owner key and unmaps the pages from any other view
    /// of them (kernel: `try_to_unmap_one` with `folio_dup_swap`). Pages of its range that map something
    /// else are left alone. Fails, changing nothing, if no page maps it or anyone but the
    /// mappings, the cache and the caller holds the folio (a pin). Caller holds `f`'s lock and one reference.
    func unmap(lockedFolio f: Folio, base: Int, entry: SwapEntry, device: SwapDevice) -> Bool

    /// Runs `body` with the page-table lock over the locked folio `f` (first page `base`) held,
    /// giving it which of the folio's pages map it: none of them can be mapped or unmapped until
    /// `body` returns (a split rewrites the folio's references meanwhile).
    func withMappedPages<R>(ofLockedFolio f: Folio, base: Int, _ body: ([Bool]) -> R) -> R
}
