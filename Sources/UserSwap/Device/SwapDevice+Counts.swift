import Synchronization

/// Swap counts: how many page-table mappings refer to each slot (kernel phase II:
/// `swap_dup_entry_direct`, `swap_put_entries_direct`), and freeing a slot when nothing refers to
/// it any more. Every change happens under the cluster lock.
extension SwapDevice {
    /// Allocates `1 << order` slots with a swap count of 1 and no folio — the folio-less path
    /// (kernel: the hibernation allocator). The swap cache uses `allocateSlots(order:initial:)`
    /// with a folio instead. Throws `.swapFull` when no run of that order is free.
    package func allocate(order: Int = 0) throws(SwapError) -> SwapEntry {
        guard let entry = allocateSlots(order: order, initial: .counted(1)) else {
            throw SwapError(
                .swapFull, "swap device \(type) has no free run of \(1 << order) slots (\(freePages) of \(usablePages) slots free)")
        }
        return entry
    }

    /// The swap count of `entry` (0 for a free or cache-only slot).
    package func swapCount(_ entry: SwapEntry) -> Int { slot(entry).count }

    /// Adds one mapping to `entry` (kernel: `swap_dup_entry_direct`). Throws `.noEntry` if the
    /// slot is free and `.countOverflow` if it already has `SwapTableSlot.maxCount` mappings.
    package func duplicate(_ entry: SwapEntry) throws(SwapError) {
        try withClusterLock(entry) { (g: borrowing ClusterGuard) throws(SwapError) in
            let i = entry.slotInCluster
            let s = g.slot(i)
            guard !s.isFree, !s.isBad else {
                throw SwapError(.noEntry, "\(entry) is not allocated")
            }
            guard s.count < SwapTableSlot.maxCount else {
                throw SwapError(.countOverflow, "\(entry) already has \(SwapTableSlot.maxCount) mappings, the most a slot can count")
            }
            g.set(i, s.withCount(s.count + 1))
        }
        // A swap-out finished its unmap: a page for a swapoff to bring back.
        progress.wake()
    }

    /// Drops one mapping from each of the `nr` slots starting at `entry` (kernel:
    /// `swap_put_entries_direct`). A slot whose count reaches 0 is freed at once unless a folio
    /// still holds it in the swap cache (or the legacy has-cache bit pins it); such a
    /// "cache-only" slot is freed when its folio leaves the cache.
    ///
    /// Dropping a mapping that does not exist is a bug in the caller and traps.
    package func put(_ entry: SwapEntry, count nr: Int = 1) {
        var e = entry
        var remaining = nr
        var discardPending = false
        while remaining > 0 {
            let inCluster = min(remaining, SwapCluster.slotCount - e.slotInCluster)
            let c = e.clusterIndex
            let g = clusters.lock(c)
            var freed = 0
            for i in e.slotInCluster..<(e.slotInCluster + inCluster) {
                let s = g.slot(i)
                require(
                    s.count > 0 && !s.isBad,
                    "swap count underflow at \(SwapEntry(type: type, offset: c << SwapCluster.slotShift | i)): \(s)")
                let dropped = s.withCount(s.count - 1)
                if dropped.count == 0 && !dropped.isFolio && !dropped.hasCache {
                    // Nothing refers to the slot: free it, shadow, charge and all.
                    if dropped.isSwapCharged { swapUncharge(dropped) }
                    g.set(i, .empty)
                    slotFreedLocked(g, slot: i)
                    freed += 1
                } else {
                    g.set(i, dropped)
                }
            }
            if freed > 0 { discardPending = releaseSlotsLocked(g, count: freed) || discardPending }
            g.unlock()
            // Slots freed, or left to the swap cache alone: a swapoff may drop them now.
            if freed < inCluster { progress.wake() }
            e = e.advanced(by: inCluster)
            remaining -= inCluster
        }
        if discardPending { issueDiscards() }
    }

    /// Books `count` slots of the locked cluster as freed (their words are already 0) and moves the
    /// cluster to the list its new state calls for: an emptied cluster gives its table back and
    /// goes to the free list (or the discard list); a full or fragmented one becomes nonfull
    /// again, since the free may have opened an aligned run (kernel: `partial_free_cluster`).
    /// Returns true when a discard is now pending.
    func releaseSlotsLocked(_ g: borrowing ClusterGuard, count: Int) -> Bool {
        let c = g.index
        let ci = g.info
        require(Int(ci.pointee.count) >= count, "cluster \(c) count underflow")
        ci.pointee.count -= UInt16(count)
        // Relaxed: a counter; see `inusePages`.
        inusePages.subtract(count, ordering: .relaxed)
        progress.wake()
        if ci.pointee.isEmpty {
            g.releaseTable()
            ci.pointee.hasTable = false
            let first = c << SwapCluster.slotShift
            backend.forget(pages: first..<min(first + SwapCluster.slotCount, pageCount))
            moveLocked(g, to: discardEnabled ? ClusterLists.discard : ClusterLists.free)
            return discardEnabled
        }
        let current = ci.pointee.list
        if current != ClusterLists.isolated && current != ClusterLists.nonfull(Int(ci.pointee.order)) {
            moveLocked(g, to: ClusterLists.nonfull(Int(ci.pointee.order)))
        }
        return false
    }

    /// Runs `body` with the cluster of `entry` locked, passing its guard.
    @inline(__always)
    func withClusterLock<R, E: Error>(
        _ entry: SwapEntry, _ body: (borrowing ClusterGuard) throws(E) -> R
    ) throws(E) -> R {
        require(
            entry.type == type && entry.offset > 0 && entry.offset < pageCount,
            "\(entry) is not a data slot of device \(type)")
        let g = clusters.lock(entry.clusterIndex)
        let result = try body(g)
        g.unlock()
        return result
    }
}
