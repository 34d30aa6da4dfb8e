import Synchronization

/// Per-region readahead state (kernel: the VMA's `swap_readahead_info` and the global
/// `swapin_readahead_hits`): where the last missing fault was, the window used then, and how
/// many pages read ahead have been used since.
final class ReadaheadState: Sendable {
    /// The largest window, in pages: 1 MiB, the transfer at which this kind of disk reaches its
    /// sequential bandwidth (`bench device-limits`). The kernel's VMA readahead stops at 2^5
    /// pages, but its file readahead grows to the device's `ra_pages`; a sequential stream of
    /// swap needs the same, since at 32 pages the per-window wait, not the disk, is the limit.
    static let maxWindow = 256

    /// How far ahead of the window in use a trigger may read, in windows: the use of a
    /// window's trigger page submits one window, from the first page after it that is neither
    /// in memory nor being read, ending at most this many windows past the current one (the
    /// kernel's file readahead keeps one in flight). Since each trigger submits one window,
    /// a larger lead lets a stream catch up after a truncated window but does not build up a
    /// deeper pipeline. A deeper one (two windows in flight per stream) does not make `bench seq`
    /// faster, since a 4 KiB stream is bound by the disk's cost per page segment (see
    /// docs/PERFORMANCE.md, *Device limits*), and its top-ups split large-folio windows into
    /// smaller reads.
    static let asyncLead = 1

    /// Last faulting page << 16 | last window. Relaxed: a heuristic; racing faults of one region
    /// just blend their guesses.
    let last = Atomic<UInt64>(0)
    let hits = Atomic<Int>(0)
    let advice = Atomic<UInt8>(Region.Advice.normal.rawValue)

    /// Counts `pages` read ahead and used (a large folio mapped whole counts all its pages).
    func hit(_ pages: Int = 1) { hits.add(pages, ordering: .relaxed) }

    /// The window for a missing fault at `page` (kernel: `__swapin_nr_pages`): hits + 2 rounded
    /// up to a power of two; with no hits, 2 only if the fault is next to the previous one, else
    /// 1 (no readahead); capped; never shrinking faster than half the previous window. `stride`
    /// is the distance between neighbouring faults: a large-folio region faults once per block.
    func window(for page: Int, stride: Int = 1) -> Int {
        switch Region.Advice(rawValue: advice.load(ordering: .relaxed)) {
        case .sequential: return Self.maxWindow
        case .random: return 1
        default: break
        }
        let previous = last.load(ordering: .relaxed)
        let previousPage = Int(previous >> 16), previousWindow = Int(previous & 0xffff)
        let used = hits.exchange(0, ordering: .relaxed)
        var pages = used + 2
        if pages == 2 {
            if page != previousPage + stride && page != previousPage - stride { pages = 1 }
        } else {
            pages = 1 << (Int.bitWidth - (pages - 1).leadingZeroBitCount)
        }
        pages = min(pages, Self.maxWindow)
        pages = max(pages, previousWindow / 2)
        last.store(UInt64(page) << 16 | UInt64(pages), ordering: .relaxed)
        return pages
    }

    /// The next window of a stream whose trigger page `page` was just used (kernel:
    /// `get_next_ra_size`): four times the last window while it is small, then twice, capped;
    /// 0 for no readahead.
    func asyncWindow(at page: Int) -> Int {
        switch Region.Advice(rawValue: advice.load(ordering: .relaxed)) {
        case .sequential:
            last.store(UInt64(page) << 16 | UInt64(Self.maxWindow), ordering: .relaxed)
            return Self.maxWindow
        case .random: return 0
        default: break
        }
        let previous = Int(last.load(ordering: .relaxed) & 0xffff)
        let pages = Swift.min(Self.maxWindow, Swift.max(4, previous < Self.maxWindow / 16 ? 4 * previous : 2 * previous))
        last.store(UInt64(page) << 16 | UInt64(pages), ordering: .relaxed)
        return pages
    }
}

