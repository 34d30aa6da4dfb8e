import Synchronization

/// A range of swappable memory: pages addressed by index, each in RAM, on a swap device, or
/// not yet touched (zero). Made by `SwapSpace.makeRegion(bytes:)`.
///
/// Its page table holds one atomic `PageTableEntry` per page. Changes take the page-table lock
/// of the page's 512-page block (split like the kernel's PTL); the pin fast path only reads.
/// The page-table lock's place in the lock order: `LockRank.pageTable` (Support/LockOrder.swift).
///
/// Access: `pin(_:)` returns a `Pin` that keeps the page resident; `withPage(_:_:)` runs a
/// closure on it; `swapOut(pages:)` pushes pages to swap explicitly (reclaim does it under a
/// budget); `discard(pages:)` frees pages (they read as zero again).
public final class Region: Sendable {
    /// Unique within the space; part of each folio's reverse map.
    public let id: Int
    /// The region's size in 4 KiB pages; pages are indexed from 0.
    public let pageCount: Int
    /// The memory group its pages are charged to.
    public let group: Int
    /// log2 of the pages per folio: 0 for 4 KiB folios, up to 9 for 2 MiB. Large folios are
    /// allocated, swapped out and swapped in as one unit when possible, page by page otherwise.
    public let folioOrder: Int
    let engine: SwapEngine
    /// Readahead state: the last faulting page and window (see `Region+Readahead.swift`).
    let readahead = ReadaheadState()
    let ptes: _UnsafeAtomicArray<UInt64>
    /// Page-table locks, one per 512 pages.
    let ptls: _UnsafeAtomicArray<UInt32>
    static let pagesPerPTL = 512
    /// Region ids are below it: a reverse-map key keeps 24 bits for one, and ids are never
    /// reused, so a space makes at most `idLimit - 1` regions in its life.
    static let idLimit = 1 << 23
    /// Where the pages of a transparent region live (nil for an explicit region, whose folios
    /// live in arena frames).
    let window: FrameWindow?
    #if DEBUG
    /// Runs in a swap-out between the page-table unmap and the application view's (the folio
    /// locked; a test holds a thread there).
    let pageTableUnmapped = TestHook()
    #endif

    /// Throws `.outOfMemory` when the system will not allocate the page table (8 bytes a page:
    /// 32 GiB for 16 TiB); it costs RAM only as its entries are written.
    init(id: Int, pageCount: Int, group: Int, folioOrder: Int, engine: SwapEngine, window: FrameWindow? = nil) throws(SwapError) {
        require(window == nil || folioOrder == 0, "transparent regions use 4 KiB folios")
        self.window = window
        self.id = id
        self.pageCount = pageCount
        self.group = group
        self.folioOrder = folioOrder
        self.engine = engine
        guard let ptes = _UnsafeAtomicArray<UInt64>(zeroedCount: pageCount),
            let ptls = _UnsafeAtomicArray<UInt32>(zeroedCount: (pageCount + Self.pagesPerPTL - 1) / Self.pagesPerPTL)
        else {
            throw SwapError(
                .outOfMemory,
                "a region of \(SwapHeader.describe(bytes: Int64(pageCount) * Int64(SwapPage.size))) needs a page table of \(SwapHeader.describe(bytes: Int64(pageCount) * 8)), which the system will not allocate; make it smaller (a few regions or arrays instead of one)"
            )
        }
        self.ptes = ptes
        self.ptls = ptls
        require(id < Self.idLimit, "region id \(id) is beyond what a reverse-map key holds")
        engine.reverseMap.insert(self)
    }

    deinit {
        engine.reverseMap.remove(id: id)
        discardAll()
    }

    /// Bytes of the region.
    public var byteCount: Int { pageCount * SwapPage.size }

    @inline(__always)
    func pte(_ page: Int) -> PageTableEntry {
        // Sequentially consistent: pairs with the refcount in pin/unmap (see `Region.unmap`).
        PageTableEntry(raw: ptes[page].pointee.load(ordering: .sequentiallyConsistent))
    }

