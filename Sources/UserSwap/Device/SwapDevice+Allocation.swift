import CUserSwap
import Synchronization

/// The cluster allocator (kernel: `cluster_alloc_swap_entry` and friends in `mm/swapfile.c`).
///
/// Order of attempts, as in the kernel: this thread's hint for the order → a free cluster → the
/// nonfull clusters of the order (a cluster that fails is demoted to frag) → the frag clusters of
/// the order → for order 0 only, any cluster of another order with a free slot → clusters waiting
/// for discard. Runs are naturally aligned: a run of `1 << order` slots starts at a multiple of
/// `1 << order`, so a large folio's slots never straddle clusters.
extension SwapDevice {
    /// Allocates `1 << order` consecutive, aligned slots and writes `initial` into each, in one
    /// cluster-lock critical section — the allocator's own insert, which cannot race with anyone
    /// because nobody else can see slots that were free. Returns nil when no cluster can serve the
    /// order (the caller falls back to order 0 or another device).
    ///
    /// `initial` must be non-zero (a used slot): a folio with count 0 (swap-out) or a count.
    ///
    /// A swapoff may begin at any moment: the allocation holds a `users` reference throughout,
    /// so swapoff cannot take the device away while it runs, and each cluster-locked section
    /// that takes slots checks `writeOK` first (kernel: `get_swap_device_info`, and
    /// `cluster_alloc_range` testing `SWP_WRITEOK` under `ci->lock`). Checked only before the
    /// locks, a thread preempted after the check took a slot on a device swapoff had found empty
    /// and removed.
    func allocateSlots(order: Int, initial: SwapTableSlot) -> SwapEntry? {
        require(order >= 0 && order <= SwapCluster.maxOrder, "order \(order) out of range")
        require(!initial.isFree && !initial.isBad, "slots allocated as \(initial), a free or bad slot")
        // Not worth a reference: a device being removed fails here at once, the rest below.
        guard writeOK.load(ordering: .acquiring), users.tryGet() else { return nil }
        defer { users.put() }
        #if DEBUG
        beforeAllocationLock.run()
        #endif
        let hint = hints[hintIndex(order: order)]

        // Fast path: continue in the cluster this thread used last for this order.
        // Relaxed: the hint is only a guess; the cluster lock validates it.
        let h = hint.pointee.load(ordering: .relaxed)
        if h != 0 {
            let c = Int(h >> 32) - 1
            let g = clusters.lock(c)
            // An empty cluster may be on the free list or waiting for discard: only the slow path
            // takes those.
            if g.info.pointee.count > 0, let run = allocateRunLocked(g, order: order, from: Int(h & 0xffff_ffff), initial: initial) {
                relocateAfterAllocationLocked(g, failedScan: false)
                g.unlock()
                return finish(c, run, order, hint)
            }
            g.unlock()
        }
        var waiting = BoundedWait.clusterScan
        while true {
            if let entry = allocateSlow(order: order, initial: initial, hint: hint) { return entry }
            // A scan takes each cluster off its list while it looks, so clusters other threads
            // are scanning right now are invisible to this one: on a small device every cluster
            // can be, and the device would be called full with slots free (seen under TSan:
            // 2 clusters, 1,018 slots free). With a slot free, a single page waits for them.
            guard order == 0, freePages > 0, writeOK.load(ordering: .acquiring), waiting.pause() else { return nil }
        }
    }

