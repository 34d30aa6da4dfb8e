/// Splitting a large folio into single pages (kernel: `split_folio`): the fallback when swap has
/// no run of slots for the whole folio, and the way an explicit swap-out takes part of one.
extension Reclaimer {
    /// Splits the locked folio `f`, not in the swap cache and mapped (some of its pages) by
    /// `mapping`, into single-page folios, if nobody but its page-table mappings and the caller
    /// holds it. The first page stays locked with the caller's reference, on the LRU list it
    /// was on (if any); the other mapped pages go on the inactive list, and pages nothing maps
    /// any more (zapped since the folio was made) are freed. Returns false, changing nothing, if
    /// someone else holds a reference.
    ///
    /// The page-table lock is held throughout, so that no page of the folio is mapped or unmapped
    /// while its references are frozen and rewritten (the kernel unmaps the folio first for the
    /// same reason): an unmap racing the split would drop a reference of a folio that no longer
    /// exists.
    func splitFolio(_ f: Folio, mappedBy mapping: any ReverseMapping) -> Bool {
        assert(frames.isLocked(f))
        let nr = frames.pageCount(f)
        let flags = frames.flags(f)
        require(nr > 1 && !flags.contains(.swapcache), "cannot split \(f) in state \(flags)")
        let owner = frames.owner(f)
        guard !owner.isNone, owner.region == mapping.id else { return false }
        var unmapped: [Folio] = []
        let split = mapping.withMappedPages(ofLockedFolio: f, base: owner.page) { mapped -> Bool in
            // Every mapped page once, plus the caller: freeze so no lookup or pin slips in.
            guard frames.freeze(f, expected: UInt32(mapped.count(where: { $0 }) + 1)) else { return false }
            let group = frames.group(f)
            let lru = allocator.lru(f)
            if flags.contains(.lru) { lru.remove(f) }
            let inherited = flags.intersection([.uptodate, .dirty, .swapbacked, .referenced, .workingset])
            let uses = frames.uses(f)
            for i in 0..<nr {
                let page = Folio(frame: f.frame + UInt32(i))
                frames.initializeMeta(page, order: 0, group: group)
                frames.setOwner(page, mapped[i] ? owner.advanced(by: i) : .none)
                guard i > 0 else { continue }
                frames.setUses(page, uses)
                frames.setFlags(page, inherited)
                if mapped[i] {
                    frames.initializeRefcount(page, 1)
                    lru.add(page, to: .inactive)
                } else {
                    // Only our reference, dropped below, once the page table is unlocked.
                    frames.initializeRefcount(page, 1)
                    unmapped.append(page)
                }
            }
            frames.initializeRefcount(f, mapped[0] ? 2 : 1)
            if flags.contains(.lru) { lru.add(f, to: flags.contains(.active) ? .active : .inactive) }
            return true
        }
        guard split else { return false }
        for page in unmapped { allocator.putFolio(page) }
        stats.count(.splitFallbacks)
        return true
    }
}
