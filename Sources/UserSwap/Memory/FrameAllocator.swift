import Glibc
import Synchronization

/// The frame allocator (kernel: the page allocator with its memcg charge, `mm/page_alloc.c`):
/// the RAM budget as frames — the arena that holds their bytes, the frame table, the buddy pool,
/// the windows of transparent regions — and the watermarks that wake the background reclaimer.
/// It allocates folios charged to a memory group and frees them.
///
/// When no frame is free, or a group is at its limit, it reclaims through one seam,
/// `DirectReclaim`, which the reclaimer implements: the one call that goes up the layers (the
/// kernel's `__alloc_pages_direct_reclaim`).
final class FrameAllocator: Sendable {
    let frames: FrameTable
    let arena: _UnsafeFrameArena
    let pool: FramePool
    /// The memory of transparent regions (see `FrameWindow`).
    let windows = FrameWindowTable()
    /// Pages swap-ins into windows read into (see `fill`, `readTarget`): 1 MiB at most, resident
    /// only once lent; nil if the system would not map them (swap-ins then write through the
    /// engine's view).
    let bounce = BouncePages(count: 256)
    let watermarks: Watermarks
    /// Memory groups by id; group 0 is the root. Every folio is charged to one.
    let groups: MemoryGroupTable
    /// Tasks waiting for free frames (`allocateFolioOrQueue`), resumed by the background
    /// reclaimer.
    let frameWaiters = FrameWaitQueue()
    let stats: SwapStatistics
    /// The reclaimer behind `DirectReclaim`, set once by the engine that composes the two,
    /// before any allocation; read without a lock.
    private let reclaimer = AtomicLazyReference<DirectReclaimLink>()

    /// An allocator of `frameCount` frames; `readaheadReserve` frames are kept above the
    /// watermarks for readahead windows (see `Watermarks`).
    init(frameCount: Int, readaheadReserve: Int, stats: SwapStatistics) throws(SwapError) {
        self.stats = stats
        frames = FrameTable(frameCount: frameCount)
        arena = try _UnsafeFrameArena(frameCount: frameCount)
        pool = FramePool(frameCount: frameCount)
        groups = MemoryGroupTable(frames: frames)
        watermarks = Watermarks(frames: frameCount, readaheadReserve: readaheadReserve)
    }

    /// Passes of reclaim in a row that may free nothing before an allocation gives up (kernel:
    /// `MAX_RECLAIM_RETRIES` in `should_reclaim_retry`). A pass can free nothing while the
    /// budget holds pages that could go: racing reclaimers hold them isolated, racing
    /// allocations take what they free, racing accesses reference them again. Three passes
    /// were too few with four threads in an 88-frame budget.
    static let reclaimRetries = 16

    /// Connects the reclaimer that frees frames when none is free (the seam).
    func connect(_ reclaim: any DirectReclaim) {
        let link = DirectReclaimLink(reclaim)
        require(reclaimer.storeIfNil(link) === link, "the frame allocator has its reclaimer already")
    }

    /// The reclaimer, while it exists.
    @inline(__always)
    var reclaim: (any DirectReclaim)? { reclaimer.load()?.reclaim }

    /// Asks the background reclaimer to run (a no-op before it starts).
    func wakeBackgroundReclaim() {
        reclaim?.wakeBackgroundReclaim()
    }