/// Readahead (kernel: `swap_vma_readahead`): after a fault that had to read, the swapped-out
/// pages that follow it in the region are brought into the swap cache too, through the same
/// insert as any swap-in — only the winner of each entry reads, racers wait on its folio lock —
/// with consecutive slots read in one vectored call. A page read ahead is marked; its first use
/// counts a hit, which widens the next window; random access collapses the window to nothing.
///
/// Asynchronous, as the kernel's file readahead (`PG_readahead`, `async_size`): the first page
/// read ahead in a window is its *trigger*. Its first use submits the next window, from the
/// first page after it that is neither in memory nor being read, and returns without waiting:
/// the window's folios sit in the cache locked while their read is in flight (a fault on one
/// waits on its lock, as on any read), and `AsyncReadCompleter` finishes them. So a stream
/// keeps the next window in flight while it uses this one, and the device is never idle
/// waiting for the application. Only the faulting page's own run is read synchronously.
/// A failed async read leaves the pages on the device and out of the cache (`.error`): a fault
/// waiting on one gets the typed error, a later fault reads again. Under the legacy bypass
/// protocols (`legacy-wq`, `legacy-bypass`) a page is read before it is inserted, so their
/// windows are read on the spot, page by page. An async
/// window never reclaims its group's pages to make room, and takes at most half the room left
/// (it stops there, as at the min watermark); its runs hold the engine, so a region or space released meanwhile stays valid
/// until they complete.
///
/// In a large-folio region the unit is the block: a block fault that read (`swapInLarge`) reads
/// ahead the whole blocks after it whose pages are one clean aligned run of slots, each as one
/// folio of the region's order, consecutive blocks in one request; the window is the one the
/// 4 KiB logic picks (faults a block apart count as neighbours), rounded up to whole blocks, and
/// its first block is the trigger. A fault on a block read ahead maps the whole folio at once.
/// A block that is not one run (partly mapped, split on swap-out) is skipped: its faults bring
/// it in page by page.
extension Region {
    /// What an application expects of its access pattern (in the spirit of `madvise`).
    public enum Advice: UInt8, Sendable {
        /// Adaptive readahead (the default).
        case normal
        /// Read ahead the largest window on every miss.
        case sequential
        /// Never read ahead.
        case random
        /// The pages will be needed soon: read them in now (`MADV_WILLNEED`).
        case willNeed
        /// The pages will not be needed soon: swap them out now, keeping their data
        /// (`MADV_PAGEOUT`; to drop data, use `discard(pages:)`).
        case dontNeed
    }

    /// Applies `advice`: `.normal`, `.sequential` and `.random` set the region's readahead
    /// policy; `.willNeed` and `.dontNeed` act on `pages` (the whole region when nil).
    public func advise(_ advice: Advice, pages: Range<Int>? = nil) throws(SwapError) {
        let range = pages ?? 0..<pageCount
        switch advice {
        case .normal, .sequential, .random: readahead.advice.store(advice.rawValue, ordering: .relaxed)
        case .willNeed: try prefetch(pages: range)
        case .dontNeed: try swapOut(pages: range)
        }
    }

    /// Brings `pages` into memory ahead of use (in the spirit of `MADV_WILLNEED`): each swapped
    /// page is read into the swap cache, consecutive slots in one call. Returns the pages read.
    /// Pages are not mapped; their first access finds them in the cache.
    @discardableResult
    public func prefetch(pages: Range<Int>) throws(SwapError) -> Int {
        guard !pages.isEmpty else { return 0 }
        try checkPage(pages.lowerBound)
        try checkPage(pages.upperBound - 1)
        return try readIntoCache(pages)
    }

    /// Reads ahead after a missing fault at `page`, best effort, without waiting: errors are
    /// left for the fault that will need the page.
    func readAhead(after page: Int) {
        let window = readahead.window(for: page)
        guard window > 1 else { return }
        let end = min(pageCount, page + window)
        _ = try? readIntoCache((page + 1)..<end, mode: .async, trigger: page + 1)
    }

    /// After the first use of the trigger page `page` of a window: submits the next window
    /// without waiting for it (see the extension's comment). Best effort.
    func readAheadAsync(after page: Int) {
        if folioOrder > 0 { return readAheadLargeAsync(after: page) }
        let window = readahead.asyncWindow(at: page)
        guard window > 0 else { return }
        // Past the pages already in memory or being read (the rest of this window and the
        // windows ahead of it), up to `asyncLead` windows ahead of this one.
        var start = page + 1
        let limit = min(pageCount, page + (ReadaheadState.asyncLead + 1) * window)
        while start < limit && !needsRead(start) { start += 1 }
        guard start < limit else { return }
        let end = min(limit, start + window)
        _ = try? readIntoCache(start..<end, mode: .async, trigger: start)
    }

    /// Large folios: after a block fault at `base` that read (a miss), reads ahead the whole
    /// blocks that follow, each as one folio of the region's order, best effort, without
    /// waiting. The window is the 4 KiB logic's (faults one block apart count as neighbours),
    /// its pages after the fault rounded up to whole blocks; the first block is the trigger.
    func readAheadLarge(after base: Int) {
        let nr = 1 << folioOrder
        let window = readahead.window(for: base, stride: nr)
        guard window > 1 else { return }
        let start = base + nr
        let end = min(pageCount, start + Self.wholeBlocks(window - 1, nr))
        guard start < end else { return }
        _ = try? readIntoCache(start..<end, mode: .async, trigger: start, order: folioOrder)
    }

