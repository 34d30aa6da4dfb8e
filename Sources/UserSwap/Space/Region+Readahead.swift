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

    /// Last faulting page << 16 | last window. Relaxed: a heuristic; racing faults of one region
    /// just blend their guesses.
    let last = Atomic<UInt64>(0)
    let hits = Atomic<Int>(0)
    let advice = Atomic<UInt8>(Region.Advice.normal.rawValue)

    func hit() { hits.add(1, ordering: .relaxed) }

    /// The window for a missing fault at `page` (kernel: `__swapin_nr_pages`): hits + 2 rounded
    /// up to a power of two; with no hits, 2 only if the fault is next to the previous one, else
    /// 1 (no readahead); capped; never shrinking faster than half the previous window.
    func window(for page: Int) -> Int {
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
            if page != previousPage + 1 && page != previousPage - 1 { pages = 1 }
        } else {
            pages = 1 << (Int.bitWidth - (pages - 1).leadingZeroBitCount)
        }
        pages = min(pages, Self.maxWindow)
        pages = max(pages, previousWindow / 2)
        last.store(UInt64(page) << 16 | UInt64(pages), ordering: .relaxed)
        return pages
    }
}

/// Readahead (kernel: `swap_vma_readahead`): after a fault that had to read, the swapped-out
/// pages that follow it in the region are brought into the swap cache too, through the same
/// insert as any swap-in — only the winner of each entry reads, racers wait on its folio lock —
/// with consecutive slots read in one vectored call. A page read ahead is marked; its first use
/// counts a hit, which widens the next window; random access collapses the window to nothing.
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

    /// Reads ahead after a missing fault at `page`, best effort: errors are left for the fault
    /// that will need the page.
    func readAhead(after page: Int) {
        let window = readahead.window(for: page)
        guard window > 1 else { return }
        let end = min(pageCount, page + window)
        _ = try? readIntoCache((page + 1)..<end)
    }

    /// Before a missing fault at `page` reads it: when the window is more than the page, reads
    /// the page with the pages after it whose slots follow its slot, in one call (where the
    /// fault's own read and then the window's were two, one after the other). Returns the rest
    /// of the window, for `readAhead(_:)` once the page is mapped; nil when this is no miss (or
    /// the swap-cache protocol is not in use), and the fault reads ahead as before. A failed
    /// read throws, as the fault's own would; if this did not read the page, the fault does.
    func readAheadWithFault(at page: Int, entry: SwapEntry) throws(SwapError) -> Range<Int>? {
        guard engine.sync == .swapCache, let device = engine.devices.device(for: entry),
              !device.slot(entry).isFolio else { return nil }
        let window = readahead.window(for: page)
        let end = min(pageCount, page + window)
        guard window > 1 else { return end..<end }
        var next = page + 1
        _ = try readIntoCache(page..<end, demandRunEnd: &next)
        return Swift.max(next, page + 1)..<end
    }

    /// Reads the rest of a window after its fault (see `readAheadWithFault`), best effort.
    func readAhead(_ pages: Range<Int>) {
        guard !pages.isEmpty else { return }
        _ = try? readIntoCache(pages)
    }

    /// Inserts a folio for every swapped page of `pages` whose entry nobody has cached, reads
    /// the winners in runs of consecutive slots, and leaves them in the cache, unlocked, marked
    /// as read ahead.
    private func readIntoCache(_ pages: Range<Int>) throws(SwapError) -> Int {
        var unused = 0
        return try readIntoCache(pages, demand: false, demandRunEnd: &unused)
    }

    /// With `demandRunEnd`, the first page is the fault's own: not marked, not counted as read
    /// ahead, put on the LRU as a swap-in is (active if its shadow says so), and only its run
    /// of consecutive slots is read; `demandRunEnd` is set to the first page not taken.
    private func readIntoCache(_ pages: Range<Int>, demandRunEnd: inout Int) throws(SwapError) -> Int {
        try readIntoCache(pages, demand: true, demandRunEnd: &demandRunEnd)
    }

    private func readIntoCache(_ pages: Range<Int>, demand: Bool, demandRunEnd: inout Int) throws(SwapError) -> Int {
        let frames = engine.frames
        var run: [(Folio, SwapEntry)] = []
        var read = 0
        var failure: SwapError?
        // Every run is submitted to the device's I/O engine as soon as it is complete, so the
        // runs of a window are in flight together (pages of a region rarely sit in consecutive
        // slots: without this, a window of 32 was 32 reads one after the other).
        var inFlight: [(run: [(Folio, SwapEntry)], read: SubmittedRead)] = []
        // The fault's own folio and its shadow, when `demand` and this call inserted it.
        var demandFolio: (folio: Folio, shadow: UInt64?)?
        func flush() {
            guard !run.isEmpty else { return }
            do {
                inFlight.append((run, try engine.submitReadRun(run)))
            } catch {
                failure = failure ?? error
                finish(run)
            }
            run.removeAll(keepingCapacity: true)
        }
        var demandRead = false
        // An uptodate folio of the window goes on the LRU: marked as read ahead, or, the
        // fault's own, as any swap-in.
        func settle(_ f: Folio) {
            if let d = demandFolio, d.folio == f {
                demandRead = true
                engine.groups[group].count(.pswpin)
                let activate = d.shadow.map { engine.workingsetRefault(f, shadow: $0) } ?? false
                engine.lru(f).add(f, to: activate ? .active : .inactive)
            } else {
                frames.setFlags(f, .readahead)
                engine.lru(f).add(f, to: .inactive)
            }
        }
        func finish(_ run: [(Folio, SwapEntry)]) {
            for (f, _) in run {
                if frames.flags(f).contains(.uptodate) { settle(f) }
                frames.unlock(f)
                engine.putFolio(f)
            }
        }

        demandRunEnd = pages.lowerBound
        scan: for page in pages {
            let p = pte(page)
            guard p.isSwap else {
                if demand { break scan }
                flush()
                continue
            }
            let entry = p.swapEntry
            let breaks = run.count == IORequestTable.maxVectors
                || run.last.map { $0.1.type != entry.type || $0.1.offset + 1 != entry.offset } ?? false
            if demand && breaks { break scan }
            if breaks { flush() }
            // Readahead never waits for memory: it stops at the min watermark, leaving the
            // rest to faults (the watermarks keep a window's worth above it for readahead, and
            // the allocation wakes the background reclaimer below the low one).
            guard engine.pool.freeFrames > engine.watermarks.min else { flush(); break }
            let f: Folio
            let outcome: SwapCacheAllocation
            do {
                outcome = try engine.swapCacheAllocFolio(entry, order: 0, group: group, placement: placement(page),
                                                         claim: windowClaim(page, entry))
            } catch {
                // No memory for more (a group limit, a full budget): read what we have and stop.
                flush()
                break
            }
            switch outcome {
            case .allocated(let new, let shadow):
                f = new
                if demand && page == pages.lowerBound { demandFolio = (new, shadow) }
            case .cached(let other):
                // Already in memory (or being read by someone else): nothing to do.
                engine.putFolio(other)
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
                settle(f)
                frames.unlock(f)
                engine.putFolio(f)
                read += 1
                continue
            }
            run.append((f, entry))
            demandRunEnd = page + 1
        }
        flush()
        for (done, submitted) in inFlight {
            do {
                try engine.finishReadRun(done, submitted)
                read += done.count
            } catch {
                failure = failure ?? error
            }
            finish(done)
        }
        inFlight.removeAll()
        if let failure, read == 0 { throw failure }
        // The fault's own page was counted with its run; it was not read ahead.
        if demandRead { read -= 1 }
        engine.stats.count(.readaheadPages, read)
        return read
    }
}

