import Synchronization

/// What `swapCacheAddFolio` found (`swap_cache_add_folio`'s return codes).
enum SwapCacheAddResult: Equatable {
    /// The folio is in every slot it covers; `shadow` is the workingset shadow it replaced.
    case added(shadow: UInt64?)
    /// Another folio already holds a covered slot (-EEXIST): look it up and wait on its lock.
    case exists
    /// A covered slot was freed, or its cluster has no table (-ENOENT): nothing to swap in.
    case noEntry
}

/// The swap cache (kernel: `mm/swap_state.c`): the swap table slots that hold folios, and the
/// synchronization layer of swap-in. The table word is the published state; the cluster lock
/// serializes changes to it; the folio lock is held across I/O.
extension SwapCache {
    /// The folio cached for `entry`, with a reference taken, or nil (kernel:
    /// `swap_cache_get_folio`). Lockless. The folio is not locked: the caller locks it and
    /// re-checks `frames.matches(folio, entry)`, because it may leave the cache in between.
    func swapCacheGetFolio(_ entry: SwapEntry) -> Folio? {
        guard let device = devices.device(for: entry), entry.offset < device.pageCount else { return nil }
        while true {
            let slot = device.slot(entry)
            guard slot.isFolio else { return nil }
            let f = Folio(frame: slot.frame)
            guard frames.tryGet(f) else {
                // Being freed: its slot is about to change under the cluster lock. Look again.
                continue
            }
            if frames.matches(f, entry) { return f }
            // Freed and reused for something else between our load and our reference.
            allocator.putFolio(f)
        }
    }

    /// The workingset shadow left in `entry`'s slot, if any (kernel: `swap_cache_get_shadow`).
    func swapCacheGetShadow(_ entry: SwapEntry) -> UInt64? {
        guard let device = devices.device(for: entry), entry.offset < device.pageCount else { return nil }
        let slot = device.slot(entry)
        return slot.isShadow ? slot.payload : nil
    }

    /// Inserts the locked folio `f` for `entry` (aligned to the folio's size) into every slot it
    /// covers, or nothing at all (kernel: `swap_cache_add_folio`). Under the cluster lock, every
    /// covered slot is checked first: one holding a folio → `.exists`; one with swap count 0 →
    /// `.noEntry`, unless `alloc` (the caller pinned the slots itself: the allocator, or the legacy
    /// protocol's has-cache bit); a cluster without a table → `.noEntry`.
    func swapCacheAddFolio(_ f: Folio, _ entry: SwapEntry, alloc: Bool) -> SwapCacheAddResult {
        assert(frames.isLocked(f), "adding an unlocked \(f) to the swap cache")
        let nr = frames.pageCount(f)
        require(entry.offset & (nr - 1) == 0, "\(entry) not aligned for a \(nr)-page folio")
        guard let device = devices.device(for: entry), entry.offset + nr <= device.pageCount else { return .noEntry }
        let g = device.clusters.lock(entry.clusterIndex)
        guard g.info.pointee.hasTable else {
            g.unlock()
            return .noEntry
        }
        let first = entry.slotInCluster
        var shadow: UInt64?
        for i in first..<(first + nr) {
            let s = g.slot(i)
            if s.isFolio {
                g.unlock()
                return .exists
            }
            if s.isBad || s.isFree || (!alloc && s.count == 0) {
                g.unlock()
                return .noEntry
            }
            if s.isShadow && shadow == nil { shadow = s.payload }
        }
        // Publish the folio's identity before the slots, so a lockless reader that finds the
        // folio in a slot also finds it claiming the entry.
        frames.get(f, UInt32(nr))
        frames.setEntry(f, entry)
        frames.setFlags(f, .swapcache)
        let content = SwapTableSlot.folio(f.frame)
        for i in first..<(first + nr) {
            let s = g.slot(i)
            // The page is coming back to memory, where its folio is charged: the swap charge
            // goes (kernel: `mem_cgroup_swapin_uncharge_swap`).
            if s.isSwapCharged { device.swapUncharge(s) }
            g.set(i, s.replacingContent(with: content).withSwapCharged(false))
        }
        g.unlock()
        return .added(shadow: shadow)
    }

