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

    /// What `reclaimSwap` did with the folio cached for a slot (kernel: the sign of
    /// `__try_to_reclaim_swap`'s result, with a busy folio told apart from one that stays).
    enum SwapReclaim: Equatable {
        /// No folio is cached for the slot (any more).
        case noFolio
        /// The folio left the cache: its `pages` slots are free.
        case freed(pages: Int)
        /// The folio is locked or under writeback and stays; once let go, its `pages` slots may
        /// be cache-only (a swap-out that gave up, a page mapped again meanwhile).
        case busy(pages: Int)
        /// The folio stays: a page table refers to one of its `pages` slots, or it no longer
        /// covers the slot.
        case kept(pages: Int)
    }

    /// Takes the folio cached for `entry` out of the swap cache if nothing but the cache holds
    /// its slots — mapped or not (kernel: `__try_to_reclaim_swap` with `TTRS_ANYWAY`). The
    /// folio stays in memory, dirty: it has no copy on a device any more. A folio that is busy
    /// (locked, under writeback) is left alone. Returns the slots it freed (the folio's pages), 0
    /// if it stayed.
    /// The caller may hold another folio's lock, but no page-table or cluster lock.
    @discardableResult
    func tryToReclaimSwap(_ entry: SwapEntry) -> Int {
        if case .freed(let pages) = reclaimSwap(entry) { return pages }
        return 0
    }

    /// `tryToReclaimSwap`, saying why a folio stayed. Never waits: a folio whose lock is taken
    /// is `.busy`.
    /// The caller may hold another folio's lock, but no page-table or cluster lock.
    func reclaimSwap(_ entry: SwapEntry) -> SwapReclaim {
        guard let f = swapCacheGetFolio(entry) else { return .noFolio }
        defer { allocator.putFolio(f) }
        // Read before the lock, as the kernel does: only the size of the step past a busy folio.
        let unlockedPages = frames.pageCount(f)
        guard frames.tryLock(f) else { return .busy(pages: unlockedPages) }
        defer { frames.unlock(f) }
        let nr = frames.pageCount(f)
        // Split or reused for another entry between the lookup and the lock.
        guard frames.matches(f, entry) else { return .kept(pages: 1) }
        if frames.flags(f).contains(.writeback) { return .busy(pages: nr) }
        guard freeSwapIfUnused(f) else { return .kept(pages: nr) }
        frames.setFlags(f, .dirty)
        return .freed(pages: nr)
    }

    /// Sleeps until the folio cached for `entry`, if any, is neither locked nor under writeback
    /// (kernel: `folio_lock`, `folio_wait_writeback`): the events after which a folio a pass
    /// skipped may be cache-only. Returns at once when no folio is cached.
    /// The caller holds no lock: the folio's holder may be waiting for any of them.
    func waitUntilIdle(_ entry: SwapEntry) {
        guard let f = swapCacheGetFolio(entry) else { return }
        frames.lock(f)
        frames.unlock(f)
        frames.waitWriteback(f)
        allocator.putFolio(f)
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

    /// What one background pass over a device's full clusters did.
    struct FullClusterPass {
        /// Slots freed.
        var freed = 0
        /// The first slot of each busy folio the pass skipped (locked, under writeback), at most
        /// `slotReclaimBatch`: slots that may be cache-only once let go.
        var busy: [SwapEntry] = []
    }

    /// One background pass over `device`'s full clusters (kernel: `swap_reclaim_full_clusters`
    /// with `force`, from `swap_reclaim_work`): takes each full cluster off its list, and for each
    /// slot that only the swap cache holds, drops the cluster lock and takes the folio out of the
    /// cache if it is not busy (`reclaimSwap`: try-lock, not under writeback, no page table
    /// refers to the slot), stepping over the whole folio either way. Scans as many clusters as
    /// the device has clusters' worth of slots in use, at least one; a cluster that is still off
    /// every list afterwards goes back to the list its state calls for, a still full one to the
    /// tail of the full list. Busy folios are remembered (`FullClusterPass.busy`) for
    /// `reclaimSkipped`.
    ///
    /// Holds a `users` reference on the device throughout, so swapoff cannot remove it during
    /// the pass, and a removed device is never scanned.
    /// The caller holds no lock.
    func reclaimFullClusters(_ device: SwapDevice) -> FullClusterPass {
        var pass = FullClusterPass()
        guard device.users.tryGet() else { return pass }
        defer { device.users.put() }
        stats.count(.slotReclaimPasses)
        var toScan = max(1, device.usedPages / SwapCluster.slotCount)
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
                    let outcome = reclaimSwap(entry)
                    g = device.clusters.lock(c)
                    let step: Int
                    switch outcome {
                    case .noFolio: step = 1
                    case .freed(let nr):
                        pass.freed += nr
                        step = nr
                    case .kept(let nr): step = nr
                    case .busy(let nr):
                        if pass.busy.count < Self.slotReclaimBatch { pass.busy.append(entry) }
                        step = nr
                    }
                    // Past the folio (a large one is aligned to its size), as the kernel steps by
                    // the folio's pages whether or not it was reclaimed.
                    i = (i & ~(step - 1)) + step
                    continue
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
        if pass.freed > 0 { stats.count(.backgroundSlotReclaims, pass.freed) }
        if !pass.busy.isEmpty { stats.count(.slotReclaimBusy, pass.busy.count) }
        return pass
    }

    /// Comes back to the slots a pass skipped because their folios were busy, once the caller
    /// has waited for each folio to be let go (`waitUntilIdle`): frees those that are cache-only
    /// now. Part of the pass, which swap over half full asked for: like the pass (and the
    /// kernel's forced one) it does not look at the fullness again, which its own frees lower.
    /// One try each: a folio busy again is left to the next pass (a cluster that fills) or to
    /// an allocation that finds no slot.
    /// Holds a `users` reference on the device, as the pass does. Returns the slots it freed.
    /// The caller holds no lock.
    @discardableResult
    func reclaimSkipped(_ entries: [SwapEntry], on device: SwapDevice) -> Int {
        guard device.users.tryGet() else { return 0 }
        defer { device.users.put() }
        var freed = 0
        for entry in entries {
            let s = device.slot(entry)
            guard s.isFolio && s.count == 0 else { continue }
            if case .freed(let nr) = reclaimSwap(entry) { freed += nr }
        }
        if freed > 0 { stats.count(.backgroundSlotReclaims, freed) }
        return freed
    }

    /// Cache-only slots freed at once for an order-0 allocation that found none free (kernel:
    /// `SWAP_BATCH`).
    static let slotReclaimBatch = 64
}
