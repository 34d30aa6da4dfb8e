import Glibc

/// Setting a group's memory limit (kernel: `memory_max_write` in `mm/memcontrol.c`): the limit
/// holds as soon as it is set, as the kernel's does, rather than at the group's next charge.
extension FrameAllocator {
    /// Sets `group`'s memory limit to `bytes` (nil: none) and, when the group holds more, swaps
    /// out the difference from it and the groups nested in it before returning (kernel:
    /// `memory_max_write` → `try_to_free_mem_cgroup_pages`). A limit at or above the usage
    /// reclaims nothing.
    ///
    /// Throws when reclaim cannot bring the group under the limit: its pages are pinned, swap
    /// or a swap limit is full, or a write failed. The new limit stays set then, as the kernel
    /// leaves `memory.max` written, and the error says how many bytes stay above it; the
    /// group's next charges reclaim again.
    ///
    /// Racing charges cannot undo the progress: while the group is above its limit, every
    /// charge to it fails and reclaims instead, so its usage only falls until it is under.
    /// The caller must hold no folio, page-table or cluster lock.
    func setMemoryLimit(_ bytes: Int?, of group: MemoryGroup) throws(SwapError) {
        group.memoryLimit = bytes
        var idle = 0
        var waiting = BoundedWait.reclaim
        while true {
            let excess = group.memoryPageCount - group.memoryLimitPageCount
            guard excess > 0 else { return }
            group.count(.limitReclaims)
            if (reclaim?.reclaimForGroup(group, target: excess) ?? 0) > 0 {
                idle = 0
                continue
            }
            if (reclaim?.othersMayFree(besides: 0) ?? false) && waiting.pause() {
                // Another reclaimer holds some of the group's folios off the lists, or reads
                // are in flight: what they free or complete is reclaimable (as in
                // `chargeReclaiming`).
                continue
            }
            idle += 1
            if idle < Self.reclaimRetries {
                // As in `chargeReclaiming`: let racing threads move on before the next pass.
                sched_yield()
                continue
            }
            let over = (group.memoryPageCount - group.memoryLimitPageCount) * SwapPage.size
            guard over > 0 else { return }
            throw limitReclaimFailure(
                group, "stays \(over) bytes above the memory limit of \(bytes ?? 0) bytes it was given (the limit is set)")
        }
    }
}