    /// Takes a folio of `1 << order` frames with one reference (the caller's), no flags, charged
    /// to `group`. A group at its memory limit reclaims its own pages first; when no frame is
    /// free the calling thread reclaims (direct reclaim). Throws when nothing can be reclaimed:
    /// `.swapFull` when every slot of every device is in use, else `.outOfMemory` (every page
    /// pinned, a swap limit reached).
    /// `mayReclaim: false` (readahead of large folios, which never waits for memory) throws
    /// `.outOfMemory` at once instead of reclaiming: at the group's limit, or when the pool has
    /// no free run of `1 << order` frames.
    /// The caller must hold no folio, page-table or cluster lock.
    func allocateFolio(order: Int, group: Int = 0, mayReclaim: Bool = true, ownArriving: Int = 0) throws(SwapError) -> Folio {
        let nr = 1 << order
        let owner = groups[group]
        if !mayReclaim {
            if let f = allocateFolioWithoutReclaim(order: order, group: group) { return f }
            if let limited = owner.tryChargeMemory(nr) {
                throw SwapError(.outOfMemory, "memory group \(limited.name) is at its limit; not reclaiming for readahead")
            }
            owner.unchargeMemory(nr)
            throw SwapError(.outOfMemory, "no free run of \(nr) frames; not reclaiming for readahead")
        }
        try chargeReclaiming(owner, nr, ownArriving: ownArriving)
        var head = pool.allocate(order: order)
        if head == nil {
            stats.count(.directReclaims)
            let seenBefore = ReclaimTally(stats)
            var idle = 0
            var waiting = BoundedWait.reclaim
            while head == nil && idle < Self.reclaimRetries {
                wakeBackgroundReclaim()
                let freed = reclaim?.reclaimForAllocation(target: max(32, 2 * nr)) ?? 0
                head = pool.allocate(order: order)
                if head == nil && freed == 0 && (reclaim?.othersMayFree(besides: ownArriving) ?? false) && waiting.pause() {
                    // Another reclaimer holds the candidates; its frees are ours to take. Or
                    // readahead reads in flight hold them: reclaimable once complete.
                    head = pool.allocate(order: order)
                    continue
                }
                idle = freed == 0 ? idle + 1 : 0
                // A pass that freed nothing may have met candidates that racing threads held
                // for a moment (isolated, locked, referenced again): let them move on.
                if head == nil && freed == 0 { sched_yield() }
            }
            // Racing reclaimers may have freed frames after this thread's last look (kernel:
            // the last free-list attempt of `__alloc_pages_may_oom`).
            if head == nil { head = pool.allocate(order: order) }
            guard head != nil else {
                owner.unchargeMemory(nr)
                let seen = ReclaimTally(stats).since(seenBefore)
                throw noFrameError(
                    passes: "\(Self.reclaimRetries) passes of reclaim in a row freed nothing; meanwhile, in every thread: \(seen)")
            }
        }
        return prepare(head!, order: order, owner: owner)
    }

    /// Charges `nr` frames to `owner`; a group at its memory limit reclaims its own pages first,
    /// on the calling thread (kernel: `try_charge_memcg` → `try_to_free_mem_cgroup_pages`).
    /// Throws when nothing in the group can be reclaimed. `ownArriving` as in `allocateFolio`.
    private func chargeReclaiming(_ owner: MemoryGroup, _ nr: Int, ownArriving: Int = 0) throws(SwapError) {
        var idle = 0
        var waiting = BoundedWait.reclaim
        while let limited = owner.tryChargeMemory(nr) {
            limited.count(.limitReclaims)
            if (reclaim?.reclaimForGroup(limited, target: max(32, 2 * nr)) ?? 0) > 0 {
                // Racing allocations may take what we freed: try again, as direct reclaim does.
                idle = 0
                continue
            }
            if (reclaim?.othersMayFree(besides: ownArriving) ?? false) && waiting.pause() {
                // Another reclaimer holds the group's candidates off the lists; its frees
                // uncharge the group. Or readahead windows are being read: their folios go on
                // the lists, reclaimable, when the reads complete.
                continue
            }
            idle += 1
            if idle < Self.reclaimRetries {
                // As in `allocateFolio`: let racing threads move on before the next pass.
                sched_yield()
                continue
            }
            throw limitReclaimFailure(limited, "is at its limit of \(limited.memoryLimit ?? 0) bytes")
        }
    }

    /// Why reclaim could not bring `group` under its memory limit: a write-back failure, full
    /// swap, or nothing it may swap out (pages pinned, a swap limit reached). `state` says where
    /// the group stands, after its name ("is at its limit of 4096 bytes").
    func limitReclaimFailure(_ group: MemoryGroup, _ state: String) -> SwapError {
        if let failure = reclaim?.takeWriteFailure() {
            // Its pages could not be written: the device's error says why.
            return failure.adding(context: "memory group \(group.name) \(state), and swapping out failed: ")
        }
        if let full = reclaim?.swapExhausted {
            return SwapError(
                .swapFull,
                "memory group \(group.name) \(state) and swap is full (all \(full.slots) slots of \(full.devices) device(s) in use): nothing in it can be swapped out; add swap or raise the limit"
            )
        }
        return SwapError(
            .outOfMemory,
            "memory group \(group.name) \(state) and nothing in it can be swapped out (pages pinned, or swap full): release pins, add swap or raise a swap limit, or raise the memory limit"
        )
    }

