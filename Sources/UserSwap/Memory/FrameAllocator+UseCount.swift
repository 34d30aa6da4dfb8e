/// The clock that decays use counts (`UseCount`): a group's evictions, in half-lives. The count
/// is frame metadata, set when a folio is allocated; reclaim ranks by it (`Reclaimer.rankByUse`).
extension FrameAllocator {
    /// Evictions of `group` between two halvings of its use counts: four times the pages it may
    /// hold. Simulated on Zipf (θ = 0.99, 4× over): one budget's worth forgets too fast
    /// (17.1 % misses), four gives 15.3 %, eight 15.2 %, never 15.2 % — but a workload whose hot
    /// set moves needs the decay.
    @inline(__always) func useHalfLife(_ group: MemoryGroup) -> UInt64 {
        UInt64(4 * max(1, min(group.memoryLimitPageCount, frames.frameCount)))
    }

    /// The current use epoch of `group`. Relaxed: an epoch early or late moves one halving.
    @inline(__always) func useEpoch(_ group: MemoryGroup) -> UInt64 {
        group.nonresidentAge.load(ordering: .relaxed) / useHalfLife(group)  // Relaxed: an epoch early or late moves one halving
    }

    /// A folio just allocated: no use counted yet, or its shadow's count aged by the evictions
    /// since (see `workingsetRefault`).
    @inline(__always) func startUses(_ f: Folio, group: MemoryGroup, count: Int = 0) {
        frames.setUses(f, UseCount(count: count, epoch: useEpoch(group)))
    }
}
