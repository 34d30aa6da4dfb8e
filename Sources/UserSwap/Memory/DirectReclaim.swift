/// The one call up the layers: what the frame allocator asks of reclaim when no frame is free
/// or a group is at its limit (kernel: `__alloc_pages_direct_reclaim`, `try_to_free_mem_cgroup_pages`).
/// The reclaimer implements it; the engine connects the two (`FrameAllocator.connect`). Every
/// other dependency points down: reclaim uses the allocator, never the other way round but here.
///
/// Callers hold no folio, page-table or cluster lock (reclaim takes them).
protocol DirectReclaim: AnyObject, Sendable {
    /// Reclaims up to `target` frames from `group` and the groups nested in it, for an
    /// allocation that found the group at its limit. Returns the frames freed.
    func reclaimForGroup(_ group: MemoryGroup, target: Int) -> Int
    /// Reclaims up to `target` frames from every group, for an allocation that found no free
    /// frame (in direct reclaim's batch size). Returns the frames freed.
    func reclaimForAllocation(target: Int) -> Int
    /// Whether frames may come free without this thread's help: another reclaimer holds
    /// candidates off the lists, or reads are in flight (their new folios become reclaimable
    /// when they complete) beyond the `ownArriving` pages the caller itself holds arriving
    /// (`FolioFlags.arriving`) — waiting for those would be waiting for itself. An allocation
    /// that freed nothing waits a little then.
    func othersMayFree(besides ownArriving: Int) -> Bool
    /// Wakes the background reclaimer (kernel: `wakeup_kswapd`).
    func wakeBackgroundReclaim()
    /// Whether a background reclaimer runs: without one, nobody resumes the tasks waiting in
    /// `FrameAllocator.frameWaiters`, so they reclaim themselves.
    var hasBackgroundReclaim: Bool { get }
    /// The last write-back failure not reported yet, cleared: an allocation that cannot free
    /// memory reports it instead of a plain out-of-memory.
    func takeWriteFailure() -> SwapError?
    /// When swap is what stops reclaim: every slot of the devices that take new pages is in
    /// use (`SwapDeviceSet.exhausted`). An allocation that cannot free memory then reports
    /// swap full, not out of memory.
    var swapExhausted: (slots: Int, devices: Int)? { get }
}

/// The allocator's link to its reclaimer: weak, because the reclaimer holds the allocator.
final class DirectReclaimLink: Sendable {
    weak let reclaim: (any DirectReclaim)?

    init(_ reclaim: any DirectReclaim) { self.reclaim = reclaim }
}
