/// Pushing pages out to swap (kernel: the anonymous half of `shrink_folio_list`): allocate slots
/// and insert into the swap cache, unmap, write back if dirty, then remove from the cache. Reclaim
/// drives this under the budget; `swapOut(pages:)` drives it explicitly.
extension Region {
    /// Moves the resident pages of `pages` to swap and frees their frames. Pinned pages and
    /// pages someone is faulting in are skipped (they are busy). Returns how many were freed.
    /// Copies of swapped pages left in the swap cache go too: clean ones (read ahead, never
    /// used) are dropped without counting; a dirty one (its write failed earlier) is written
    /// and counts. Throws `.swapFull` when no slot is left, or a device's write error (the page
    /// then stays safely in memory, dirty).
    @discardableResult
    public func swapOut(pages: Range<Int>) throws(SwapError) -> Int {
        guard !pages.isEmpty else { return 0 }
        try checkPage(pages.lowerBound)
        try checkPage(pages.upperBound - 1)
        var freed = 0
        for page in pages where try shrinkPage(page) { freed += 1 }
        return freed
    }

    /// Swaps out the folio mapped at `page`, or the copy of a swapped page still in the swap
    /// cache. Returns true if a page whose data only memory held left it.
    func shrinkPage(_ page: Int) throws(SwapError) -> Bool {
        let frames = engine.frames
        let pte = pte(page)
        if pte.isSwap { return try shrinkCached(pte.swapEntry) }
        guard pte.isPresent else { return false }
        let f = frames.folio(containing: pte.frame)
        guard frames.tryGet(f) else { return false }
        frames.lock(f)
        let removed: Bool
        do {
            removed = frames.folio(containing: pte.frame) == f && self.pte(page) == pte ? try shrink(lockedFolio: f) : false
        } catch {
            frames.unlock(f)
            engine.allocator.putFolio(f)
            throw error
        }
        frames.unlock(f)
        if removed { engine.allocator.freeFolio(f) } else { engine.allocator.putFolio(f) }
        return removed
    }

    /// A swapped page whose folio is still in the swap cache, mapped by nobody: a readahead
    /// copy nobody used, or a page whose write failed after it was unmapped (it stays there,
    /// dirty, so that no data is lost). Writes it if it is dirty, then takes it out of memory.
    /// Returns true for a dirty page freed — memory held the only copy of its data, so it
    /// counts as a page swapped out; a clean copy is dropped without counting (the page was
    /// swapped out already). Throws the device's error if the write fails again (the folio then
    /// stays cached and dirty, as before).
    private func shrinkCached(_ entry: SwapEntry) throws(SwapError) -> Bool {
        let frames = engine.frames
        guard let f = engine.cache.swapCacheGetFolio(entry) else { return false }
        frames.lock(f)
        let outcome: (removed: Bool, wasDirty: Bool)
        do {
            outcome = try shrinkCached(lockedFolio: f, entry: entry)
        } catch {
            frames.unlock(f)
            engine.allocator.putFolio(f)
            throw error
        }
        frames.unlock(f)
        // Taken out of the cache, its references (ours too) are gone: free it.
        if outcome.removed { engine.allocator.freeFolio(f) } else { engine.allocator.putFolio(f) }
        return outcome.removed && outcome.wasDirty
    }

    /// `shrinkCached(_:)` with the folio locked and referenced.
    private func shrinkCached(lockedFolio f: Folio, entry: SwapEntry) throws(SwapError) -> (removed: Bool, wasDirty: Bool) {
        let frames = engine.frames
        let flags = frames.flags(f)
        // Still this entry's copy, not under write, and mapped by nobody (a mapped folio is the
        // present-page path's).
        guard frames.matches(f, entry), !flags.contains(.writeback), frames.owner(f).isNone,
            let device = engine.devices.device(for: frames.entry(f))
        else { return (false, false) }
        let dirty = flags.contains(.dirty)
        if dirty { try engine.reclaimer.writeback(f, device: device) }
        guard engine.reclaimer.removeMapping(f, device: device) else { return (false, false) }
        if !dirty { engine.stats.count(.cleanDrops) }
        return (true, dirty)
    }

    /// Swaps out folio `f`, whose first page is mapped by this region (its reverse map). Caller
    /// holds `f`'s lock and one reference. A large folio goes out as one run of slots; when no
    /// device has such a run it is split and its first page goes out alone (the others stay on
    /// the LRU for the next pass).
    ///
    /// Returns true when the folio left memory: its references are then all gone (the caller's
    /// too), and the caller unlocks and frees it. Returns false when it stays (busy, pinned, or
    /// remapped); throws when no slot is free or the write failed — in every non-true case the
    /// folio is still locked and the caller's reference still held.
    func shrink(lockedFolio f: Folio) throws(SwapError) -> Bool {
        try shrink(lockedFolio: f, deferringWrite: false) == .removed
    }

