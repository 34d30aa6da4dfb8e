/// How readahead reads (`readAhead(_:)` decides what; this reads it): folios inserted into the
/// swap cache by the first reader of each entry, consecutive slots in one request, every request
/// of a call submitted to the device together.
extension Region {
    /// How `readIntoCache` reads.
    enum ReadMode {
        /// The first page is a fault's own: its run is read and waited for, nothing more.
        case demand
        /// A window: submits every run and returns; runs not done at once go to
        /// `AsyncReadCompleter`. Never reclaims to make room (see the scan).
        case async
        /// The application's batch (`prefetch`): as `.async`, but its frames are taken like any
        /// swap-in's, reclaiming other pages when none is free, up to half of what its group may
        /// hold.
        case prefetch
        /// An async pin's read (`Region+AsyncPin.swift`): as `.demand`, the first page is the
        /// pin's own and only its run is read, but nothing is waited for: the run is submitted
        /// and, unless done at once, left to `AsyncReadCompleter`, while the pinning task
        /// suspends on the folio. The first page's frame is taken whatever the watermarks, but
        /// never by reclaiming on the task's thread: with no frame free, nothing is read and
        /// `DemandRun.waitsForFrames` says so (`FrameAllocator.allocateFolioOrQueue`); the rest
        /// stop at the min watermark, as readahead does.
        case suspending
    }

    /// Inserts a folio for every swapped page of `pages` whose entry nobody has cached, reads
    /// the winners in runs of consecutive slots, and leaves them in the cache marked as read
    /// ahead, locked until their read completes. The folio of page `trigger`, if this call
    /// reads it, is marked as the window's trigger. Returns the pages read or submitted.
    ///
    /// `pages` are taken in the order given: a run is pages whose slots follow one another in
    /// that order (a window's pages in region order; a prefetch's sorted by slot).
    ///
    /// With `order` > 0 (a large-folio region), `pages` are the first pages of blocks: each
    /// block whose pages are a clean aligned run (`largeSwapRun`) gets one folio of that order,
    /// and the others are skipped; counts stay in pages.
    func readIntoCache(_ pages: some Sequence<Int>, mode: ReadMode, trigger: Int?, order: Int = 0) throws(SwapError) -> Int {
        var unused = DemandRun(end: 0)
        return try readIntoCache(pages, mode: mode, trigger: trigger, order: order, demandRun: &unused)
    }

    /// What became of the first page of a `.demand` or `.suspending` read.
    struct DemandRun {
        /// The first page not taken into the run.
        var end: Int
        /// `.suspending`: no frame was free for the first page, and none was reclaimed for it
        /// on this thread (`FrameAllocator.allocateFolioOrQueue`): its task waits for frames.
        var waitsForFrames = false
    }

