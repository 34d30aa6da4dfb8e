/// The write-back and removal steps of reclaim (kernel: `pageout`, `__remove_mapping`).
extension Reclaimer {
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
        if testHooks.recordSwapAfterDelete.load(ordering: .relaxed) {
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
}
