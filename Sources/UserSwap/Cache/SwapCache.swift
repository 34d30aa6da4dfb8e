import Synchronization

/// The swap cache and the devices behind it (kernel: `mm/swap_state.c` over `mm/swapfile.c`):
/// the swap-table slots that hold folios, the synchronization layer of swap-in (the protocol
/// chosen by `sync`), reading folios and runs of them, freeing slots that only the cache holds,
/// and the swap charges recorded in slots.
///
/// It takes folios from the frame allocator and gives each refault to the workingset; it never
/// calls reclaim.
final class SwapCache: Sendable {
    let devices: SwapDeviceSet
    let sync: SwapInSync
    let allocator: FrameAllocator
    let workingset: Workingset
    let frames: FrameTable
    let groups: MemoryGroupTable
    let stats: SwapStatistics
    /// Finishes asynchronous readahead windows (see `Region+Readahead.swift`).
    let asyncReads = AsyncReadCompleter()
    /// Racers of the legacy wait-queue protocol, asleep until a has-cache bit's holder inserts
    /// its folio or gives the bit up (kernel 6.12: `swapcache_wq`).
    let swapcacheWaitQueue = WaitQueue()
    #if DEBUG
    /// Switches that exist only to prove tests can fail (see `TestHooks`); the engine and
    /// reclaim share these.
    let testHooks: TestHooks
    #endif

    init(devices: SwapDeviceSet, sync: SwapInSync, allocator: FrameAllocator, workingset: Workingset) {
        self.devices = devices
        self.sync = sync
        self.allocator = allocator
        self.workingset = workingset
        frames = allocator.frames
        groups = allocator.groups
        stats = allocator.stats
        #if DEBUG
        testHooks = TestHooks()
        #endif
    }

    deinit {
        // Every queued readahead run holds the cache: none is left when this runs.
        asyncReads.stop()
    }
}
