/// Pageout of one folio (kernel: the anonymous half of `shrink_folio_list`): slots and the swap
/// cache (`folio_alloc_swap`), unmapping through the reverse map (`try_to_unmap`), the write
/// (`pageout`) and removal from the cache (`__remove_mapping`).
extension Reclaimer {
    /// Swaps out folio `f`, whose first page `mapping` maps (its owner key names it). Caller
    /// holds `f`'s lock and one reference. A large folio goes out as one run of slots; when no
    /// device has such a run it is split and its first page goes out alone (the others stay on
    /// the LRU for the next pass). With `deferringWrite`, a dirty folio stops before its write
    /// (`.needsWrite`) so that reclaim can write many folios in one vectored call.
    ///
    /// `.removed`: the folio left memory, its references are all gone (the caller's too), and
    /// the caller unlocks and frees it. Otherwise — kept (busy, pinned, remapped), needing a
    /// write, or thrown (no slot free, the write failed) — the folio is still locked and the
    /// caller's reference still held.
    func pageout(
        lockedFolio f: Folio, mappedBy mapping: any ReverseMapping, deferringWrite: Bool
    ) throws(SwapError) -> ShrinkOutcome {
        assert(frames.isLocked(f))
        guard !frames.flags(f).contains(.writeback) else { return .kept }
        var nr = frames.pageCount(f)
        let key = frames.owner(f)
        let base = key.page
        guard key.region == mapping.id, base + nr <= mapping.pageCount else { return .kept }
        if !frames.flags(f).contains(.swapcache) {
            if cache.folioAllocSwap(f) == nil {
                guard nr > 1 else { throw noSwapSlot(f, base, region: mapping.id, pages: 1) }
                // A large folio that cannot be split (a pin holds it) is kept, as the kernel keeps
                // a folio `split_folio_to_list` refuses: it is busy, and swap is not full.
                guard splitFolio(f, mappedBy: mapping) else {
                    stats.count(.busyFolios)
                    return .kept
                }
                nr = 1
                guard cache.folioAllocSwap(f) != nil else { throw noSwapSlot(f, base, region: mapping.id, pages: 1) }
            }
            // The device has no copy yet.
            frames.setFlags(f, .dirty)
        }
        let entry = frames.entry(f)
        let device = devices.device(mappedBy: entry)
        yieldPoint(.swapOutAllocated)
        guard mapping.unmap(lockedFolio: f, base: base, entry: entry, device: device) else {
            stats.count(.busyFolios)
            // The pages were discarded under us after we gave the folio slots: nothing maps
            // them, so the folio must not stay cached for nobody.
            cache.freeSwapIfUnused(f)
            return .kept
        }
        yieldPoint(.swapOutUnmapped)
        let wasDirty = frames.flags(f).contains(.dirty)
        if wasDirty && deferringWrite { return .needsWrite }
        if wasDirty {
            try writeback(f, device: device)
        }
        yieldPoint(.swapOutBeforeRemove)
        guard removeMapping(f, device: device) else {
            // A transient reference (a lookup racing with the last unmap of the page) kept the
            // folio; if nothing maps its slots any more, it must not linger in the cache.
            cache.freeSwapIfUnused(f)
            return .kept
        }
        if !wasDirty { stats.count(.cleanDrops) }
        return .removed
    }

    /// Pageout of a locked, referenced folio that caches `entry` and that no page maps: a
    /// readahead copy nobody used, or a page whose write failed after it was unmapped (it stayed
    /// cached, dirty, so that no data was lost). Writes it if it is dirty, then takes it out of
    /// the cache. `removed`: it left (the caller unlocks and frees it); `wasDirty`: memory held
    /// the only copy of its data. Throws the device's error if the write fails again (the folio
    /// then stays cached and dirty, as before).
    func pageoutCached(lockedFolio f: Folio, entry: SwapEntry) throws(SwapError) -> (removed: Bool, wasDirty: Bool) {
        assert(frames.isLocked(f))
        let flags = frames.flags(f)
        // Still this entry's copy, not under write, and mapped by nobody (a mapped folio is the
        // present-page path's).
        guard frames.matches(f, entry), !flags.contains(.writeback), frames.owner(f).isNone,
            let device = devices.device(for: frames.entry(f))
        else { return (false, false) }
        let dirty = flags.contains(.dirty)
        if dirty { try writeback(f, device: device) }
        guard removeMapping(f, device: device) else { return (false, false) }
        if !dirty { stats.count(.cleanDrops) }
        return (true, dirty)
    }

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
            var buffer = UnsafeRawBufferPointer(allocator.bytes(f))
            try withUnsafePointer(to: &buffer) { p throws(SwapError) in
                try device.io.write(UnsafeBufferPointer(start: p, count: 1), atPage: entry.offset)
            }
            stats.count(.deviceWrites)
            stats.count(.swapOuts, frames.pageCount(f))
            var unmaps = UnmapBatch()
            zapWrittenFromEngine(f, unmaps: &unmaps)
            unmaps.flush()
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
        let shadow = workingset.eviction(f)
        let discard: Bool
        #if DEBUG
        if testHooks.recordSwapAfterDelete.load(ordering: .relaxed) {  // Relaxed: a test switch, set before the test's threads start
            // The planted bug (the order the kernel's swap-cache synchronization series first
            // had), switchable in debug builds so a test can show that it leaks.
            discard = cache.swapCacheDeleteFolioLocked(f, g, device: device, shadow: shadow)
            recordAfterDeleteLocked(entry, g, nr: nr, group: frames.group(f))
        } else {
            cache.swapoutRecordLocked(f, g)
            discard = cache.swapCacheDeleteFolioLocked(f, g, device: device, shadow: shadow)
        }
        #else
        cache.swapoutRecordLocked(f, g)
        discard = cache.swapCacheDeleteFolioLocked(f, g, device: device, shadow: shadow)
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

    /// The error of a swap-out that got no slots for the `nr` pages of `f` at `page`: the
    /// group's swap limit when that refused, else the slots free on the devices that take new
    /// pages — a device being removed (swapoff) takes none, so its free slots do not count.
    private func noSwapSlot(_ f: Folio, _ page: Int, region: Int, pages nr: Int) -> SwapError {
        let owner = groups[frames.group(f)]
        if !owner.swapFits(nr) {
            return SwapError(
                .swapFull,
                "no swap for page \(page) of region \(region): memory group \(owner.name) is at its swap limit (\(owner.swapUsage) bytes in use); raise the limit or free some of its pages"
            )
        }
        let all = devices.devices
        let serving = all.filter { $0.writeOK.load(ordering: .acquiring) }
        var held = "\(serving.reduce(0) { $0 + $1.freePages }) slots free on the \(serving.count) device(s) in service"
        if serving.count < all.count {
            held += "; \(all.count - serving.count) device(s) being removed by swapoff take no new pages"
        }
        return SwapError(.swapFull, "no swap slot left for page \(page) of region \(region) (\(held)); add a swap device or make it larger")
    }
}