    /// Large folios: `readAheadAsync(after:)`, in whole blocks from the block after `page`'s.
    private func readAheadLargeAsync(after page: Int) {
        let nr = 1 << folioOrder
        let base = folioBase(page, order: folioOrder)
        let pages = readahead.asyncWindow(at: base)
        guard pages > 0 else { return }
        let window = Self.wholeBlocks(pages, nr)
        var start = base + nr
        let limit = min(pageCount, base + nr + ReadaheadState.asyncLead * window + window)
        while start < limit && !needsRead(start) { start += nr }
        guard start < limit else { return }
        _ = try? readIntoCache(start..<min(limit, start + window), mode: .async, trigger: start, order: folioOrder)
    }

    /// `pages` rounded up to whole blocks of `nr` pages.
    static func wholeBlocks(_ pages: Int, _ nr: Int) -> Int { (pages + nr - 1) / nr * nr }

    /// The first entry of the block at `base` when its pages are one clean aligned run of
    /// slots, the test for swapping it in (or reading it ahead) as one large folio; nil if not.
    /// A look without locks: the caller re-checks under the page-table lock before mapping.
    func largeSwapRun(at base: Int) -> SwapEntry? {
        let nr = 1 << folioOrder
        guard base + nr <= pageCount else { return nil }
        let first = pte(base)
        guard first.isSwap, first.swapEntry.offset % nr == 0 else { return nil }
        let entry = first.swapEntry
        for i in 1..<nr where pte(base + i) != .swap(entry.advanced(by: i)) { return nil }
        return entry
    }

    /// Whether `page` is swapped out with no folio cached for it (a look without locks).
    private func needsRead(_ page: Int) -> Bool {
        let p = pte(page)
        guard p.isSwap, let device = engine.devices.device(for: p.swapEntry) else { return false }
        return !device.slot(p.swapEntry).isFolio
    }

    /// Before a missing fault at `page` reads it: when the window is more than the page, reads
    /// the page with the pages after it whose slots follow its slot, in one call (where the
    /// fault's own read and then the window's were two, one after the other). Returns the rest
    /// of the window, for `readAhead(_:)` once the page is mapped; nil when this is no miss (or
    /// the protocol reads each page before inserting it), and the fault reads ahead as before. A failed
    /// read throws, as the fault's own would; if this did not read the page, the fault does.
    func readAheadWithFault(at page: Int, entry: SwapEntry) throws(SwapError) -> Range<Int>? {
        guard !engine.sync.readsBeforeInsert, let device = engine.devices.device(for: entry),
            !device.slot(entry).isFolio
        else { return nil }
        let window = readahead.window(for: page)
        let end = min(pageCount, page + window)
        guard window > 1 else { return end..<end }
        var next = page + 1
        _ = try readIntoCache(page..<end, mode: .demand, trigger: page + 1, demandRunEnd: &next)
        return Swift.max(next, page + 1)..<end
    }

    /// Reads the rest of a window after its fault (see `readAheadWithFault`), best effort,
    /// without waiting. `fault` is the faulting page: the page after it is the window's
    /// trigger, if the fault's own run did not take it.
    func readAhead(_ pages: Range<Int>, fault: Int) {
        guard !pages.isEmpty else { return }
        _ = try? readIntoCache(pages, mode: .async, trigger: pages.lowerBound == fault + 1 ? fault + 1 : nil)
    }

    /// How `readIntoCache` reads.
    enum ReadMode {
        /// Waits for every run (`prefetch`).
        case wait
        /// The first page is a fault's own: its run is read and waited for, nothing more.
        case demand
        /// Submits every run and returns; runs not done at once go to `AsyncReadCompleter`.
        case async
    }

    /// Inserts a folio for every swapped page of `pages` whose entry nobody has cached, reads
    /// the winners in runs of consecutive slots, and leaves them in the cache, unlocked, marked
    /// as read ahead (or, `.async`, locked until their read completes). The folio of page
    /// `trigger`, if this call reads it, is marked as the window's trigger. Returns the pages
    /// read (`.async`: read or submitted).
    ///
    /// With `order` > 0 (a large-folio region), `pages` starts on a block: each whole block whose
    /// pages are a clean aligned run (`largeSwapRun`) gets one folio of that order, and the
    /// others are skipped; counts stay in pages.
    private func readIntoCache(_ pages: Range<Int>, mode: ReadMode = .wait, trigger: Int? = nil, order: Int = 0) throws(SwapError) -> Int {
        var unused = 0
        return try readIntoCache(pages, mode: mode, trigger: trigger, order: order, demandRunEnd: &unused)
    }

