/// The engine of a space: the layers composed, nothing more (docs/DESIGN.md, *Layers*).
///
/// From the bottom: the frame allocator (frames, pool, arena, windows, watermarks, memory
/// groups), the workingset (shadows and refaults), the swap cache (devices, swap-in, reads,
/// slot freeing), the reverse map (folio → region) and reclaim (LRU policy, background
/// reclaimer, pageout). Each owner uses only the ones below it; the allocator reaches reclaim
/// only through `DirectReclaim`, connected here.
final class SwapEngine: Sendable {
    let allocator: FrameAllocator
    let workingset: Workingset
    let cache: SwapCache
    let reverseMap: ReverseMap
    let reclaimer: Reclaimer
    /// Pages pinned through the `async` API, and the most allowed.
    let asyncPins: AsyncPinBudget
    /// Reads started by async pins in flight at once, and the tasks waiting to start one.
    let asyncReads: AsyncReadGate
    #if DEBUG
    /// Switches that exist only to prove tests can fail (see `TestHooks`): the cache's, which
    /// reclaim shares.
    var testHooks: TestHooks { cache.testHooks }
    #endif

    /// The tables every layer shares, for the layers above the engine.
    var frames: FrameTable { allocator.frames }
    var groups: MemoryGroupTable { allocator.groups }
    var stats: SwapStatistics { allocator.stats }
    var devices: SwapDeviceSet { cache.devices }
    var sync: SwapInSync { cache.sync }

    /// An engine of `frameCount` frames over `devices`; `readaheadReserve` frames are kept free
    /// above the watermarks for readahead windows (`Watermarks`); at most `asyncPinLimit` pages
    /// pinned through the `async` API at once (half the frames when nil); at most
    /// `asyncReadLimit` reads started by async pins in flight at once, and never more than a
    /// quarter of the frames (`AsyncReadGate`).
    init(
        frameCount: Int, devices: SwapDeviceSet, sync: SwapInSync, policy: ReclaimPolicy = .workingset,
        readaheadReserve: Int, asyncPinLimit: Int? = nil, asyncReadLimit: Int? = nil
    ) throws(SwapError) {
        asyncPins = AsyncPinBudget(limit: asyncPinLimit ?? Swift.max(1, frameCount / 2))
        asyncReads = AsyncReadGate(limit: Swift.max(1, Swift.min(frameCount / 4, asyncReadLimit ?? .max)))
        allocator = try FrameAllocator(frameCount: frameCount, readaheadReserve: readaheadReserve, stats: SwapStatistics())
        workingset = Workingset(
            allocator: allocator, activatesRefaults: policy == .workingset, keepsUseCounts: policy == .frequency)
        reverseMap = ReverseMap()
        cache = SwapCache(devices: devices, sync: sync, allocator: allocator, workingset: workingset)
        reclaimer = Reclaimer(policy: policy, cache: cache, reverseMap: reverseMap)
        allocator.connect(reclaimer)
    }
}