    /// `allocateFolio` for a task that must not reclaim on its thread (an async pin on a
    /// cooperative thread): nil when no frame is free, having woken the background reclaimer;
    /// the caller then waits in `frameWaiters` (which it joins before calling this whenever
    /// others wait, so that the frames go to the oldest first). Without a background reclaimer
    /// (`backgroundReclaim: false`) nobody would resume it: it reclaims as `allocateFolio`
    /// does. A group at its memory limit reclaims its own pages first, on the caller's thread,
    /// as in `allocateFolio`.
    func allocateFolioOrQueue(order: Int, group: Int = 0) throws(SwapError) -> Folio? {
        guard reclaim?.hasBackgroundReclaim ?? false else { return try allocateFolio(order: order, group: group) }
        let nr = 1 << order
        let owner = groups[group]
        try chargeReclaiming(owner, nr)
        guard let head = pool.allocate(order: order) else {
            owner.unchargeMemory(nr)
            stats.count(.allocationWaits)
            wakeBackgroundReclaim()
            return nil
        }
        return prepare(head, order: order, owner: owner)
    }

    /// Whether a task that cannot free memory itself waited in vain: no frame came free
    /// through a whole pass of the background reclaimer, and none can come without it (no
    /// reclaimer holds candidates, no read is in flight). After a few such waits it fails with
    /// `allocationFailure()`.
    func allocationWaitWasFruitless() -> Bool {
        pool.freeFrames == 0 && !(reclaim?.othersMayFree(besides: 0) ?? false)
    }

    /// The error an allocation that cannot reclaim throws when its waits were fruitless: built
    /// only then, since it counts where the frames are (`census()`) and takes the last write
    /// failure.
    func allocationFailure() -> SwapError { noFrameError() }

    /// Why no frame could be had: a write-back failure, full swap, or everything pinned.
    /// `passes` says what the allocation's own reclaim saw, for the report.
    private func noFrameError(passes: String? = nil) -> SwapError {
        if let failure = reclaim?.takeWriteFailure() {
            return failure.adding(context: "no free frame, and swapping out failed: ")
        }
        if let full = reclaim?.swapExhausted {
            return SwapError(
                .swapFull,
                "no free frame: the RAM budget of \(frames.frameCount << SwapPage.shift) bytes is full and so is swap (all \(full.slots) slots of \(full.devices) device(s) in use); add swap or raise --memory"
            )
        }
        // Where the frames are, as the kernel's OOM report shows them: one pass over the frame
        // table, on this failure path only.
        return SwapError(
            .outOfMemory,
            "no free frame: the RAM budget of \(frames.frameCount << SwapPage.shift) bytes is full and nothing can be swapped out (pages pinned, or swap full) [\(census())]\(passes.map { "; \($0)" } ?? "")",
            remedy: .moreMemoryOrSwap)
    }

    /// `allocateFolio` from what is free now: nil, with no error built and nothing reclaimed,
    /// when `group` is at its limit or the pool has no free run of `1 << order` frames (the
    /// background reclaimer is woken then). Allocates no memory and takes no lock but the
    /// pool's, which no one holds across an allocation: what a fault resolved in a signal
    /// handler may call (`Region.pinInSignal`).
    func allocateFolioWithoutReclaim(order: Int, group: Int = 0) -> Folio? {
        let nr = 1 << order
        let owner = groups[group]
        if owner.tryChargeMemory(nr) != nil { return nil }
        guard let head = pool.allocate(order: order) else {
            owner.unchargeMemory(nr)
            wakeBackgroundReclaim()
            return nil
        }
        return prepare(head, order: order, owner: owner)
    }

