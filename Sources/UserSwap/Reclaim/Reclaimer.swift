import Synchronization

/// Reclaim (kernel: `mm/vmscan.c`, anonymous pages): the policy that picks folios from the LRU
/// lists of the memory groups, the background reclaimer, and pageout — unmapping through the
/// reverse map, write-back, and removal from the swap cache with a workingset shadow left.
///
/// Above the swap cache and the frame allocator, which it uses; the allocator calls back only
/// through `DirectReclaim`, which this implements.
final class Reclaimer: Sendable {
    /// How reclaim picks pages.
    let policy: ReclaimPolicy
    let allocator: FrameAllocator
    let cache: SwapCache
    let workingset: Workingset
    let reverseMap: ReverseMap
    let frames: FrameTable
    let groups: MemoryGroupTable
    let devices: SwapDeviceSet
    let windows: FrameWindowTable
    let stats: SwapStatistics
    /// Wakes the background reclaimer; set once the space started it.
    let kswapd = Mutex<BackgroundReclaimer?>(nil, rank: .backgroundReclaimerHandle)
    /// Rotates the group global reclaim starts with. Relaxed: fairness only.
    let shrinkRotor = Atomic<Int>(0)
    /// Write-backs that failed, and the last failure: an allocation that cannot free memory
    /// reports it instead of a plain out-of-memory.
    let writeFailures = Atomic<Int>(0)
    let lastWriteFailure = Mutex<SwapError?>(nil, rank: .lastError)
    #if DEBUG
    /// Switches that exist only to prove tests can fail (see `TestHooks`): the cache's.
    let testHooks: TestHooks
    #endif

    init(policy: ReclaimPolicy, cache: SwapCache, reverseMap: ReverseMap) {
        self.policy = policy
        self.cache = cache
        self.reverseMap = reverseMap
        allocator = cache.allocator
        workingset = cache.workingset
        frames = cache.frames
        groups = cache.groups
        devices = cache.devices
        windows = cache.allocator.windows
        stats = cache.stats
        #if DEBUG
        testHooks = cache.testHooks
        #endif
    }

    /// Asks the background reclaimer to run (a no-op before the space started it).
    func wakeBackgroundReclaim() {
        kswapd.withLock { $0 }?.wake()
    }

    /// Whether the space started the background reclaimer (and has not stopped it).
    var hasBackgroundReclaim: Bool { kswapd.withLock { $0 != nil } }
}

/// The allocator's way into reclaim.
extension Reclaimer: DirectReclaim {
    func reclaimForGroup(_ group: MemoryGroup, target: Int) -> Int {
        shrinkSubtree(group, target: target)
    }

    func reclaimForAllocation(target: Int) -> Int {
        shrink(target: target, batchSize: largeBatch)
    }

    func othersMayFree(besides ownArriving: Int) -> Bool {
        reclaimInProgress || cache.asyncReads.outstanding > 0
            // Relaxed: a hint; the waiting allocation looks again.
            || frames.arrivingPages.load(ordering: .relaxed) > ownArriving
    }

    func takeWriteFailure() -> SwapError? {
        lastWriteFailure.withLock { e in
            defer { e = nil }
            return e
        }
    }
    var swapExhausted: (slots: Int, devices: Int)? { devices.exhausted }
}
