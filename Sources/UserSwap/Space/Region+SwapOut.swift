/// Pushing pages out to swap explicitly (`swapOut(pages:)`), through reclaim's pageout
/// (`Reclaimer+Pageout.swift`), and the region's part of it: unmapping a folio's pages
/// (kernel: `try_to_unmap_one`), which reclaim reaches through `ReverseMapping`.
extension Region {
    /// Moves the resident pages of `pages` to swap and frees their frames. Pinned pages and
    /// pages someone is faulting in are skipped (they are busy). Returns how many were freed.
    /// Copies of swapped pages left in the swap cache go too: clean ones (read ahead, never
    /// used) are dropped without counting; a dirty one (its write failed earlier) is written
    /// and counts. Throws `.swapFull` when no slot is left, or a device's write error (the page
    /// then stays safely in memory, dirty).
    ///
    /// A large folio goes out whole when `pages` covers it; one that `pages` covers only in
    /// part is split first, so that only the pages asked for leave (kernel: `MADV_PAGEOUT`
    /// splits a partly covered large folio, and skips it when it cannot be split).
    @discardableResult
    public func swapOut(pages: Range<Int>) throws(SwapError) -> Int {
        guard !pages.isEmpty else { return 0 }
        try checkPage(pages.lowerBound)
        try checkPage(pages.upperBound - 1)
        var freed = 0
        var page = pages.lowerBound
        while page < pages.upperBound {
            let step = try shrinkPage(page, within: pages)
            freed += step.freed
            page = step.next
        }
        return freed
    }

    /// Swaps out the folio mapped at `page` if `pages` covers it (splitting it first if not),
    /// or the copy of a swapped page still in the swap cache. Returns how many pages whose data
    /// only memory held left it, and the next page to look at.
    private func shrinkPage(_ page: Int, within pages: Range<Int>) throws(SwapError) -> (freed: Int, next: Int) {
        let frames = engine.frames
        let pte = pte(page)
        if pte.isSwap { return (try shrinkCached(pte.swapEntry, at: page, within: pages), page + 1) }
        guard pte.isPresent else { return (0, page + 1) }
        let f = frames.folio(containing: pte.frame)
        guard frames.tryGet(f) else { return (0, page + 1) }
        frames.lock(f)
        guard frames.folio(containing: pte.frame) == f && self.pte(page) == pte else {
            frames.unlock(f)
            engine.allocator.putFolio(f)
            return (0, page + 1)
        }
        let nr = frames.pageCount(f)
        let base = page - Int(pte.frame - f.frame)
        if nr > 1 && (base < pages.lowerBound || base + nr > pages.upperBound) {
            // Partly covered: split, then look at the page again as a folio of its own. A
            // folio in the swap cache, or one a pin holds, is not split: it stays, busy.
            let split = !frames.flags(f).contains(.swapcache) && engine.reclaimer.splitFolio(f, mappedBy: self)
            let next = split ? page : pastFolio(f, from: page, base: base)
            frames.unlock(f)
            engine.allocator.putFolio(f)
            return (0, next)
        }
        // The pages that leave with it: a large folio may be mapped in part (pages discarded).
        let mapped = (0..<nr).count(where: { self.pte(base + $0) == .present(frame: f.frame + UInt32($0)) })
        let outcome: ShrinkOutcome
        do {
            outcome = try engine.reclaimer.pageout(lockedFolio: f, mappedBy: self, deferringWrite: false)
        } catch {
            frames.unlock(f)
            engine.allocator.putFolio(f)
            throw error
        }
        // Pageout splits a large folio it finds no run of slots for, and then takes only the
        // first page (if that still maps it): the page is looked at again, a folio of its own.
        let whole = frames.pageCount(f) == nr
        let gone = outcome == .removed ? (whole ? mapped : 1) : 0
        let next = whole ? pastFolio(f, from: page, base: base) : page
        frames.unlock(f)
        if outcome == .removed { engine.allocator.freeFolio(f) } else { engine.allocator.putFolio(f) }
        return (gone, next)
    }

