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
/// windows are read on the spot, page by page. An async window never reclaims its group's pages
/// to make room, and takes at most half the room left (it stops there, as at the min
/// watermark); its runs hold the engine, so a region or space released meanwhile stays valid
/// until they complete.
///
/// In a large-folio region the unit is the block: a block fault that read (`swapInLarge`) reads
/// ahead the whole blocks after it whose pages are one clean aligned run of slots, each as one
/// folio of the region's order, consecutive blocks in one request; the window is the one the
/// 4 KiB logic picks (faults a block apart count as neighbours), rounded up to whole blocks, and
/// its first block is the trigger. A fault on a block read ahead maps the whole folio at once.
/// A block that is not one run (partly mapped, split on swap-out) is skipped: its faults bring
/// it in page by page.
///
/// Prefetch (`prefetch(pages:)`, `advise(.willNeed)`) is the application's readahead: it names
/// the pages, in any order, and the reads of all of them go to the device together.
///
/// Every one of these goes through one function, `readAhead(_:)`, which holds the policy: the
/// window's size, which page triggers the next window, what waits and what does not. A fault
/// resolved in a signal handler, where no read may start, decides by the same policy
/// (`readaheadPlan`) and leaves the reading to a thread of the engine (`.planned`).
extension Region {
    /// What an application expects of its access pattern (in the spirit of `madvise`).
    public enum Advice: UInt8, Sendable {
        /// Adaptive readahead (the default).
        case normal
        /// Read ahead the largest window on every miss.
        case sequential
        /// Never read ahead.
        case random
        /// The pages will be needed soon: start reading them now (`MADV_WILLNEED`).
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
        // Relaxed: advice, read by the next fault
        case .normal, .sequential, .random: readahead.advice.store(advice.rawValue, ordering: .relaxed)
        case .willNeed: try prefetch(pages: range)
        case .dontNeed: try swapOut(pages: range)
        }
    }

    /// Starts bringing `pages` into memory ahead of use (in the spirit of `MADV_WILLNEED`), and
    /// returns without waiting: the contiguous case of `prefetch(pages:)` for any set of pages.
    @discardableResult
    public func prefetch(pages: Range<Int>) throws(SwapError) -> Int {
        guard !pages.isEmpty else { return 0 }
        try checkPage(pages.lowerBound)
        try checkPage(pages.upperBound - 1)
        return try readAhead(.prefetch(Array(pages))).pages
    }

    /// Starts bringing `pages` into memory ahead of use, and returns without waiting for them
    /// (in the spirit of `MADV_WILLNEED`). `pages` may come in any order, with duplicates and
    /// with pages that are in memory or never written (both are skipped).
    ///
    /// Each swapped-out page gets a folio in the swap cache, locked while its read is in
    /// flight; pages in consecutive slots are read in one request, and the requests of the
    /// whole batch go to the device together (io_uring: one `io_uring_enter`). A page already
    /// cached or being read by someone else is left to that read. A later `pin` of one of the
    /// pages finds its folio and waits only for that read, if it is still in flight; if the
    /// read failed, the pin gets the `.ioError` (the data stays on the device, and a later
    /// access reads again).
    ///
    /// The batch takes frames like any swap-in, reclaiming other pages when memory is full, but
    /// never its own: a batch larger than about half the memory its group may use prefetches
    /// what fits and leaves the rest to their pins. Returns the pages it started to read.
    /// Throws `.outOfRange` (before reading anything) for a page outside the region, and a
    /// read's error only when nothing of the batch could be read.
    @discardableResult
    public func prefetch(pages: some Sequence<Int>) throws(SwapError) -> Int {
        var list: [Int] = []
        list.reserveCapacity(pages.underestimatedCount)
        for page in pages {
            try checkPage(page)
            list.append(page)
        }
        return try readAhead(.prefetch(list)).pages
    }

    /// Why readahead runs: what `readAhead(_:)` is asked to do.
    enum ReadaheadCause {
        /// A fault is about to bring `page` back from `entry` (4 KiB folios).
        case fault(page: Int, entry: SwapEntry)
        /// An async pin of `page` found `entry` uncached: its read is submitted, not waited for.
        case suspendingFault(page: Int, entry: SwapEntry)
        /// A fault mapped `page` — with `block`, the whole block of a large-folio region at
        /// `page` — from a folio of `folioPages` pages whose readahead flags were `flags`
        /// (empty: not read ahead); `rest` is what `.fault` returned for it.
        case mapped(page: Int, folioPages: Int = 1, block: Bool = false, flags: FolioFlags, rest: Range<Int>? = nil)
        /// The application will need `pages` (checked, in any order).
        case prefetch([Int])
        /// What `readaheadPlan(mapped:folioPages:flags:)` decided for a page mapped where no
        /// read may start (a signal handler): read on a thread of the engine.
        case planned(ReadaheadPlan)
    }

    /// What the readahead after a mapped page reads, decided apart from the reading where the
    /// deciding place may not read (a signal handler).
    enum ReadaheadPlan: Equatable {
        case none
        /// A miss: read the window `pages` ahead, its first page the trigger.
        case window(Range<Int>)
        /// The first use of the trigger page `page` of a window: submit the next window.
        case next(after: Int)
    }

    /// What `readAhead(_:)` did.
    struct ReadaheadOutcome {
        /// Pages read or submitted.
        var pages = 0
        /// `.fault`: the rest of the window, to read once the page is mapped; nil when the fault
        /// was no miss (or the protocol reads each page before inserting it).
        var rest: Range<Int>?
        /// `.suspendingFault`: no frame was free for the page, and nothing was read; the task
        /// waits for the background reclaimer (`FrameWaitQueue`).
        var waitsForFrames = false
    }

    /// The one entry point of readahead: decides what to read for `cause` and reads it.
    ///
    /// - `.fault`, a miss with a window of more than the page: reads the page with the pages
    ///   after it whose slots follow its slot, in one call, and waits (where the fault's own
    ///   read and then the window's were two, one after the other); returns the rest of the
    ///   window. A failed read throws, as the fault's own would.
    /// - `.suspendingFault`: as `.fault`, but always reads the page (a window of one included),
    ///   and waits for nothing: the pin's task suspends on the page's folio.
    /// - `.mapped` from a folio read ahead: counts the hit; the first use of a window's trigger
    ///   submits the next window without waiting. Otherwise (a miss): the rest of the window
    ///   `.fault` sized, or a new window after the page; in a large-folio region, whole blocks.
    ///   Best effort: errors are left for the fault that will need a page.
    /// - `.prefetch`: the pages in slot order, every run submitted together, nothing waited for.
    /// - `.planned`: what `readaheadPlan(mapped:folioPages:flags:)` decided in a signal handler,
    ///   read as `.mapped` would have, nothing waited for.
    @discardableResult
    func readAhead(_ cause: ReadaheadCause) throws(SwapError) -> ReadaheadOutcome {
        switch cause {
        case .fault(let page, let entry):
            guard !engine.sync.readsBeforeInsert, let device = engine.devices.device(for: entry),
                !device.slot(entry).isFolio
            else { return ReadaheadOutcome() }
            let window = readahead.window(for: page)
            let end = min(pageCount, page + window)
            guard window > 1 else { return ReadaheadOutcome(rest: end..<end) }
            var demand = DemandRun(end: page + 1)
            let read = try readIntoCache(page..<end, mode: .demand, trigger: page + 1, demandRun: &demand)
            return ReadaheadOutcome(pages: read, rest: Swift.max(demand.end, page + 1)..<end)
        case .suspendingFault(let page, _):
            let window = readahead.window(for: page)
            let end = min(pageCount, page + Swift.max(1, window))
            var demand = DemandRun(end: page + 1)
            let read = try readIntoCache(
                page..<end, mode: .suspending, trigger: window > 1 ? page + 1 : nil, demandRun: &demand)
            return ReadaheadOutcome(
                pages: read, rest: Swift.max(demand.end, page + 1)..<end, waitsForFrames: demand.waitsForFrames)
        case .mapped(let page, let folioPages, let block, let flags, let rest):
            if !flags.contains(.readahead) {
                if block { return ReadaheadOutcome(pages: blockWindow(after: page)) }
                if let rest {
                    guard !rest.isEmpty else { return ReadaheadOutcome() }
                    let trigger = rest.lowerBound == page + 1 ? page + 1 : nil
                    return ReadaheadOutcome(pages: (try? readIntoCache(rest, mode: .async, trigger: trigger)) ?? 0)
                }
            }
            return ReadaheadOutcome(pages: read(readaheadPlan(mapped: page, folioPages: folioPages, flags: flags)))
        case .prefetch(let pages):
            return ReadaheadOutcome(pages: try readIntoCache(inSlotOrder(pages), mode: .prefetch, trigger: nil))
        case .planned(let plan):
            return ReadaheadOutcome(pages: read(plan))
        }
    }

    /// `.mapped`'s policy for a folio of `folioPages` pages mapped at `page` whose readahead
    /// flags were `flags`, when neither a block nor the rest of a fault's window says what to
    /// read: a hit counts, and a trigger's first use plans the next window; a miss plans the
    /// window after the page. Allocates nothing and reads nothing (a signal handler calls it).
    func readaheadPlan(mapped page: Int, folioPages: Int, flags: FolioFlags) -> ReadaheadPlan {
        if flags.contains(.readahead) {
            // A large folio read ahead and mapped page by page (part of its block changed)
            // counts its pages once, at its first use, as a whole-block hit does. A page the
            // application prefetched says nothing of the access pattern: its use does not
            // widen the next window.
            if !flags.contains(.prefetched) { readahead.hit(folioPages) }
            engine.stats.count(.readaheadHits, folioPages)
            return flags.contains(.readaheadTrigger) ? .next(after: page) : .none
        }
        let window = readahead.window(for: page)
        guard window > 1 else { return .none }
        let end = min(pageCount, page + window)
        return page + 1 < end ? .window((page + 1)..<end) : .none
    }

    /// Reads what `plan` says, without waiting. Best effort: errors are left for the faults.
    private func read(_ plan: ReadaheadPlan) -> Int {
        switch plan {
        case .none: return 0
        case .window(let pages): return (try? readIntoCache(pages, mode: .async, trigger: pages.lowerBound)) ?? 0
        case .next(let page): return nextWindow(after: page)
        }
    }

    /// After the first use of the trigger page `page` of a window: submits the next window
    /// without waiting for it, past the pages already in memory or being read (the rest of this
    /// window and the windows ahead of it), up to `asyncLead` windows ahead of this one; in a
    /// large-folio region, in whole blocks from the block after `page`'s. Best effort.
    private func nextWindow(after page: Int) -> Int {
        let nr = 1 << folioOrder
        let base = folioBase(page, order: folioOrder)
        let pages = readahead.asyncWindow(at: base)
        guard pages > 0 else { return 0 }
        let window = Self.wholeBlocks(pages, nr)
        var start = base + nr
        let limit = min(pageCount, base + (nr == 1 ? 0 : nr) + (ReadaheadState.asyncLead + 1) * window)
        while start < limit && !needsRead(start) { start += nr }
        guard start < limit else { return 0 }
        let end = min(limit, start + window)
        if folioOrder == 0 { return (try? readIntoCache(start..<end, mode: .async, trigger: start)) ?? 0 }
        return (try? readIntoCache(Self.blocks(start..<end, nr), mode: .async, trigger: start, order: folioOrder)) ?? 0
    }

    /// Large folios: after a block fault at `base` that read (a miss), reads ahead the whole
    /// blocks that follow, each as one folio of the region's order, best effort, without
    /// waiting. The window is the 4 KiB logic's (faults one block apart count as neighbours),
    /// its pages after the fault rounded up to whole blocks; the first block is the trigger.
    private func blockWindow(after base: Int) -> Int {
        let nr = 1 << folioOrder
        let window = readahead.window(for: base, stride: nr)
        guard window > 1 else { return 0 }
        let start = base + nr
        let end = min(pageCount, start + Self.wholeBlocks(window - 1, nr))
        guard start < end else { return 0 }
        return (try? readIntoCache(Self.blocks(start..<end, nr), mode: .async, trigger: start, order: folioOrder)) ?? 0
    }

    /// `pages` rounded up to whole blocks of `nr` pages.
    static func wholeBlocks(_ pages: Int, _ nr: Int) -> Int { (pages + nr - 1) / nr * nr }

    /// The first pages of the whole blocks of `nr` pages in `pages` (which starts on a block).
    static func blocks(_ pages: Range<Int>, _ nr: Int) -> StrideTo<Int> {
        stride(from: pages.lowerBound, to: pages.upperBound - nr + 1, by: nr)
    }

    /// The swapped-out pages of `pages` once each, ordered by their slots, so that pages in
    /// consecutive slots make one run however the caller listed them (a look without locks:
    /// `readIntoCache` looks at each page again).
    private func inSlotOrder(_ pages: [Int]) -> [Int] {
        var swapped: [(entry: UInt64, page: Int)] = []
        swapped.reserveCapacity(pages.count)
        for page in pages {
            let p = pte(page)
            if p.isSwap { swapped.append((p.swapEntry.raw, page)) }
        }
        swapped.sort { $0.entry < $1.entry }
        var ordered: [Int] = []
        ordered.reserveCapacity(swapped.count)
        var last: UInt64?
        for s in swapped where s.entry != last {
            ordered.append(s.page)
            last = s.entry
        }
        return ordered
    }

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
}
