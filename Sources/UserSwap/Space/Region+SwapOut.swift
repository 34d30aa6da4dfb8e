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
            engine.putFolio(f)
            throw error
        }
        frames.unlock(f)
        if removed { engine.freeFolio(f) } else { engine.putFolio(f) }
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
        guard let f = engine.swapCacheGetFolio(entry) else { return false }
        frames.lock(f)
        let outcome: (removed: Bool, wasDirty: Bool)
        do {
            outcome = try shrinkCached(lockedFolio: f, entry: entry)
        } catch {
            frames.unlock(f)
            engine.putFolio(f)
            throw error
        }
        frames.unlock(f)
        // Taken out of the cache, its references (ours too) are gone: free it.
        if outcome.removed { engine.freeFolio(f) } else { engine.putFolio(f) }
        return outcome.removed && outcome.wasDirty
    }

    /// `shrinkCached(_:)` with the folio locked and referenced.
    private func shrinkCached(lockedFolio f: Folio, entry: SwapEntry) throws(SwapError) -> (removed: Bool, wasDirty: Bool) {
        let frames = engine.frames
        let flags = frames.flags(f)
        // Still this entry's copy, not under write, and mapped by nobody (a mapped folio is the
        // present-page path's).
        guard frames.matches(f, entry), !flags.contains(.writeback), frames.owner(f) == 0,
            let device = engine.devices.device(for: frames.entry(f))
        else { return (false, false) }
        let dirty = flags.contains(.dirty)
        if dirty { try engine.writeback(f, device: device) }
        guard engine.removeMapping(f, device: device) else { return (false, false) }
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

    /// What `shrink(lockedFolio:deferringWrite:)` did with the folio.
    enum ShrinkOutcome: Equatable {
        case removed
        case kept
        /// Unmapped and in the swap cache, dirty: the caller writes it (in a batch), still
        /// holding the folio lock and its reference.
        case needsWrite
    }

    /// `shrink(lockedFolio:)`, optionally stopping before the write so that reclaim can write many
    /// folios in one vectored call.
    func shrink(lockedFolio f: Folio, deferringWrite: Bool) throws(SwapError) -> ShrinkOutcome {
        let frames = engine.frames
        guard !frames.flags(f).contains(.writeback) else { return .kept }
        var nr = frames.pageCount(f)
        let base = Int(frames.owner(f) & (1 << 40 - 1))
        guard frames.owner(f) >> 40 == UInt64(id), base + nr <= pageCount else { return .kept }
        if !frames.flags(f).contains(.swapcache) {
            if engine.folioAllocSwap(f) == nil {
                guard nr > 1, engine.splitFolio(f) else {
                    let free = engine.devices.devices.reduce(0) { $0 + $1.freePages }
                    throw SwapError(
                        .swapFull,
                        "no swap slot left for page \(base) of region \(id) (\(free) slots free); add a swap device or make it larger")
                }
                nr = 1
                guard engine.folioAllocSwap(f) != nil else {
                    throw SwapError(.swapFull, "no swap slot left for page \(base) of region \(id); add a swap device or make it larger")
                }
            }
            // The device has no copy yet.
            frames.setFlags(f, .dirty)
        }
        let entry = frames.entry(f)
        guard let device = engine.devices.device(for: entry) else { preconditionFailure("\(entry) names a removed device") }
        yieldPoint(.swapOutAllocated)
        guard unmap(base, f, entry, device: device) else {
            engine.stats.count(.busyFolios)
            // The pages were discarded under us after we gave the folio slots: nothing maps
            // them, so the folio must not stay cached for nobody.
            engine.freeSwapIfUnused(f)
            return .kept
        }
        // The application's view too, before the data is written: a store after this faults
        // and waits for the folio (transparent regions).
        if let window { for i in 0..<nr { window.unmapFromApp(base + i) } }
        yieldPoint(.swapOutUnmapped)
        let wasDirty = frames.flags(f).contains(.dirty)
        if wasDirty && deferringWrite { return .needsWrite }
        if wasDirty {
            try engine.writeback(f, device: device)
        }
        yieldPoint(.swapOutBeforeRemove)
        guard engine.removeMapping(f, device: device) else {
            // A transient reference (a lookup racing with the last unmap of the page) kept the
            // folio; if nothing maps its slots any more, it must not linger in the cache.
            engine.freeSwapIfUnused(f)
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
                preconditionFailure("a cached slot could not take its first mapping: \(error)")
            }
        }
        frames.setOwner(f, 0)
        // The mappings' references: we still hold ours, so this is never the last.
        _ = frames.put(f, UInt32(mapped))
        return true
    }
}

