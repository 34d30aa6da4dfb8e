/// Taking folios out of the swap cache when nothing maps their slots any more (kernel:
/// `folio_free_swap`, `__try_to_reclaim_swap`).
extension SwapEngine {
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
                && frames.refcount(f) == frames.pageCount(f) + 1 {
                freeSwapIfUnused(f)
            }
            frames.unlock(f)
        }
        putFolio(f)
    }
}
