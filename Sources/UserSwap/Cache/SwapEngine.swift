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
    let lru: LRUVec
    /// Activate refaulting pages whose refault distance is short (off: plain second chance).
    let workingsetDetection: Bool
    /// The workingset clock: ticks on every eviction and activation (kernel:
    /// `lruvec->nonresident_age`).
    let nonresidentAge = Atomic<UInt64>(0)
    let watermarks: Watermarks
    /// Regions by id, for the reverse map (folio → the page that maps it).
    let regions = Mutex<[Int: WeakRegion]>([:])
    /// Wakes the background reclaimer; set once the space started it.
    let kswapd = Mutex<BackgroundReclaimer?>(nil)

    init(frameCount: Int, devices: SwapDeviceSet, sync: SwapInSync, workingsetDetection: Bool = true) throws(SwapError) {
        self.devices = devices
        self.sync = sync
        self.workingsetDetection = workingsetDetection
        frames = FrameTable(frameCount: frameCount)
        arena = try _UnsafeFrameArena(frameCount: frameCount)
        pool = FramePool(frameCount: frameCount)
        lru = LRUVec(frames: frames)
        watermarks = Watermarks(frames: frameCount)
    }

    /// Takes a folio of `1 << order` frames with one reference (the caller's), no flags, charged
    /// to `group`. When no frame is free the calling thread reclaims (direct reclaim); nil only
    /// when nothing can be reclaimed: every page is pinned or swap is full.
    /// The caller must hold no folio, page-table or cluster lock.
    func allocateFolio(order: Int, group: Int = 0) -> Folio? {
        var head = pool.allocate(order: order)
        if head == nil {
            stats.count(.directReclaims)
            var idle = 0
            while head == nil && idle < 3 {
                wakeBackgroundReclaim()
                let freed = shrink(target: max(32, 2 << order))
                head = pool.allocate(order: order)
                idle = freed == 0 ? idle + 1 : 0
            }
            guard head != nil else { return nil }
        }
        if pool.freeFrames < watermarks.low { wakeBackgroundReclaim() }
        let f = Folio(frame: head!)
        frames.initializeMeta(f, order: order, group: group)
        frames.initializeRefcount(f, 1)
        return f
    }

    /// Returns a folio whose last reference is gone to the pool. It must be out of the swap cache,
    /// unlocked and not under writeback.
    func freeFolio(_ f: Folio) {
        let flags = frames.flags(f)
        precondition(!flags.contains(.swapcache) && !flags.contains(.locked) && !flags.contains(.writeback),
                     "freeing \(f) in state \(flags)")
        assert(frames.refcount(f) == 0)
        if flags.contains(.lru) { lru.remove(f) }
        frames.setOwner(f, 0)
        frames.clearFlags(f, FolioFlags(rawValue: .max))
        pool.free(f.frame, order: frames.order(f))
    }

    /// Drops a reference and frees the folio if it was the last.
    @inline(__always)
    func putFolio(_ f: Folio, _ n: UInt32 = 1) {
        if frames.put(f, n) { freeFolio(f) }
    }

    /// The bytes of a folio (all its pages).
    @inline(__always)
    func bytes(_ f: Folio) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: arena.address(f.frame), count: frames.pageCount(f) << SwapPage.shift)
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

    /// min is 1/128 of the budget (at least 4 frames), low and high 5/4 and 3/2 of min, as the
    /// kernel spaces them.
    init(frames: Int) {
        min = Swift.max(4, frames / 128)
        low = min + min / 4
        high = min + min / 2
    }
}
