import Glibc
import Synchronization

/// The engine's shared state: what the kernel keeps in `mm/` globals. Devices and their swap
/// tables, the frame arena and frame table, the free frame pool, the LRU lists, the swap-in
/// protocol and the counters. The swap cache (`SwapEngine+SwapCache.swift`, kernel
/// `swap_state.c`), the swap-in loop (`SwapEngine+SwapIn.swift`) and reclaim
/// (`Reclaim/SwapEngine+Reclaim.swift`, kernel `vmscan.c`) are extensions on it.
final class SwapEngine: Sendable {
    let devices: SwapDeviceSet
    let frames: FrameTable
    let arena: _UnsafeFrameArena
    let pool: FramePool
    let sync: SwapInSync
    let stats = SwapStatistics()
    /// How reclaim picks pages.
    let policy: ReclaimPolicy
    /// Activate refaulting pages whose refault distance is short.
    var workingsetDetection: Bool { policy == .workingset }
    let watermarks: Watermarks
    /// Regions by id, for the reverse map (folio → the page that maps it).
    let regions = Mutex<[Int: WeakRegion]>([:])
    /// Wakes the background reclaimer; set once the space started it.
    let kswapd = Mutex<BackgroundReclaimer?>(nil)
    /// Memory groups by id; group 0 is the root.
    let groups: MemoryGroupTable
    #if DEBUG
    /// Switches that exist only to prove tests can fail (see `TestHooks`).
    let testHooks = TestHooks()
    #endif
    /// Rotates the group global reclaim starts with. Relaxed: fairness only.
    let shrinkRotor = Atomic<Int>(0)
    /// Write-backs that failed, and the last failure: an allocation that cannot free memory
    /// reports it instead of a plain out-of-memory.
    let writeFailures = Atomic<Int>(0)
    let lastWriteFailure = Mutex<SwapError?>(nil)
    /// The memory of transparent regions (see `FrameWindow`).
    let windows = FrameWindowTable()
    /// Finishes asynchronous readahead windows (see `Region+Readahead.swift`).
    let asyncReads = AsyncReadCompleter()
    /// Racers of the legacy wait-queue protocol, asleep until a has-cache bit's holder inserts
    /// its folio or gives the bit up (kernel 6.12: `swapcache_wq`).
    let swapcacheWaitQueue = WaitQueue()

    init(frameCount: Int, devices: SwapDeviceSet, sync: SwapInSync, policy: ReclaimPolicy = .workingset) throws(SwapError) {
        self.devices = devices
        self.sync = sync
        self.policy = policy
        frames = FrameTable(frameCount: frameCount)
        arena = try _UnsafeFrameArena(frameCount: frameCount)
        pool = FramePool(frameCount: frameCount)
        groups = MemoryGroupTable(frames: frames)
        watermarks = Watermarks(frames: frameCount)
    }

    deinit {
        // Every queued readahead run holds the engine: none is left when this runs.
        asyncReads.stop()
    }

    /// Takes a folio of `1 << order` frames with one reference (the caller's), no flags, charged
    /// to `group`. A group at its memory limit reclaims its own pages first; when no frame is
    /// free the calling thread reclaims (direct reclaim). Throws `.outOfMemory` only when nothing
    /// can be reclaimed: every page pinned, or swap full.
    /// `mayReclaim: false` (readahead of large folios, which never waits for memory) throws
    /// `.outOfMemory` at once instead of reclaiming: at the group's limit, or when the pool has
    /// no free run of `1 << order` frames.
    /// The caller must hold no folio, page-table or cluster lock.
    func allocateFolio(order: Int, group: Int = 0, mayReclaim: Bool = true) throws(SwapError) -> Folio {
        let nr = 1 << order
        let owner = groups[group]
        var idle = 0
        var waiting = BoundedWait.reclaim
        while let limited = owner.tryChargeMemory(nr) {
            guard mayReclaim else {
                throw SwapError(.outOfMemory, "memory group \(limited.name) is at its limit; not reclaiming for readahead")
            }
            limited.count(.limitReclaims)
            if shrinkSubtree(limited, target: max(32, 2 * nr)) > 0 {
                // Racing allocations may take what we freed: try again, as direct reclaim does.
                idle = 0
                continue
            }
            if (reclaimInProgress || asyncReads.outstanding > 0) && waiting.pause() {
                // Another reclaimer holds the group's candidates off the lists; its frees
                // uncharge the group. Or readahead windows are being read: their folios go on
                // the lists, reclaimable, when the reads complete.
                continue
            }
            idle += 1
            if idle >= 3 {
                throw SwapError(
                    .outOfMemory,
                    "memory group \(limited.name) is at its limit of \(limited.memoryLimit ?? 0) bytes and nothing in it can be swapped out (pages pinned, or swap full)"
                )
            }
        }
        var head = pool.allocate(order: order)
        if head == nil && !mayReclaim {
            owner.unchargeMemory(nr)
            wakeBackgroundReclaim()
            throw SwapError(.outOfMemory, "no free run of \(nr) frames; not reclaiming for readahead")
        }
        if head == nil {
            stats.count(.directReclaims)
            var idle = 0
            var waiting = BoundedWait.reclaim
            while head == nil && idle < 3 {
                wakeBackgroundReclaim()
                let freed = shrink(target: max(32, 2 * nr), batchSize: directBatch)
                head = pool.allocate(order: order)
                if head == nil && freed == 0 && (reclaimInProgress || asyncReads.outstanding > 0) && waiting.pause() {
                    // Another reclaimer holds the candidates; its frees are ours to take. Or
                    // readahead reads in flight hold them: reclaimable once complete.
                    head = pool.allocate(order: order)
                    continue
                }
                idle = freed == 0 ? idle + 1 : 0
            }
            guard head != nil else {
                owner.unchargeMemory(nr)
                if let failure = lastWriteFailure.withLock({ e in
                    defer { e = nil }
                    return e
                }) {
                    throw SwapError(failure.code, "no free frame, and swapping out failed: \(failure.message)", errno: failure.errno)
                }
                throw SwapError(
                    .outOfMemory,
                    "no free frame: the RAM budget of \(frames.frameCount << SwapPage.shift) bytes is full and nothing can be swapped out (pages pinned, or swap full); raise --memory or add swap"
                )
            }
        }
        if pool.freeFrames < watermarks.low { wakeBackgroundReclaim() }
        let f = Folio(frame: head!)
        frames.initializeMeta(f, order: order, group: group)
        frames.initializeRefcount(f, 1)
        startUses(f, group: owner)
        return f
    }