    /// With `.demand`, the first page is the fault's own: not marked, not counted as read
    /// ahead, put on the LRU as a swap-in is (active if its shadow says so), and only its run
    /// of consecutive slots is read; `demandRun.end` is set to the first page not taken.
    func readIntoCache(
        _ pages: some Sequence<Int>, mode: ReadMode, trigger: Int?, order: Int = 0,
        demandRun: inout DemandRun
    ) throws(SwapError) -> Int {
        let demand = mode == .demand || mode == .suspending
        let waits = mode == .demand
        // Pages per folio read.
        let nr = 1 << order
        let frames = engine.frames
        var triggerFolio: Folio?
        var submittedAsync = 0
        // Pages an async window may still take in its group (see the scan).
        var groupRoom = mode == .async ? engine.groups[group].memoryRoom() / 2 : 0
        // Pages a prefetch may still take: half of what its group may hold, so that the other
        // half stays reclaimable for the allocations of the batch (and everyone else's).
        var batchRoom = mode == .prefetch ? min(engine.groups[group].memoryCapacity(), frames.frameCount) / 2 : 0
        var run: [RunFolio] = []
        var read = 0
        var failure: SwapError?
        // Every run of the call, submitted together at the end: one hand-off to the device's
        // I/O engine for all of them (pages of a region rarely sit in consecutive slots: a
        // window of 32 pages is often 32 runs).
        var runs: [[RunFolio]] = []
        // The fault's own folio, when `demand` and this call inserted it.
        var demandFolio: Folio?
        // Pages of the new folios this call holds until its reads complete (`FolioFlags.arriving`):
        // its own allocations must not wait for them.
        var arrivingHeld = 0
        func flush() {
            guard !run.isEmpty else { return }
            runs.append(run)
            run.removeAll(keepingCapacity: true)
        }
        var demandRead = false
        // An uptodate folio of the window goes on the LRU: marked as read ahead, or, the
        // fault's own, as any swap-in; either way its refault is checked against the shadow its
        // insert replaced.
        func settle(_ f: Folio, shadow: UInt64?) {
            if demandFolio == f {
                demandRead = true
                engine.groups[group].count(.pswpin)
                let activate = shadow.map { engine.workingset.refault(f, shadow: $0) } ?? false
                engine.allocator.lru(f).add(f, to: activate ? .active : .inactive)
            } else {
                engine.cache.settleReadahead(f, trigger: f == triggerFolio, prefetched: mode == .prefetch, shadow: shadow)
            }
        }
        func finish(_ run: [RunFolio]) {
            for r in run {
                if frames.flags(r.folio).contains(.uptodate) { settle(r.folio, shadow: r.shadow) }
                frames.unlock(r.folio)
                engine.allocator.putFolio(r.folio)
            }
        }

        var first = true
        scan: for page in pages {
            defer { first = false }
            let entry: SwapEntry
            if order == 0 {
                let p = pte(page)
                guard p.isSwap else {
                    if demand { break scan }
                    flush()
                    continue
                }
                entry = p.swapEntry
            } else {
                // A block not out whole as one run (partly mapped, split) is left to its
                // faults, page by page.
                guard let e = largeSwapRun(at: page) else {
                    flush()
                    continue
                }
                entry = e
            }
            let breaks =
                run.count == IORequestTable.maxVectors
                || run.last.map { $0.entry.type != entry.type || $0.entry.offset + nr != entry.offset } ?? false
            if demand && breaks { break scan }
            if breaks { flush() }
            switch mode {
            case .suspending where first:
                // The pin's own page: as a fault's, whatever the watermarks.
                break
            case .demand, .async, .suspending:
                // Readahead never waits for memory: it stops at the min watermark, leaving the
                // rest to faults (the watermarks keep a window's worth above it for readahead,
                // and the allocation wakes the background reclaimer below the low one).
                guard engine.allocator.pool.freeFrames >= engine.allocator.watermarks.min + nr else { break scan }
                // Nor does a window read without waiting reclaim its group's pages to make
                // room, or take more than half the room left: its folios stay locked, off the
                // LRU, until the read completes, and a window holding the group's last frames
                // so would leave the group's faults nothing to reclaim (they then wait for it:
                // `allocateFolio`).
                if mode == .async {
                    guard groupRoom >= nr else { break scan }
                    groupRoom -= nr
                }
            case .prefetch:
                // The batch's folios are locked and off the LRU until their reads complete, all
                // submitted after the last is allocated: reclaim for the rest never takes them.
                guard batchRoom >= nr else { break scan }
                batchRoom -= nr
            }
            let f: Folio
            let replaced: UInt64?
            let outcome: SwapCacheAllocation
            do {
                // A large folio also needs a free run of frames: with none (fragmented free
                // memory above the watermark), stop rather than reclaim to make one.
                outcome = try engine.cache.swapCacheAllocFolio(
                    entry, order: order, group: group, placement: placement(page),
                    claim: { claimEntry($0, page: page, entry: entry, pages: nr) },
                    // The rest of an async pin's run never reclaims (the watermark check
                    // above), nor does its own page on the task's thread: it queues for frames.
                    mayReclaim: order == 0 && mode != .suspending,
                    // Only a fault's own page waits for other threads' reads to free frames:
                    // a page read ahead holding its batch's folios locked stops instead.
                    ownArriving: demand && first ? arrivingHeld : Int.max,
                    queuesForFrames: mode == .suspending && first)
            } catch {
                // The pin's own page: its error is the pin's.
                if mode == .suspending && first { failure = error }
                // No memory for more (a group limit, a full budget): read what we have and stop.
                break scan
            }
            switch outcome {
            case .allocated(let new, let shadow):
                f = new
                replaced = shadow
                arrivingHeld += nr
                if demand && first { demandFolio = new }
                if page == trigger { triggerFolio = new }
            case .cached(let other):
                // Already in memory (or being read by someone else): nothing to do.
                engine.allocator.putFolio(other)
                flush()
                if demand { break scan }
                continue
            case .noEntry, .fallback:
                flush()
                if demand { break scan }
                continue
            case .noMemory:
                // No frame without reclaiming: read what we have and stop. An async pin's own
                // page: its task waits for the background reclaimer.
                if mode == .suspending && first { demandRun.waitsForFrames = true }
                break scan
            }
            if frames.flags(f).contains(.uptodate) {
                // The legacy protocol reads before it inserts: nothing left to do but mark it.
                settle(f, shadow: replaced)
                frames.unlock(f)
                engine.allocator.putFolio(f)
                read += nr
                continue
            }
            run.append(RunFolio(folio: f, entry: entry, shadow: replaced))
            demandRun.end = page + 1
        }
        flush()
        if mode == .async && !runs.isEmpty { engine.stats.count(.readaheadAsyncWindows) }
        for (done, submitted) in zip(runs, runs.isEmpty ? [] : engine.cache.submitReadRuns(runs)) {
            switch submitted {
            case .failure(let error):
                failure = failure ?? error
                finish(done)
            case .success(let submitted):
                if !waits && !submitted.device.io.isDone(submitted.ticket) {
                    // Finished by the completer; the folios stay locked until then.
                    let t = triggerFolio.flatMap { t in done.contains { $0.folio == t } ? t : nil }
                    let d = demandFolio.flatMap { d in done.contains { $0.folio == d } ? d : nil }
                    engine.cache.asyncReads.enqueue(
                        .init(
                            cache: engine.cache, run: done, read: submitted, trigger: t, prefetched: mode == .prefetch,
                            demand: d))
                    submittedAsync += done.count * nr
                    continue
                }
                do {
                    try engine.cache.finishReadRun(done, submitted)
                    read += done.count * nr
                } catch {
                    failure = failure ?? error
                }
                finish(done)
            }
        }
        if let failure, read == 0 && submittedAsync == 0 { throw failure }
        // The fault's own page was counted with its run; it was not read ahead.
        if demandRead { read -= 1 }
        engine.stats.count(.readaheadPages, read)
        return read + submittedAsync
    }
}
