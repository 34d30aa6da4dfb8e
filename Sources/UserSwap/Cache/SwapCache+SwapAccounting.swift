/// Swap charges of memory groups (kernel: `memcg1_swapout`, `mem_cgroup_uncharge_swap`). A
/// page's swap is charged to its group when the page leaves memory and lives only on swap; the
/// charge is recorded in the slot (`SwapTableSlot.isSwapCharged`, the group in the shadow) and
/// released by whoever frees the slot or brings the page back.
extension SwapCache {
    /// Records the swap charge of the locked folio `f`, about to leave the swap cache, on every
    /// slot it covers; `g` is its cluster's lock. Must run *before* the folio is deleted
    /// from the cache: the delete frees slots nobody maps any more, and only a slot that
    /// carries the record gets uncharged when freed (the order the kernel's swap-cache synchronization series settled on).
    func swapoutRecordLocked(_ f: Folio, _ g: borrowing ClusterGuard) {
        let entry = frames.entry(f)
        let nr = frames.pageCount(f)
        require(g.index == entry.clusterIndex, "\(f) is in cluster \(entry.clusterIndex), not the locked \(g.index)")
        for i in entry.slotInCluster..<(entry.slotInCluster + nr) {
            let s = g.slot(i)
            require(!s.isSwapCharged, "slot \(i) charged twice")
            g.set(i, s.withSwapCharged(true))
        }
        groups[frames.group(f)].chargeSwap(nr)
    }

    /// Releases the swap charge of `slots` slots recorded for folio `f`'s group.
    func swapUncharge(folio f: Folio, slots: Int) {
        groups[frames.group(f)].unchargeSwap(slots)
    }

    /// Releases the swap charge of one freed slot, whose shadow names the group.
    func swapUncharge(_ slot: SwapTableSlot) {
        require(slot.isShadow, "a charged slot without a shadow: \(slot)")
        groups[Shadow(packed: slot.payload).group].unchargeSwap(1)
    }
}
