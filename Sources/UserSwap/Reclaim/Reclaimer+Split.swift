/// Splitting a large folio into single pages (kernel: `split_folio`), the fallback when swap has
/// no run of slots for the whole folio.
extension Reclaimer {
    /// Splits the locked folio `f`, not in the swap cache, into
    /// single-page folios, if nobody but its page-table mappings and the caller holds it. The
    /// first page stays locked with the caller's reference; the others go on the inactive list.
    /// Returns false, changing nothing, if someone else holds a reference.
    func splitFolio(_ f: Folio) -> Bool {
        assert(frames.isLocked(f))
        let nr = frames.pageCount(f)
        let flags = frames.flags(f)
        require(nr > 1 && !flags.contains(.swapcache), "cannot split \(f) in state \(flags)")
        let owner = frames.owner(f)
        guard !owner.isNone else { return false }
        // Every page mapped once, plus the caller: freeze so no lookup or pin slips in.
        guard frames.freeze(f, expected: UInt32(nr + 1)) else { return false }
        let group = frames.group(f)
        let inherited = flags.intersection([.uptodate, .dirty, .swapbacked, .referenced, .workingset])
        let uses = frames.uses(f)
        for i in 0..<nr {
            let page = Folio(frame: f.frame + UInt32(i))
            frames.initializeMeta(page, order: 0, group: group)
            frames.setOwner(page, owner.advanced(by: i))
            if i > 0 {
                frames.setUses(page, uses)
                frames.setFlags(page, inherited)
                frames.initializeRefcount(page, 1)
                allocator.lru(page).add(page, to: .inactive)
            }
        }
        frames.initializeRefcount(f, 2)
        stats.count(.splitFallbacks)
        return true
    }
}