    /// Returns a folio whose last reference is gone to the pool and uncharges its group. It must
    /// be out of the swap cache, unlocked and not under writeback.
    func freeFolio(_ f: Folio) {
        let flags = frames.flags(f)
        precondition(
            !flags.contains(.swapcache) && !flags.contains(.locked) && !flags.contains(.writeback),
            "freeing \(f) in state \(flags)")
        assert(frames.refcount(f) == 0)
        let group = groups[frames.group(f)]
        if flags.contains(.lru) { group.lru.remove(f) }
        if flags.contains(.readahead) { stats.count(.readaheadWasted, 1 << frames.order(f)) }
        frames.setOwner(f, 0)
        let placement = frames.placement(f)
        if !placement.isArena {
            let window = windows[placement.windowSlot]
            window.release(placement.page, frame: f.frame)
            frames.setPlacement(f, .arena)
            window.liveFolios.subtract(1, ordering: .releasing)
        }
        frames.clearFlags(f, FolioFlags(rawValue: .max))
        let order = frames.order(f)
        pool.free(f.frame, order: order)
        group.unchargeMemory(1 << order)
    }

    /// The LRU lists a folio belongs on: its group's.
    @inline(__always)
    func lru(_ f: Folio) -> LRUVec { groups[frames.group(f)].lru }

    /// Drops a reference and frees the folio if it was the last.
    @inline(__always)
    func putFolio(_ f: Folio, _ n: UInt32 = 1) {
        if frames.put(f, n) { freeFolio(f) }
    }

    /// The bytes of a folio (all its pages).
    @inline(__always)
    func bytes(_ f: Folio) -> UnsafeMutableRawBufferPointer {
        let placement = frames.placement(f)
        let start = placement.isArena ? arena.address(f.frame) : windows[placement.windowSlot].engineAddress(placement.page)
        return UnsafeMutableRawBufferPointer(start: start, count: frames.pageCount(f) << SwapPage.shift)
    }

    /// Places a new folio (one page, nobody else sees it yet) in its window; its bytes are
    /// written only after it claims the window page (see `FrameWindow.claim`).
    func place(_ f: Folio, _ placement: FramePlacement) {
        guard !placement.isArena else { return }
        precondition(frames.order(f) == 0, "window placement is per page")
        windows[placement.windowSlot].liveFolios.add(1, ordering: .relaxed)
        frames.setPlacement(f, placement)
    }

    /// Makes the placed folio `f` the owner of its window page, before its data is written.
    @inline(__always)
    func claimPlacement(_ f: Folio) {
        let placement = frames.placement(f)
        if !placement.isArena { windows[placement.windowSlot].claim(placement.page, frame: f.frame) }
    }

    /// The region with `id`, if it still exists.
    func region(_ id: Int) -> Region? {
        regions.withLock { $0[id]?.region }
    }

    func wakeBackgroundReclaim() {
        kswapd.withLock { $0 }?.wake()
    }
}

/// A weak reference to a region, for the reverse map: reclaim must not keep regions alive.
struct WeakRegion: Sendable {
    weak var region: Region?
}

/// Free-frame thresholds (kernel: `WMARK_MIN/LOW/HIGH`): below `low` the background reclaimer
/// wakes; it reclaims until `high`; below `min` allocating threads reclaim themselves first.
struct Watermarks: Sendable {
    let min: Int
    let low: Int
    let high: Int

    /// min is 1/128 of the budget (at least one frame), low and high 5/4 and 3/2 of min, as the
    /// kernel spaces them, plus a readahead reserve above both: two of the largest windows (at
    /// most 1/32 of the budget), so that readahead, which stops at min rather than reclaim,
    /// finds a whole window free while the background reclaimer keeps up.
    init(frames: Int) {
        min = Swift.max(1, frames / 128)
        let reserve = Swift.min(2 * ReadaheadState.maxWindow, frames / 32)
        low = min + min / 4 + reserve
        high = min + min / 2 + reserve
    }
}
