/// The engine's shared state: what the kernel keeps in `mm/` globals. Devices and their swap
/// tables, the frame arena and frame table, the free frame pool, the swap-in protocol and the
/// counters. The swap cache (`SwapEngine+SwapCache.swift`, kernel `swap_state.c`) and the
/// swap-in loop (`SwapEngine+SwapIn.swift`) are written as extensions on it.
final class SwapEngine: Sendable {
    let devices: SwapDeviceSet
    let frames: FrameTable
    let arena: _UnsafeFrameArena
    let pool: FramePool
    let sync: SwapInSync
    let stats = SwapStatistics()

    init(frameCount: Int, devices: SwapDeviceSet, sync: SwapInSync) throws(SwapError) {
        self.devices = devices
        self.sync = sync
        frames = FrameTable(frameCount: frameCount)
        arena = try _UnsafeFrameArena(frameCount: frameCount)
        pool = FramePool(frameCount: frameCount)
    }

    /// Takes a folio of `1 << order` frames with one reference (the caller's), no flags, charged
    /// to `group`; nil when no frames are free.
    @inline(__always)
    func allocateFolio(order: Int, group: Int = 0) -> Folio? {
        guard let head = pool.allocate(order: order) else { return nil }
        let f = Folio(frame: head)
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
}