extension SwapEngine {
    /// Reads locked, cached folios whose slots are consecutive on one device in one vectored
    /// call. On failure every folio of the run leaves the cache again, marked with `.error`,
    /// and its slots keep their data on the device.
    func readRun(_ run: [(Folio, SwapEntry)]) throws(SwapError) {
        try finishReadRun(run, submitReadRun(run))
    }

    /// Submits the read of a run (see `readRun`) to its device's I/O engine without waiting.
    /// The folios stay locked until `finishReadRun`, which every submitted run must get.
    func submitReadRun(_ run: [(Folio, SwapEntry)]) throws(SwapError) -> SubmittedRead {
        let first = run[0].1
        guard let device = devices.device(for: first) else {
            throw SwapError(.deviceGone, "the device of \(first) was removed")
        }
        let buffers = run.map { bytes($0.0) }
        let ticket = buffers.withUnsafeBufferPointer { b in device.io.submitRead(into: b, atPage: first.offset) }
        return SubmittedRead(device: device, ticket: ticket)
    }

    /// Waits for a submitted run and marks its folios uptodate, or takes them out of the cache
    /// with `.error` if the read failed.
    func finishReadRun(_ run: [(Folio, SwapEntry)], _ submitted: SubmittedRead) throws(SwapError) {
        let consumed: Bool
        do {
            consumed = try submitted.device.io.wait(submitted.ticket)
        } catch {
            stats.count(.readErrors)
            for (f, _) in run {
                frames.setFlags(f, .error)
                swapCacheDeleteFolio(f)
            }
            throw error
        }
        stats.count(.deviceReads)
        stats.count(.swapIns, run.count)
        for (f, _) in run { frames.setFlags(f, consumed ? [.uptodate, .dirty] : .uptodate) }
    }
}

/// A read run handed to a device's I/O engine.
struct SubmittedRead {
    let device: SwapDevice
    let ticket: IOTicket
}