    /// Allocates slots for the locked folio `f` and inserts it in the same critical section
    /// (kernel phase II: `folio_alloc_swap`): the allocator's path, which cannot meet a racer
    /// because the slots were free. The new slots have count 0: only the cache holds them until
    /// the page tables take their references at unmap. Returns nil when no device has a run of
    /// the folio's size.
    func folioAllocSwap(_ f: Folio) -> SwapEntry? {
        assert(frames.isLocked(f))
        require(!frames.flags(f).contains(.swapcache), "\(f) already has swap")
        let nr = frames.pageCount(f)
        // When no device has a free run and swap is over half full, slots that only the swap
        // cache holds are reclaimed for it (kernel: `cluster_reclaim_range` with
        // `__try_to_reclaim_swap(TTRS_ANYWAY)` when `vm_swap_full()`).
        // A group at its swap limit keeps its pages in memory (kernel: `mem_cgroup_try_charge_swap`).
        guard groups[frames.group(f)].tryReserveSwap(nr) else { return nil }
        var initial = SwapTableSlot.folio(f.frame)
        if sync.usesHasCacheBit { initial = initial.withHasCache(true) }
        // The references and identity are set before the slots exist; no lookup can reach a
        // free slot, so nobody sees the folio before the allocation returns.
        frames.get(f, UInt32(nr))
        frames.setFlags(f, .swapcache)
        var allocated = devices.allocateSlots(order: frames.order(f), initial: initial)
        if allocated == nil, devices.isSwapFull, reclaimCacheOnlySlots(order: frames.order(f)) {
            // Clean copies of pages in memory held the slots: freed, one more try.
            allocated = devices.allocateSlots(order: frames.order(f), initial: initial)
        }
        guard let entry = allocated else {
            frames.clearFlags(f, .swapcache)
            _ = frames.put(f, UInt32(nr))
            groups[frames.group(f)].unreserveSwap(nr)
            return nil
        }
        frames.setFlags(f, .swapReserved)
        frames.setEntry(f, entry)
        return entry
    }

    /// Removes the locked folio `f` from the swap cache, leaving `shadow` (or nothing) in its
    /// slots, and frees in the same critical section every covered slot whose swap count is 0
    /// (kernel: `__swap_cache_del_folio`). Does not drop the cache's references; the caller does.
    /// With `chargingSwap`, every slot that stays (its page now lives only on swap) gets the
    /// swap charge of the group `shadow` names (see `swapCacheDeleteNewFolio`).
    /// Caller holds `f`'s folio lock; `g` is its cluster's. Returns true if a discard is pending.
    func swapCacheDeleteFolioLocked(
        _ f: Folio, _ g: borrowing ClusterGuard, device: SwapDevice, shadow: UInt64?,
        chargingSwap: Bool = false
    ) -> Bool {
        require(!chargingSwap || shadow != nil, "a swap charge needs a shadow naming its group")
        assert(frames.isLocked(f))
        let flags = frames.flags(f)
        require(flags.contains(.swapcache) && !flags.contains(.writeback), "deleting \(f) in state \(flags)")
        let entry = frames.entry(f)
        let nr = frames.pageCount(f)
        let c = entry.clusterIndex
        require(g.index == c, "\(f) is in cluster \(c), not the locked \(g.index)")
        var freed = 0
        var charged = 0
        for i in entry.slotInCluster..<(entry.slotInCluster + nr) {
            let s = g.slot(i)
            require(s.isFolio && s.frame == f.frame, "slot \(i) of cluster \(c) is \(s), not \(f)")
            if s.count == 0 {
                // Nothing maps the slot any more: the cache's hold was the last.
                if s.isSwapCharged { swapUncharge(folio: f, slots: 1) }
                g.set(i, .empty)
                device.slotFreedLocked(g, slot: i)
                freed += 1
            } else {
                let content = shadow.map { SwapTableSlot.shadow($0, count: 0) } ?? .empty
                var kept = s.replacingContent(with: content).withHasCache(false)
                if chargingSwap && !s.isSwapCharged {
                    kept = kept.withSwapCharged(true)
                    charged += 1
                }
                g.set(i, kept)
            }
        }
        if charged > 0, let shadow { groups[Shadow(packed: shadow).group].chargeSwap(charged) }
        if frames.clearFlags(f, [.swapcache, .swapReserved]).contains(.swapReserved) {
            groups[frames.group(f)].unreserveSwap(nr)
        }
        return freed > 0 && device.releaseSlotsLocked(g, count: freed)
    }