    /// `shrink(lockedFolio:)`, optionally stopping before the write so that reclaim can write many
    /// folios in one vectored call.
    func shrink(lockedFolio f: Folio, deferringWrite: Bool) throws(SwapError) -> ShrinkOutcome {
        let frames = engine.frames
        guard !frames.flags(f).contains(.writeback) else { return .kept }
        var nr = frames.pageCount(f)
        let key = frames.owner(f)
        let base = key.page
        guard key.region == id, base + nr <= pageCount else { return .kept }
        if !frames.flags(f).contains(.swapcache) {
            if engine.cache.folioAllocSwap(f) == nil {
                guard nr > 1, engine.reclaimer.splitFolio(f) else {
                    let free = engine.devices.devices.reduce(0) { $0 + $1.freePages }
                    throw SwapError(
                        .swapFull,
                        "no swap slot left for page \(base) of region \(id) (\(free) slots free); add a swap device or make it larger")
                }
                nr = 1
                guard engine.cache.folioAllocSwap(f) != nil else {
                    throw SwapError(.swapFull, "no swap slot left for page \(base) of region \(id); add a swap device or make it larger")
                }
            }
            // The device has no copy yet.
            frames.setFlags(f, .dirty)
        }
        let entry = frames.entry(f)
        let device = engine.devices.device(mappedBy: entry)
        yieldPoint(.swapOutAllocated)
        guard unmap(base, f, entry, device: device) else {
            engine.stats.count(.busyFolios)
            // The pages were discarded under us after we gave the folio slots: nothing maps
            // them, so the folio must not stay cached for nobody.
            engine.cache.freeSwapIfUnused(f)
            return .kept
        }
        // The application's view too, before the data is written: a store after this faults
        // and waits for the folio (transparent regions).
        if let window { for i in 0..<nr { window.unmapFromApp(base + i) } }
        yieldPoint(.swapOutUnmapped)
        let wasDirty = frames.flags(f).contains(.dirty)
        if wasDirty && deferringWrite { return .needsWrite }
        if wasDirty {
            try engine.reclaimer.writeback(f, device: device)
        }
        yieldPoint(.swapOutBeforeRemove)
        guard engine.reclaimer.removeMapping(f, device: device) else {
            // A transient reference (a lookup racing with the last unmap of the page) kept the
            // folio; if nothing maps its slots any more, it must not linger in the cache.
            engine.cache.freeSwapIfUnused(f)
            return .kept
        }
        if !wasDirty { engine.stats.count(.cleanDrops) }
        return .removed
    }

    /// Replaces every present entry of the folio's pages with its swap entry and moves each
    /// mapping's reference from the folio to its slot (kernel: `try_to_unmap_one` with
    /// `folio_dup_swap`). Pages already swapped (a large folio partly faulted back) stay as they
    /// are. Fails, changing nothing, if a page maps something else, or if anyone but the
    /// mappings, the cache and the caller holds the folio (a pin). Caller holds the folio lock.
    private func unmap(_ base: Int, _ f: Folio, _ entry: SwapEntry, device: SwapDevice) -> Bool {
        let frames = engine.frames
        let nr = frames.pageCount(f)
        let lock = ptl(base)
        lock.lock()
        defer { lock.unlock() }
        var mapped = 0
        for i in 0..<nr {
            let p = pte(base + i)
            if p == .present(frame: f.frame + UInt32(i)) {
                mapped += 1
            } else if p != .swap(entry.advanced(by: i)) && !p.isNone {
                return false
            }
        }
        guard mapped > 0 else { return false }
        // Store the swap entries first, then read the refcount; a pinner takes its reference
        // first, then re-reads the entry. Sequential consistency means at least one of us sees
        // the other, so we never unmap a page a pin is about to use.
        var changed: [Int] = []
        for i in 0..<nr where pte(base + i) == .present(frame: f.frame + UInt32(i)) {
            setPTE(base + i, .swap(entry.advanced(by: i)))
            changed.append(i)
        }
        guard frames.refcount(f) == mapped + nr + 1 else {
            for i in changed { setPTE(base + i, .present(frame: f.frame + UInt32(i))) }
            return false
        }
        for i in changed {
            do {
                try device.duplicate(entry.advanced(by: i))
            } catch {
                trap("a cached slot could not take its first mapping: \(error)")
            }
        }
        frames.setOwner(f, .none)
        // The mappings' references: we still hold ours, so this is never the last.
        _ = frames.put(f, UInt32(mapped))
        return true
    }
}

/// Reclaim finds a region through the reverse map and swaps out the folios it maps.
extension Region: ReverseMapping {}