    /// A new folio at `head`, charged to `owner` already: its metadata, the caller's reference.
    private func prepare(_ head: UInt32, order: Int, owner: MemoryGroup) -> Folio {
        if pool.freeFrames < watermarks.low { wakeBackgroundReclaim() }
        let f = Folio(frame: head)
        frames.initializeMeta(f, order: order, group: owner.id)
        frames.initializeRefcount(f, 1)
        startUses(f, group: owner)
        return f
    }

    /// Returns a folio whose last reference is gone to the pool and uncharges its group. It must
    /// be out of the swap cache, unlocked and not under writeback.
    func freeFolio(_ f: Folio) {
        let flags = frames.flags(f)
        require(
            !flags.contains(.swapcache) && !flags.contains(.locked) && !flags.contains(.writeback),
            "freeing \(f) in state \(flags)")
        assert(frames.refcount(f) == 0)
        let group = groups[frames.group(f)]
        if flags.contains(.lru) { group.lru.remove(f) }
        if flags.contains(.arriving) { frames.endArrival(f) }
        if flags.contains(.readahead) { stats.count(.readaheadWasted, 1 << frames.order(f)) }
        frames.setOwner(f, .none)
        let placement = frames.placement(f)
        if !placement.isArena {
            let window = windows[placement.windowSlot]
            window.release(placement.page, frame: f.frame)
            frames.setPlacement(f, .arena)
            window.folioFreed()
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

    /// Fills the folio's bytes with what `read` writes into the buffer it gets (as big as the
    /// folio), returning what `read` returns: a swap-in's read. A folio in a window is read into
    /// a bounce page and stored into its memfd, leaving the engine's view unmapped
    /// (`FrameWindow.store`); through the view when no bounce page is free. Signal-safe when
    /// `read` is.
    @inline(__always)
    func fill<E: Error>(_ f: Folio, read: (UnsafeMutableRawBufferPointer) throws(E) -> Bool) throws(E) -> Bool {
        let placement = frames.placement(f)
        if !placement.isArena, let bounce,
            let result = try bounce.withPage({ (buffer) throws(E) -> Bool in
                let result = try read(buffer)
                windows[placement.windowSlot].store(placement.page, from: UnsafeRawBufferPointer(buffer))
                return result
            })
        {
            return result
        }
        return try read(bytes(f))
    }

    /// Where a read of the folio's data lands, for a read whose buffer outlives the call (a
    /// read run): the folio's bytes, or, for a folio in a window, a lent bounce page (its index
    /// in `bounce`), which `settleRead` stores into the memfd and gives back.
    func readTarget(_ f: Folio) -> (buffer: UnsafeMutableRawBufferPointer, bounce: Int32) {
        guard !frames.placement(f).isArena, let bounce, let i = bounce.borrow() else { return (bytes(f), -1) }
        return (bounce.page(i), Int32(i))
    }

    /// Ends a read into `readTarget(f)`: stores a bounce page into the folio's memfd if the read
    /// succeeded, and gives it back.
    func settleRead(_ f: Folio, bounce index: Int32, succeeded: Bool) {
        guard index >= 0, let bounce else { return }
        if succeeded {
            let placement = frames.placement(f)
            windows[placement.windowSlot].store(placement.page, from: UnsafeRawBufferPointer(bounce.page(Int(index))))
        }
        bounce.giveBack(Int(index))
    }

    /// Places a new folio (one page, nobody else sees it yet) in its window; its bytes are
    /// written only after it claims the window page (see `FrameWindow.claim`).
    func place(_ f: Folio, _ placement: FramePlacement) {
        guard !placement.isArena else { return }
        require(frames.order(f) == 0, "window placement is per page")
        // Relaxed: counted before anyone else sees the folio; the free releases
        windows[placement.windowSlot].liveFolios.add(1, ordering: .relaxed)
        frames.setPlacement(f, placement)
    }

    /// Makes the placed folio `f` the owner of its window page, before its data is written.
    @inline(__always)
    func claimPlacement(_ f: Folio) {
        let placement = frames.placement(f)
        if !placement.isArena { windows[placement.windowSlot].claim(placement.page, frame: f.frame) }
    }
}