    /// Removes the locked folio `f` from the swap cache with no shadow and drops the cache's
    /// references (kernel: `swap_cache_del_folio`). The caller must know the folio is clean or
    /// its slots have count 0, or data is lost.
    func swapCacheDeleteFolio(_ f: Folio) {
        let entry = frames.entry(f)
        let device = devices.device(mappedBy: entry)
        let g = device.clusters.lock(entry.clusterIndex)
        let discard = swapCacheDeleteFolioLocked(f, g, device: device, shadow: nil)
        g.unlock()
        if discard { device.issueDiscards() }
        _ = frames.put(f, UInt32(frames.pageCount(f)))
    }

    /// Takes a folio that this swap-in inserted back out of the swap cache without mapping it —
    /// its read failed, or its page no longer refers to the entry — and gives the page back
    /// the swap charge its insert released (`swapCacheAddFolio`): the page lives only on swap
    /// again, so it counts against its group's swap limit again. `shadow` is the shadow the
    /// insert replaced; it goes back into the slots and names the group. Without one, a shadow
    /// of the folio's group at its current age stands in. Drops the cache's references.
    func swapCacheDeleteNewFolio(_ f: Folio, shadow: UInt64?) {
        let entry = frames.entry(f)
        let device = devices.device(mappedBy: entry)
        let group = groups[frames.group(f)]
        // Relaxed: the age is a heuristic input (see `workingsetRefault`).
        let left = shadow ?? Shadow(age: group.nonresidentAge.load(ordering: .relaxed), group: group.id, workingset: false).packed
        let g = device.clusters.lock(entry.clusterIndex)
        let discard = swapCacheDeleteFolioLocked(f, g, device: device, shadow: left, chargingSwap: true)
        g.unlock()
        if discard { device.issueDiscards() }
        _ = frames.put(f, UInt32(frames.pageCount(f)))
    }

    /// Legacy protocol: takes the has-cache bit of every slot of a swap-in before its folio exists
    /// (the kernel before swap-cache synchronization: `swapcache_prepare`). The bit already set → `.exists` (someone else
    /// is swapping in, or the folio is cached); a freed slot → `.noEntry`.
    func swapcachePrepare(_ entry: SwapEntry, count nr: Int) -> SwapCacheAddResult {
        guard let device = devices.device(for: entry), entry.offset + nr <= device.pageCount else { return .noEntry }
        return device.withClusterLock(entry) { g in
            let first = entry.slotInCluster
            for i in first..<(first + nr) {
                let s = g.slot(i)
                if s.hasCache || s.isFolio { return .exists }
                if s.count == 0 || s.isBad { return .noEntry }
            }
            for i in first..<(first + nr) { g.set(i, g.slot(i).withHasCache(true)) }
            return .added(shadow: nil)
        }
    }

    /// Legacy protocol: drops a has-cache bit taken by `swapcachePrepare` whose swap-in was
    /// abandoned before its folio went in (kernel: `swapcache_clear`), freeing slots whose count
    /// dropped to 0 meanwhile.
    func swapcacheClear(_ entry: SwapEntry, count nr: Int) {
        guard let device = devices.device(for: entry) else { return }
        let g = device.clusters.lock(entry.clusterIndex)
        var freed = 0
        for i in entry.slotInCluster..<(entry.slotInCluster + nr) {
            let s = g.slot(i).withHasCache(false)
            if s.count == 0 && !s.isFolio {
                if s.isSwapCharged { device.swapUncharge(s) }
                g.set(i, .empty)
                device.slotFreedLocked(g, slot: i)
                freed += 1
            } else {
                g.set(i, s)
            }
        }
        let discard = freed > 0 && device.releaseSlotsLocked(g, count: freed)
        g.unlock()
        // Racers asleep on `swapcache_wq` may take the bit now (kernel: `swapcache_clear`, then
        // `wake_up(&swapcache_wq)`).
        swapcacheWaitQueue.wake()
        if discard { device.issueDiscards() }
    }
}
