/// Taking folios out of the swap cache when nothing maps their slots any more (kernel:
/// `folio_free_swap`, `__try_to_reclaim_swap`).
extension SwapCache {
    /// Removes the locked folio `f` from the swap cache if none of its slots is referenced by a
    /// page table and it is not being written, freeing its slots (kernel: `folio_free_swap`).
    /// Returns true if it did.
    @discardableResult
    func freeSwapIfUnused(_ f: Folio) -> Bool {
        assert(frames.isLocked(f))
        let flags = frames.flags(f)
        guard flags.contains(.swapcache), !flags.contains(.writeback) else { return false }
        let entry = frames.entry(f)
        guard let device = devices.device(for: entry) else { return false }
        for i in 0..<frames.pageCount(f) where device.slot(entry.advanced(by: i)).count > 0 { return false }
        swapCacheDeleteFolio(f)
        return true
    }

    /// After a page table dropped its reference to `entry`: if only the swap cache still holds
    /// the slot, drop the cached folio now rather than leave it to reclaim (kernel:
    /// `__try_to_reclaim_swap` from the free path). Opportunistic: a busy folio is left alone.
    func reclaimCacheOnly(_ entry: SwapEntry) {
        guard let device = devices.device(for: entry) else { return }
        let slot = device.slot(entry)
        guard slot.isFolio && slot.count == 0, let f = swapCacheGetFolio(entry) else { return }
        if frames.tryLock(f) {
            if frames.matches(f, entry) && !frames.flags(f).contains(.writeback)
                && frames.refcount(f) == frames.pageCount(f) + 1
            {
                freeSwapIfUnused(f)
            }
            frames.unlock(f)
        }
        allocator.putFolio(f)
    }

    /// Whether a folio just swapped in from `device` and mapped should give its slots back now
    /// (kernel: `should_try_to_free_swap`): always for a synchronous device (`SWP_SYNCHRONOUS_IO`:
    /// the copy would sit in memory twice), else when less than half of all swap is free, or its
    /// group (or an ancestor) uses half its swap limit (`mem_cgroup_swap_full`). Otherwise the
    /// clean copy on the device stays, so that a later swap-out of the unchanged page writes
    /// nothing. The kernel's other reasons have no analogue or are handled elsewhere: a write
    /// fault frees the slot when the page is written (`Region.releaseSwapForWrite`); no region
    /// memory is locked in RAM (`VM_LOCKED`), see docs/KERNEL-FIDELITY.md.
    func shouldFreeSwap(afterSwapIn f: Folio, device: SwapDevice) -> Bool {
        device.isSynchronous || devices.isSwapFull || groups[frames.group(f)].isSwapFull
    }

    /// Takes the folio cached for `entry` out of the swap cache if nothing but the cache holds
    /// its slots — mapped or not (kernel: `__try_to_reclaim_swap` with `TTRS_ANYWAY`). The
    /// folio stays in memory, dirty: it has no copy on a device any more. A folio that is busy
    /// (locked, under writeback) is left alone. Returns the slots it freed (the folio's pages), 0
    /// if it stayed.
    /// The caller may hold another folio's lock, but no page-table or cluster lock.
    @discardableResult
    func tryToReclaimSwap(_ entry: SwapEntry) -> Int {
        guard let f = swapCacheGetFolio(entry) else { return 0 }
        defer { allocator.putFolio(f) }
        guard frames.tryLock(f) else { return 0 }
        defer { frames.unlock(f) }
        let nr = frames.pageCount(f)
        guard frames.matches(f, entry), freeSwapIfUnused(f) else { return 0 }
        frames.setFlags(f, .dirty)
        return nr
    }