    /// The first page after `page` that does not map the folio `f` (first page `base`): the
    /// pages of a large folio discarded since may map folios of their own now.
    private func pastFolio(_ f: Folio, from page: Int, base: Int) -> Int {
        var next = page + 1
        while next < base + engine.frames.pageCount(f) && pte(next) == .present(frame: f.frame + UInt32(next - base)) { next += 1 }
        return next
    }

    /// A swapped page whose folio is still in the swap cache, mapped by nobody: a readahead
    /// copy nobody used, or a page whose write failed after it was unmapped (it stays there,
    /// dirty, so that no data is lost). Writes it if it is dirty, then takes it out of memory.
    /// Returns how many pages of `pages` it took out whose data only memory held: a dirty folio's
    /// pages count as swapped out; a clean copy is dropped without counting (the page was
    /// swapped out already). Throws the device's error if the write fails again (the folio then
    /// stays cached and dirty, as before).
    private func shrinkCached(_ entry: SwapEntry, at page: Int, within pages: Range<Int>) throws(SwapError) -> Int {
        let frames = engine.frames
        guard let f = engine.cache.swapCacheGetFolio(entry) else { return 0 }
        frames.lock(f)
        let outcome: (removed: Bool, wasDirty: Bool)
        // The pages of `pages` that map the folio's slots, counted before it goes.
        let first = frames.entry(f)
        let base = page + (first.offset - entry.offset)
        var covered = 0
        for i in 0..<frames.pageCount(f) where pages.contains(base + i) && pte(base + i) == .swap(first.advanced(by: i)) {
            covered += 1
        }
        do {
            outcome = try engine.reclaimer.pageoutCached(lockedFolio: f, entry: entry)
        } catch {
            frames.unlock(f)
            engine.allocator.putFolio(f)
            throw error
        }
        frames.unlock(f)
        // Taken out of the cache, its references (ours too) are gone: free it.
        if outcome.removed { engine.allocator.freeFolio(f) } else { engine.allocator.putFolio(f) }
        return outcome.removed && outcome.wasDirty ? covered : 0
    }

    /// `ReverseMapping.unmap(lockedFolio:base:entry:device:)`: the page-table entries, then
    /// the application's view of a transparent region (a store after this faults and waits for
    /// the folio). Pages already swapped (a large folio partly faulted back) stay as they are.
    func unmap(lockedFolio f: Folio, base: Int, entry: SwapEntry, device: SwapDevice) -> Bool {
        guard unmapPageTable(f, base: base, entry: entry, device: device) else { return false }
        #if DEBUG
        pageTableUnmapped.run()
        #endif
        if let window { for i in 0..<engine.frames.pageCount(f) { window.unmapFromApp(base + i) } }
        return true
    }

    /// `ReverseMapping.withMappedPages(ofLockedFolio:base:_:)`: a folio lies under one
    /// page-table lock, as it does in `unmap`.
    func withMappedPages<R>(ofLockedFolio f: Folio, base: Int, _ body: ([Bool]) -> R) -> R {
        let lock = ptl(base)
        lock.lock()
        defer { lock.unlock() }
        let mapped = (0..<engine.frames.pageCount(f)).map { pte(base + $0) == .present(frame: f.frame + UInt32($0)) }
        return body(mapped)
    }

    /// The page-table half of `unmap(lockedFolio:base:entry:device:)`.
    private func unmapPageTable(_ f: Folio, base: Int, entry: SwapEntry, device: SwapDevice) -> Bool {
        let frames = engine.frames
        let nr = frames.pageCount(f)
        let lock = ptl(base)
        lock.lock()
        defer { lock.unlock() }
        // Pages of the folio's range that map something else (discarded since, and faulted
        // back as folios of their own, or swapped out as such) are not this folio's mappings.
        let mapped = (0..<nr).count(where: { pte(base + $0) == .present(frame: f.frame + UInt32($0)) })
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