    @inline(__always)
    func setPTE(_ page: Int, _ value: PageTableEntry) {
        assert(ptl(page).isLocked)
        ptes[page].pointee.store(value.raw, ordering: .sequentiallyConsistent)
    }

    /// The first page of the folio-sized, aligned block holding `page`.
    @inline(__always)
    func folioBase(_ page: Int, order: Int) -> Int { page & ~((1 << order) - 1) }

    /// The page-table lock covering `page`. A block of up to 512 aligned pages (the largest
    /// folio) is always under one lock.
    @inline(__always)
    func ptl(_ page: Int) -> FutexLock { FutexLock(ptls[page / Self.pagesPerPTL], rank: .pageTable) }

    @inline(__always)
    func checkPage(_ page: Int) throws(SwapError) {
        guard page >= 0 && page < pageCount else {
            throw SwapError(.outOfRange, "page \(page) is outside region \(id) of \(pageCount) pages")
        }
    }

    /// Where a new folio for `page` puts its bytes.
    @inline(__always)
    func placement(_ page: Int) -> FramePlacement {
        if let window { return FramePlacement(window: window, page: page) }
        return .arena
    }

    /// Where each page is now, for tests and reports.
    public enum PageState: Equatable, Sendable {
        /// Never written since it was made or discarded: reads as zeroes, holds no memory.
        case untouched
        /// In memory.
        case resident
        /// On a swap device: the next access reads it back.
        case swapped
    }

    /// Where `page` is now (a look: reclaim and other threads may change it at once).
    public func state(ofPage page: Int) -> PageState {
        let p = pte(page)
        return p.isNone ? .untouched : p.isPresent ? .resident : .swapped
    }

    /// Frees `pages`: their memory and swap slots are released and they read as zeroes again
    /// (kernel: `zap_pte_range` with `swap_put_entries_direct`).
    public func discard(pages: Range<Int>) throws(SwapError) {
        try checkPage(pages.lowerBound)
        if !pages.isEmpty { try checkPage(pages.upperBound - 1) }
        for page in pages { zap(page) }
    }

    func discardAll() {
        for page in 0..<pageCount where !pte(page).isNone { zap(page) }
    }

    /// Clears one page-table entry and drops what it held.
    func zap(_ page: Int) {
        let lock = ptl(page)
        lock.lock()
        let old = pte(page)
        if old.isNone {
            lock.unlock()
            return
        }
        setPTE(page, .none)
        // A fault message read before now must not bring the page back once its thread went on.
        window?.noteDiscard(page)
        if old.isSwap {
            let entry = old.swapEntry
            let device = engine.devices.device(mappedBy: entry)
            // The page table's reference to the slot goes under the PTL, as the kernel does.
            device.put(entry)
            lock.unlock()
            // The application's view may still map the page: a swap-out sets the swap entry
            // first and unmaps the view after (`unmap`), holding the folio locked in between. Left
            // mapped, the page would be read and written there after its discard — the old data
            // instead of zeroes, and stores into memory the swap-out then punches out. Unmapped,
            // the next touch faults, and its zero fill waits for that folio's lock.
            window?.unmapFromApp(page)
            yieldPoint(.zapBeforeCacheReclaim)
            // A slot held only by the cache now: drop that folio too, if nobody is using it.
            engine.cache.reclaimCacheOnly(entry)
            return
        }
        lock.unlock()
        // The application's view must not keep a page its region no longer has.
        window?.unmapFromApp(page)
        yieldPoint(.zapCleared)
        let f = engine.frames.folio(containing: old.frame)
        if engine.frames.flags(f).contains(.swapcache) {
            // The folio may only stay for the cache now. Take it out while we still hold the
            // mapping's reference, so it cannot be freed under us.
            engine.frames.lock(f)
            if engine.frames.flags(f).contains(.swapcache) { engine.cache.freeSwapIfUnused(f) }
            engine.frames.unlock(f)
        }
        engine.allocator.putFolio(f)
    }
}