    private func allocateSlow(order: Int, initial: SwapTableSlot, hint: UnsafeMutablePointer<Atomic<UInt64>>) -> SwapEntry? {
        for attempt in 0..<2 {
            if let g = isolateAndLock(ClusterLists.free) {
                let c = g.index
                let run = allocateRunLocked(g, order: order, from: 0, initial: initial)
                relocateAfterAllocationLocked(g, failedScan: run == nil)
                g.unlock()
                if let run { return finish(c, run, order, hint) }
            }
            // Every cluster that fails a scan for its order is demoted to frag, so this loop
            // visits each nonfull cluster at most once.
            while let g = isolateAndLock(ClusterLists.nonfull(order)) {
                let c = g.index
                let run = allocateRunLocked(g, order: order, from: 0, initial: initial)
                relocateAfterAllocationLocked(g, failedScan: run == nil)
                g.unlock()
                if let run { return finish(c, run, order, hint) }
            }
            if let found = scanRotating(ClusterLists.frag(order), order: order, initial: initial, hint: hint) {
                return found
            }
            if order == 0 {
                // Order 0 fits in any cluster with a free slot, whatever order the cluster serves.
                for other in 1...SwapCluster.maxOrder {
                    for list in [ClusterLists.nonfull(other), ClusterLists.frag(other)] {
                        if let found = scanRotating(list, order: 0, initial: initial, hint: hint) { return found }
                    }
                }
            }
            // Last resort: clusters whose discard is pending become free once it is done.
            if attempt == 0, discardEnabled, lists.withLock({ $0.length(ClusterLists.discard) }) > 0 {
                issueDiscards()
                continue
            }
            break
        }
        return nil
    }

    /// Scans each cluster of `list` once (taking it off the head and putting it back at the
    /// tail when it cannot serve), so concurrent scanners do not trip over each other.
    private func scanRotating(
        _ list: ClusterLists.ID, order: Int, initial: SwapTableSlot,
        hint: UnsafeMutablePointer<Atomic<UInt64>>
    ) -> SwapEntry? {
        var budget = lists.withLock { $0.length(list) }
        while budget > 0, let g = isolateAndLock(list) {
            budget -= 1
            let c = g.index
            let run = allocateRunLocked(g, order: order, from: 0, initial: initial)
            if run != nil || g.info.pointee.isFull {
                relocateAfterAllocationLocked(g, failedScan: false)
            } else {
                moveLocked(g, to: list)
            }
            g.unlock()
            if let run { return finish(c, run, order, hint) }
        }
        return nil
    }

    @inline(__always)
    private func finish(_ c: Int, _ run: Int, _ order: Int, _ hint: UnsafeMutablePointer<Atomic<UInt64>>) -> SwapEntry {
        let next = run + (1 << order)
        // Relaxed: a hint; a stale one costs one failed fast-path attempt.
        hint.pointee.store(next < SwapCluster.slotCount ? UInt64(c + 1) << 32 | UInt64(next) : 0, ordering: .relaxed)
        return SwapEntry(type: type, offset: c << SwapCluster.slotShift | run)
    }

    @inline(__always)
    private func hintIndex(order: Int) -> Int {
        Int(cus_thread_slot()) % Self.hintShards * SwapCluster.orderCount + order
    }

    /// Finds a free aligned run of `1 << order` slots in the locked cluster, starting the
    /// search at `start`, and fills it with `initial`. Returns the run's first slot; nil also
    /// once swapoff has stopped allocation on the device. Caller holds a `users` reference.
    func allocateRunLocked(_ g: borrowing ClusterGuard, order: Int, from start: Int, initial: SwapTableSlot) -> Int? {
        // Under the lock that publishes the slots: swapoff, once it sees the device empty with
        // no reference held, knows that every later look here fails (kernel:
        // `cluster_alloc_range`).
        guard writeOK.load(ordering: .acquiring) else { return nil }
        #if DEBUG
        afterWriteOKLocked.run()
        #endif
        // Under the cluster lock: the slots taken next are what swapoff must not miss.
        yieldPoint(.allocationLocked)
        let ci = g.info
        guard ci.pointee.isUsable(forOrder: order) else { return nil }
        let nr = 1 << order
        guard Int(ci.pointee.count) + nr <= SwapCluster.slotCount else { return nil }
        if ci.pointee.count == 0 {
            ci.pointee.order = UInt8(order)
            ci.pointee.hasTable = true
        }
        let first = start & (SwapCluster.slotCount - 1) & ~(nr - 1)
        var run = first
        repeat {
            if runIsFree(g, run, nr) {
                for i in run..<(run + nr) { g.set(i, initial) }
                ci.pointee.count += UInt16(nr)
                // Relaxed: a counter read for statistics and checked when the device is quiet.
                inusePages.add(nr, ordering: .relaxed)
                return run
            }
            run = (run + nr) & (SwapCluster.slotCount - 1)
        } while run != first
        return nil
    }