    /// Frees slots that only the swap cache holds, for an allocation of `1 << order` slots that
    /// found no free run (kernel: `cluster_reclaim_range` and `swap_reclaim_full_clusters`):
    /// looks for an aligned run whose slots are each free or cache-only and reclaims its
    /// folios; for order 0, up to `slotReclaimBatch` slots, so that the allocations after this
    /// one find slots too. Each device's scan resumes where the last one stopped. Returns true
    /// if it freed something (the caller allocates again).
    /// The caller may hold the lock of the folio it allocates for, nothing else.
    func reclaimCacheOnlySlots(order: Int) -> Bool {
        let nr = 1 << order
        let budget = order == 0 ? Self.slotReclaimBatch : nr
        var freed = 0
        for device in devices.devices {
            // Relaxed: where to start scanning, a hint; the slots are re-checked under their locks
            let start = device.reclaimCursor.load(ordering: .relaxed)
            for k in 0..<device.clusterCount {
                let c = (start + k) % device.clusterCount
                for run in stride(from: 0, to: SwapCluster.slotCount, by: nr) {
                    let first = c << SwapCluster.slotShift | run
                    guard first + nr <= device.pageCount else { break }
                    // A look without the lock; the reclaim re-checks under the folio and
                    // cluster locks.
                    var cacheOnly: [SwapEntry] = []
                    var usable = true
                    for i in 0..<nr {
                        let entry = SwapEntry(type: device.type, offset: first + i)
                        let s = device.slot(entry)
                        if s.isFree { continue }
                        guard s.isFolio && s.count == 0 else {
                            usable = false
                            break
                        }
                        cacheOnly.append(entry)
                    }
                    guard usable, !cacheOnly.isEmpty else { continue }
                    for entry in cacheOnly where !device.slot(entry).isFree { tryToReclaimSwap(entry) }
                    let nowFree = (0..<nr).filter { device.slot(SwapEntry(type: device.type, offset: first + $0)).isFree }.count
                    freed += cacheOnly.count - (nr - nowFree)
                    if (order > 0 && nowFree == nr) || freed >= budget {
                        // Relaxed: see `reclaimCursor`.
                        device.reclaimCursor.store(c, ordering: .relaxed)
                        stats.count(.slotReclaims, freed)
                        return true
                    }
                }
            }
        }
        if freed > 0 { stats.count(.slotReclaims, freed) }
        return freed > 0
    }

    /// One background pass over `device`'s full clusters (kernel: `swap_reclaim_full_clusters`
    /// with `force`, from `swap_reclaim_work`): takes each full cluster off its list, and for each
    /// slot that only the swap cache holds, drops the cluster lock and takes the folio out of the
    /// cache if it is not busy (`tryToReclaimSwap`: try-lock, not under writeback, no page table
    /// refers to the slot). Scans as many clusters as the device has clusters' worth of slots in
    /// use, at least one; a cluster that is still off every list afterwards goes back to the list
    /// its state calls for, a still full one to the tail of the full list.
    ///
    /// Holds a `users` reference on the device throughout, so swapoff cannot remove it during
    /// the pass, and a removed device is never scanned. Returns the slots it freed.
    /// The caller holds no lock.
    @discardableResult
    func reclaimFullClusters(_ device: SwapDevice) -> Int {
        guard device.users.tryGet() else { return 0 }
        defer { device.users.put() }
        stats.count(.slotReclaimPasses)
        var toScan = max(1, device.usedPages / SwapCluster.slotCount)
        var freed = 0
        while toScan > 0, var g = device.isolateAndLock(ClusterLists.full) {
            toScan -= 1
            let c = g.index
            var i = 0
            while i < SwapCluster.slotCount {
                // While the lock was dropped below, frees may have moved the cluster to a list
                // (nonfull, or free once empty, where allocators take it): no longer ours.
                guard g.info.pointee.list == ClusterLists.isolated else { break }
                let s = g.slot(i)
                if s.isFolio && s.count == 0 {
                    let entry = SwapEntry(type: device.type, offset: c << SwapCluster.slotShift | i)
                    g.unlock()
                    let nr = tryToReclaimSwap(entry)
                    g = device.clusters.lock(c)
                    if nr > 0 {
                        freed += nr
                        i = (i & ~(nr - 1)) + nr
                        continue
                    }
                }
                i += 1
            }
            // Slots freed meanwhile may have moved the cluster (to nonfull, free or discard);
            // otherwise it is still ours to put back: a still full one at the tail of the full
            // list, directly, since `relocateAfterAllocationLocked` would count it as newly
            // full and schedule another pass.
            let ci = g.info
            if ci.pointee.list == ClusterLists.isolated {
                if ci.pointee.isFull {
                    device.moveLocked(g, to: ClusterLists.full)
                } else {
                    device.relocateAfterAllocationLocked(g, failedScan: false)
                }
            }
            g.unlock()
        }
        if freed > 0 { stats.count(.backgroundSlotReclaims, freed) }
        return freed
    }

    /// Cache-only slots freed at once for an order-0 allocation that found none free (kernel:
    /// `SWAP_BATCH`).
    static let slotReclaimBatch = 64
}