/// The write-back and removal steps of reclaim (kernel: `pageout`, `__remove_mapping`).
extension SwapEngine {
    /// Writes the locked, dirty, cached folio to its slots. The folio lock is dropped during the
    /// I/O (the writeback flag keeps it in the cache meanwhile) and held again on return, also
    /// when the write fails: the folio is then dirty again, its data safe in memory.
    func writeback(_ f: Folio, device: SwapDevice) throws(SwapError) {
        assert(frames.isLocked(f))
        let entry = frames.entry(f)
        frames.clearFlags(f, .dirty)
        frames.startWriteback(f)
        frames.unlock(f)
        var failure: SwapError?
        do {
            var buffer = UnsafeRawBufferPointer(bytes(f))
            try withUnsafePointer(to: &buffer) { p throws(SwapError) in
                try device.io.write(UnsafeBufferPointer(start: p, count: 1), atPage: entry.offset)
            }
            stats.count(.deviceWrites)
            stats.count(.swapOuts, frames.pageCount(f))
        } catch {
            frames.setFlags(f, .dirty)
            stats.count(.writeErrors)
            failure = error
        }
        frames.endWriteback(f)
        frames.lock(f)
        if let failure { throw failure }
    }

    /// Takes a clean, locked, cached folio out of memory, leaving a workingset shadow in its
    /// slots, if nobody but the cache and the caller references it (kernel: `__remove_mapping`):
    /// the references are frozen to zero under the cluster lock so a concurrent lookup fails to
    /// take one and reads the entry from the device instead. Only then is the shadow taken,
    /// which ages the group's clock by the folio's pages (`workingsetEviction`): a folio that
    /// stays evicts nothing. The group's swap charge is recorded first, then the folio leaves
    /// the cache (see `swapoutRecordLocked`). Returns true when the folio left the cache; its
    /// references are then gone and the caller frees it after unlocking.
    func removeMapping(_ f: Folio, device: SwapDevice) -> Bool {
        assert(frames.isLocked(f))
        let flags = frames.flags(f)
        guard flags.contains(.swapcache), !flags.contains(.dirty), !flags.contains(.writeback) else { return false }
        #if DEBUG
        if testHooks.hasBeforeRemoveMapping.load(ordering: .acquiring) {
            testHooks.beforeRemoveMapping.withLock { $0 }?()
        }
        #endif
        let nr = frames.pageCount(f)
        let entry = frames.entry(f)
        let g = device.clusters.lock(entry.clusterIndex)
        guard frames.freeze(f, expected: UInt32(nr + 1)) else {
            g.unlock()
            stats.count(.busyFolios)
            return false
        }
        let shadow = workingsetEviction(f)
        let discard: Bool
        #if DEBUG
        if testHooks.recordSwapAfterDelete.load(ordering: .relaxed) {
            // The planted bug (the order the kernel's swap-cache synchronization series first
            // had), switchable in debug builds so a test can show that it leaks.
            discard = swapCacheDeleteFolioLocked(f, g, device: device, shadow: shadow)
            recordAfterDeleteLocked(entry, g, nr: nr, group: frames.group(f))
        } else {
            swapoutRecordLocked(f, g)
            discard = swapCacheDeleteFolioLocked(f, g, device: device, shadow: shadow)
        }
        #else
        swapoutRecordLocked(f, g)
        discard = swapCacheDeleteFolioLocked(f, g, device: device, shadow: shadow)
        #endif
        g.unlock()
        if discard { device.issueDiscards() }
        stats.count(.evictions)
        groups[frames.group(f)].count(.pswpout, nr)
        return true
    }

    #if DEBUG
    /// The wrong order, for `TestHooks.recordSwapAfterDelete` only: charges the whole folio,
    /// marking the slots that still exist; slots the delete already freed keep their charge
    /// forever.
    private func recordAfterDeleteLocked(_ entry: SwapEntry, _ g: borrowing ClusterGuard, nr: Int, group: Int) {
        for i in entry.slotInCluster..<(entry.slotInCluster + nr) {
            let s = g.slot(i)
            if !s.isFree { g.set(i, s.withSwapCharged(true)) }
        }
        groups[group].chargeSwap(nr)
    }
    #endif
}