    @inline(__always)
    private func runIsFree(_ g: borrowing ClusterGuard, _ run: Int, _ nr: Int) -> Bool {
        for i in run..<(run + nr) where !g.slot(i).isFree { return false }
        return true
    }

    /// Takes the first cluster of `list` whose lock is free, off the list, and returns it
    /// locked (kernel: `isolate_lock_cluster`). Uses `tryLock` because we hold the device
    /// lock here, which ranks below the cluster lock (`LockRank`).
    func isolateAndLock(_ list: ClusterLists.ID) -> ClusterGuard? {
        lists.withLock { l -> ClusterGuard? in
            var candidate = l.head(list)
            while let c = candidate {
                if let g = clusters.tryLock(c) {
                    l.remove(c, from: list)
                    g.info.pointee.list = ClusterLists.isolated
                    return g
                }
                candidate = l.successor(of: c)
            }
            return nil
        }
    }

    /// Moves the locked cluster to `list`.
    func moveLocked(_ g: borrowing ClusterGuard, to list: ClusterLists.ID) {
        let c = g.index
        let ci = g.info
        let current = ci.pointee.list
        guard current != list else { return }
        lists.withLock { l in
            if current != ClusterLists.isolated { l.remove(c, from: current) }
            l.append(c, to: list)
        }
        ci.pointee.list = list
    }

    /// Puts a cluster on the list its state calls for after an allocation attempt (kernel:
    /// `relocate_cluster`): full → full; a failed scan or an already fragmented cluster → frag;
    /// otherwise nonfull.
    func relocateAfterAllocationLocked(_ g: borrowing ClusterGuard, failedScan: Bool) {
        let ci = g.info
        let current = ci.pointee.list
        if current == ClusterLists.discard { return }
        let order = Int(ci.pointee.order)
        let target: ClusterLists.ID
        if ci.pointee.isEmpty {
            // Only reachable when a free cluster could not serve (never for a valid order).
            target = ClusterLists.free
        } else if ci.pointee.isFull {
            target = ClusterLists.full
            // Newly full: its cache-only slots are the background slot reclaimer's to look at
            // when swap is over half full (`SlotReclaimWorker`). The kernel schedules its
            // `si->reclaim_work` later, when the whole device fills (`swap_range_alloc`); here
            // each filled cluster asks, so the slots come free before an allocation fails.
            if current != ClusterLists.full { clusterFilled(self) }
        } else if failedScan || current == ClusterLists.frag(order) {
            target = ClusterLists.frag(order)
        } else {
            target = ClusterLists.nonfull(order)
        }
        moveLocked(g, to: target)
    }

    /// Gives back the disk space of clusters that became free, outside every lock, then returns
    /// them to the free list (kernel: `swap_do_scheduled_discard`).
    func issueDiscards() {
        while let isolated = isolateAndLock(ClusterLists.discard) {
            let c = isolated.index
            // Isolated with count 0: no allocator can take it (it is on no list and hints skip
            // empty clusters), so we can drop the lock for the I/O.
            isolated.unlock()
            let first = c << SwapCluster.slotShift
            let pages = first..<min(first + SwapCluster.slotCount, pageCount)
            // A failed discard loses nothing: the slots are free either way.
            try? backend.discard(pages: pages)
            let g = clusters.lock(c)
            moveLocked(g, to: ClusterLists.free)
            g.unlock()
        }
    }
}