    /// With `.demand`, the first page is the fault's own: not marked, not counted as read
    /// ahead, put on the LRU as a swap-in is (active if its shadow says so), and only its run
    /// of consecutive slots is read; `demandRunEnd` is set to the first page not taken.
    private func readIntoCache(
        _ pages: Range<Int>, mode: ReadMode, trigger: Int?, order: Int = 0,
        demandRunEnd: inout Int
    ) throws(SwapError) -> Int {
        let demand = mode == .demand
        // Pages per folio read.
        let nr = 1 << order
        assert(order == 0 || (!demand && pages.lowerBound % nr == 0), "large readahead starts on a block, never with a fault")
        let frames = engine.frames
        var triggerFolio: Folio?
        var submittedAsync = 0
        // Pages an async window may still take in its group (see the scan).
        var groupRoom = mode == .async ? engine.groups[group].memoryRoom() / 2 : 0
        var run: [RunFolio] = []
        var read = 0
        var failure: SwapError?
        // Every run is submitted to the device's I/O engine as soon as it is complete, so the
        // runs of a window are in flight together (pages of a region rarely sit in consecutive
        // slots: without this, a window of 32 was 32 reads one after the other).
        var inFlight: [(run: [RunFolio], read: SubmittedRead)] = []
        // The fault's own folio, when `demand` and this call inserted it.
        var demandFolio: Folio?
        func flush() {
            guard !run.isEmpty else { return }
            do {
                inFlight.append((run, try engine.cache.submitReadRun(run)))
            } catch {
                failure = failure ?? error
                finish(run)
            }
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
                engine.cache.settleReadahead(f, trigger: f == triggerFolio, shadow: shadow)
            }
        }
        func finish(_ run: [RunFolio]) {
            for r in run {
                if frames.flags(r.folio).contains(.uptodate) { settle(r.folio, shadow: r.shadow) }
                frames.unlock(r.folio)
                engine.allocator.putFolio(r.folio)
            }
        }

        demandRunEnd = pages.lowerBound
        scan: for page in stride(from: pages.lowerBound, to: pages.upperBound, by: nr) {
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
                // A block not out whole as one run (partly mapped, split, past the range) is
                // left to its faults, page by page.
                guard page + nr <= pages.upperBound, let e = largeSwapRun(at: page) else {
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
            // Readahead never waits for memory: it stops at the min watermark, leaving the
            // rest to faults (the watermarks keep a window's worth above it for readahead, and
            // the allocation wakes the background reclaimer below the low one).
            guard engine.allocator.pool.freeFrames >= engine.allocator.watermarks.min + nr else {
                flush()
                break
            }
            // Nor does a window read without waiting reclaim its group's pages to make room, or
            // take more than half the room left: its folios stay locked, off the LRU, until the
            // read completes, and a window holding the group's last frames so would leave the
            // group's faults nothing to reclaim (they then wait for it: `allocateFolio`).
            if mode == .async {
                guard groupRoom >= nr else {
                    flush()
                    break
                }
                groupRoom -= nr
            }
            let f: Folio
            let replaced: UInt64?
            let outcome: SwapCacheAllocation
            do {
                // A large folio also needs a free run of frames: with none (fragmented free
                // memory above the watermark), stop rather than reclaim to make one.
                outcome = try engine.cache.swapCacheAllocFolio(
                    entry, order: order, group: group, placement: placement(page),
                    claim: entryClaim(page, entry, pages: nr), mayReclaim: order == 0)
            } catch {
                // No memory for more (a group limit, a full budget): read what we have and stop.
                flush()
                break
            }
            switch outcome {
            case .allocated(let new, let shadow):
                f = new
                replaced = shadow
                if demand && page == pages.lowerBound { demandFolio = new }
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
            demandRunEnd = page + 1
        }
        flush()
        if mode == .async && !inFlight.isEmpty { engine.stats.count(.readaheadAsyncWindows) }
        for (done, submitted) in inFlight {
            if mode == .async && !submitted.device.io.isDone(submitted.ticket) {
                // Finished by the completer; the folios stay locked until then.
                let t = triggerFolio.flatMap { t in done.contains { $0.folio == t } ? t : nil }
                engine.cache.asyncReads.enqueue(.init(cache: engine.cache, run: done, read: submitted, trigger: t))
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
        inFlight.removeAll()
        if let failure, read == 0 && submittedAsync == 0 { throw failure }
        // The fault's own page was counted with its run; it was not read ahead.
        if demandRead { read -= 1 }
        engine.stats.count(.readaheadPages, read)
        return read + submittedAsync
    }
}
