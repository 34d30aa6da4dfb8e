import CUserSwap
import Glibc
import Synchronization

/// Frames at fixed places: the memory of one transparent region. Page `p` of the region always
/// lives at page `p` of the window's memfd, which is mapped twice: the engine's view (for its I/O
/// and pins) and the application's view (registered with userfaultfd, read and written by plain
/// loads and stores). A page present in both is one page of RAM, with no copy between them.
///
/// Each resident page is mapped in one view at a time where it can be, because RSS counts a page
/// once per mapping that maps it (`top` would show up to twice the budget): the engine's view
/// maps a page only while the engine uses it (a read or write of its data, a pin, a check), and
/// once the application's view maps it, the engine's entry is zapped (`zapFromEngine`). A later
/// engine access maps it again, a minor fault; `MADV_DONTNEED` on a shared mapping drops the
/// entry only, the data stays in the memfd, so a zap is safe whenever it lands — also after the
/// page changed owners. A first touch gets its zeroed page from the memfd without mapping it in
/// the engine's view (`allocateZeroed`).
///
/// A folio of such a page still takes a frame of the arena, which counts it against the budget;
/// the arena page itself is never touched and costs nothing. The folio's *placement* (see
/// `FrameTable.placement`) points its bytes here.
///
/// At most one live folio owns a window page: the one that claimed it (`claim`) before writing
/// its data. A folio that dies after another claimed its page (a dead copy of a discarded page)
/// must not release the new owner's memory, so release is a compare-and-swap on the owner word.
/// Claims happen under the page's page-table lock (see `Region.claimEntry`, `faultZero`); a
/// zero fill takes a page from a previous owner only while holding that owner's folio lock, so
/// no read of the previous owner (a swap-in of a discarded page's entry) still writes the page.
///
/// The application's view maps a page while its page-table entry is present, and a moment
/// longer: a swap-out stores the swap entry under the page-table lock and unmaps the view after
/// it, with the folio locked. So whoever changes an entry so that the page's memory may be
/// replaced (a discard, whatever the entry held) unmaps the view itself before it returns.
// The views never move while the window lives; page ownership and installation are atomics.
final class FrameWindow: @unchecked Sendable {
    /// Index in the engine's `FrameWindowTable`.
    let slot: Int
    let pageCount: Int
    let memfd: FileDescriptor
    let engineView: UnsafeMutableRawPointer
    let appView: UnsafeMutableRawPointer
    /// Per page: the owning frame + 1, 0 when free, `releasing` (or `releasingWatched`) while its
    /// memory is punched out.
    private let owners: _UnsafeAtomicArray<UInt32>
    /// Per page: 1 while the application's view maps it (set by the fault handler, cleared when
    /// reclaim or swap-out unmaps it). Accessed pages are found through it: see `deactivate`.
    /// A byte, as `engineMapped`: a flag needs no more, and a window of 4 GiB saves 6 MiB.
    private let installed: _UnsafeAtomicArray<UInt8>
    /// Per page: 1 once the engine took the page's address in its view (`noteEngineAccess`),
    /// which may have mapped the page there; cleared by the zap that follows the application's
    /// mapping of it (`zapFromEngine`), and by the punch.
    private let engineMapped: _UnsafeAtomicArray<UInt8>
    /// Counts the discards of the window's pages (`noteDiscard`). A handler thread reads it
    /// before it reads a fault message, to tell later whether the page was discarded since.
    private let discardClock = Atomic<UInt64>(0)
    /// Per page: the discard clock just after the page's last discard, 0 if none; written and
    /// read under the page's page-table lock. (64 bits: a wrapped clock would call a page
    /// discarded after every later read, and its faults would never be resolved.)
    private let discardedAt: _UnsafeAtomicArray<UInt64>
    /// The zaps of the engine's view that faulting threads queue from their signal handlers
    /// (`zapFromEngineInSignal`).
    let signalZaps = SignalUnmapRing()
    /// Folios placed here and not yet freed; the window outlives them all.
    let liveFolios = Atomic<Int>(0)

    /// Bytes of page state per page of the window: owner, installed and engine-mapped flags,
    /// discard time.
    static let pageStateBytes =
        MemoryLayout<Atomic<UInt32>>.stride + 2 * MemoryLayout<Atomic<UInt8>>.stride + MemoryLayout<Atomic<UInt64>>.stride
    /// Woken when the last live folio is freed (`waitUntilDrained`).
    private let drained = WaitQueue()
    /// Set when its region is released: freed folios leave their page's memory in place, so a
    /// thread that was still finishing an access at release reads what it should (the views go
    /// a moment later, with the window).
    private let retiring = Atomic<Bool>(false)
    /// The owner word of a page whose memory is being punched out.
    static let releasing = UInt32.max
    /// `releasing`, and a thread sleeps on the word until the punch is over: the releaser wakes
    /// it (see `waitWhileReleasing`). `owner` shows it as `releasing`.
    private static let releasingWatched = UInt32.max - 1
    #if DEBUG
    /// Runs in `release` while the page is `releasing`, before its punch (a test holds it there).
    let duringRelease = TestHook()
    #endif

    init(slot: Int, pageCount: Int) throws(SwapError) {
        self.slot = slot
        self.pageCount = pageCount
        let bytes = pageCount << SwapPage.shift
        let fd: Int32
        do {
            fd = try Syscalls.memfdCreate("userswap-transparent")
        } catch {
            throw SwapError(.outOfMemory, "cannot create the memory of a transparent region (memfd_create): \(error.message)", errno: error)
        }
        let owned = FileDescriptor(adopting: fd)
        var engine: UnsafeMutableRawPointer?
        do {
            try Syscalls.ftruncate(fd, Int64(bytes))
            engine = try Syscalls.mmap(length: bytes, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED | cus_MAP_NORESERVE(), fd: fd)
            appView = try Syscalls.mmap(length: bytes, protection: PROT_READ | PROT_WRITE, flags: MAP_SHARED | cus_MAP_NORESERVE(), fd: fd)
        } catch {
            if let engine { Syscalls.munmap(engine, length: bytes) }
            throw SwapError(.outOfMemory, "cannot map \(bytes) bytes for a transparent region: \(error.message)", errno: error)
        }
        engineView = engine!
        memfd = owned
        // Zero pages, as the region's page table: RAM only for the pages a fault reaches.
        guard let owners = _UnsafeAtomicArray<UInt32>(zeroedCount: pageCount),
            let installed = _UnsafeAtomicArray<UInt8>(zeroedCount: pageCount),
            let engineMapped = _UnsafeAtomicArray<UInt8>(zeroedCount: pageCount),
            let discardedAt = _UnsafeAtomicArray<UInt64>(zeroedCount: pageCount)
        else {
            Syscalls.munmap(engineView, length: bytes)
            Syscalls.munmap(appView, length: bytes)
            throw SwapError(
                .outOfMemory,
                "a transparent region of \(SwapHeader.describe(bytes: Int64(bytes))) needs \(SwapHeader.describe(bytes: Int64(pageCount * Self.pageStateBytes))) of page state, which the system will not allocate; make it smaller"
            )
        }
        self.owners = owners
        self.installed = installed
        self.engineMapped = engineMapped
        self.discardedAt = discardedAt
    }

    deinit {
        let bytes = pageCount << SwapPage.shift
        Syscalls.munmap(appView, length: bytes)
        Syscalls.munmap(engineView, length: bytes)
    }

    /// Where the engine reads and writes `page`. Taking it counts as an access that may map the
    /// page in the engine's view (see `zapFromEngine`), unless `accessing` is false: a caller
    /// that holds the address without touching the bytes (the fault handler's pin).
    @inline(__always)
    func engineAddress(_ page: Int, accessing: Bool = true) -> UnsafeMutableRawPointer {
        if accessing { noteEngineAccess(page) }
        return engineView + page << SwapPage.shift
    }

    /// Records that the engine may map `page` in its view now. Set before the access: a zap that
    /// races with it may leave the entry mapped, which costs RSS until the page's next zap or
    /// punch, never data.
    @inline(__always)
    private func noteEngineAccess(_ page: Int) {
        let word = engineMapped[page]
        // Relaxed: a hint for the zap, which orders nothing by it; loaded first so that a page
        // used again and again costs no store
        if word.pointee.load(ordering: .relaxed) == 0 { word.pointee.store(1, ordering: .relaxed) }
    }

    /// Zaps `page`'s entry in the engine's view, if the engine may have mapped it since the last
    /// zap, into `batch` (see `UnmapBatch`: a late zap is safe). Called once the application's
    /// view maps the page, so that RSS counts it once.
    @inline(__always)
    func zapFromEngine(_ page: Int, into batch: inout UnmapBatch) {
        // Relaxed: a hint (see `noteEngineAccess`)
        guard engineMapped[page].pointee.exchange(0, ordering: .relaxed) != 0 else { return }
        batch.add(engineView + page << SwapPage.shift, length: SwapPage.size)
    }

    /// Zaps `page`'s entry in the engine's view into `batch` whatever the flag says: after the
    /// engine's own I/O on the page (a write-out), which may have mapped it after a fault's zap
    /// had cleared the flag (a page faulted back while its write waited to be submitted).
    func zapFromEngineAfterIO(_ page: Int, into batch: inout UnmapBatch) {
        // Relaxed: a hint (see `noteEngineAccess`)
        engineMapped[page].pointee.store(0, ordering: .relaxed)
        batch.add(engineView + page << SwapPage.shift, length: SwapPage.size)
    }

    /// `zapFromEngine` from a signal handler: no allocation, no lock. The zap is queued with
    /// other threads' in `signalZaps` and done with them (a late zap is safe): a `madvise` per
    /// fault cost the faulting thread 10–20 % of its throughput in TLB flushes.
    @inline(__always)
    func zapFromEngineInSignal(_ page: Int) {
        // Relaxed: a hint (see `noteEngineAccess`)
        guard engineMapped[page].pointee.exchange(0, ordering: .relaxed) != 0 else { return }
        signalZaps.push(engineView + page << SwapPage.shift)
    }

    /// Stores a page's worth of `data` as `page`'s bytes: into the memfd with one `pwrite`,
    /// or through the engine's view when the memfd refuses. A swap-in reads into a bounce page
    /// and stores it here rather than writing through the engine's view, where it would leave a
    /// dirty entry for the zap after the application maps the page: the kernel flushes a dirty
    /// entry of a shared mapping from the TLB on its own (it must see the dirty bit before the
    /// entry goes), an interrupt to every CPU that runs the process (~10 µs in a VM), where
    /// clean entries are flushed together. Signal-safe.
    func store(_ page: Int, from data: UnsafeRawBufferPointer) {
        assert(data.count == SwapPage.size)
        let stored = try? Syscalls.pwrite(memfd.rawValue, data, offset: Int64(page) << SwapPage.shift)
        if stored != SwapPage.size { engineAddress(page).copyMemory(from: data.baseAddress!, byteCount: SwapPage.size) }
    }

    /// Gives the memfd a zeroed page at `page` without mapping it anywhere (what a continue into
    /// the application's view needs), for a first touch. Only for a page that is a hole: one no
    /// folio owned since its punch (its owner word was free when the caller claimed it). False
    /// when the caller must zero the page through the engine's view instead: the window is
    /// retiring (a release there leaves the data), or the memfd refused.
    func allocateZeroed(_ page: Int) -> Bool {
        // Relaxed: a flag that orders nothing; a region retiring takes no first touch
        if retiring.load(ordering: .relaxed) { return false }
        do {
            try Syscalls.fallocate(memfd.rawValue, offset: Int64(page) << SwapPage.shift, length: Int64(SwapPage.size))
            return true
        } catch {
            return false
        }
    }

    @inline(__always)
    func appAddress(_ page: Int) -> UnsafeMutableRawPointer { appView + page << SwapPage.shift }

    /// Makes `frame` the owner of `page` before it writes the page's data. Sleeps through a
    /// release in progress (one punch).
    func claim(_ page: Int, frame: UInt32) {
        assert(frame + 1 < Self.releasingWatched, "frame \(frame) collides with the release marks")
        let word = owners[page]
        while true {
            let current = word.pointee.load(ordering: .acquiring)
            if current == Self.releasing || current == Self.releasingWatched {
                waitWhileReleasing(page)
                continue
            }
            if word.pointee.compareExchange(expected: current, desired: frame + 1, ordering: .acquiringAndReleasing).exchanged { return }
        }
    }

    /// Sleeps while `page`'s memory is being punched out, until its releaser stores the free
    /// word and wakes us (the futex recipe of `FrameTable+Lock`: a sleeper marks the word, so a
    /// release nobody waits for costs nothing more than its exchange). Returns at once when the
    /// page is not being released.
    func waitWhileReleasing(_ page: Int) {
        let word = owners[page]
        var current = word.pointee.load(ordering: .acquiring)
        while current == Self.releasing || current == Self.releasingWatched {
            if current == Self.releasing,
                // Relaxed: only announces a sleeper; the word is re-read acquiring after the wait
                !word.pointee.compareExchange(expected: Self.releasing, desired: Self.releasingWatched, ordering: .relaxed).exchanged
            {
                current = word.pointee.load(ordering: .acquiring)
                continue
            }
            _ = cus_futex_wait(rawOwner(page), Self.releasingWatched, -1)
            current = word.pointee.load(ordering: .acquiring)
        }
    }

    /// Ends a release of `page`: frees its owner word, and wakes the threads sleeping on it.
    private func endRelease(_ page: Int) {
        if owners[page].pointee.exchange(0, ordering: .releasing) == Self.releasingWatched {
            _ = cus_futex_wake(rawOwner(page), Int32.max)
        }
    }

    private func rawOwner(_ page: Int) -> UnsafeMutablePointer<UInt32> {
        // Sound: Atomic<UInt32> has a UInt32's layout; the kernel only compares and sleeps.
        UnsafeMutableRawPointer(owners[page]).assumingMemoryBound(to: UInt32.self)
    }

    /// Gives `page`'s memory back if `frame` still owns it. The punch also unmaps the page from
    /// the application's view.
    func release(_ page: Int, frame: UInt32) {
        let word = owners[page]
        guard word.pointee.compareExchange(expected: frame + 1, desired: Self.releasing, ordering: .acquiringAndReleasing).exchanged else {
            return
        }
        // Relaxed: the owner exchange above orders it; `deactivate` only reads it as a hint
        installed[page].pointee.store(0, ordering: .relaxed)
        // Relaxed: a flag that orders nothing; a release racing with `retire` may punch its page either way
        if retiring.load(ordering: .relaxed) {
            endRelease(page)
            return
        }
        #if DEBUG
        duringRelease.run()
        #endif
        do {
            try Syscalls.madvise(engineView + page << SwapPage.shift, length: SwapPage.size, advice: cus_MADV_REMOVE())
        } catch {
            trap("cannot punch out page \(page) of a transparent region: \(error)")
        }
        // Relaxed: the punch unmapped both views; the owner exchange below publishes it
        engineMapped[page].pointee.store(0, ordering: .relaxed)
        endRelease(page)
    }

    /// Counts a folio placed here as freed (its page released first); wakes a
    /// `waitUntilDrained` when it was the last.
    func folioFreed() {
        if liveFolios.subtract(1, ordering: .releasing).newValue == 0 { drained.wake() }
    }

    /// Sleeps until no folio placed here is live, at most `timeoutNanoseconds`; true if none is.
    func waitUntilDrained(timeoutNanoseconds: UInt64) -> Bool {
        let deadline = cus_monotonic_ns() + timeoutNanoseconds
        drained.startWatching()
        defer { drained.stopWatching() }
        while true {
            let generation = drained.generation
            if liveFolios.load(ordering: .acquiring) == 0 { return true }
            if cus_monotonic_ns() >= deadline { return false }
            drained.wait(after: generation, deadline: deadline)
        }
    }

    /// Stops giving page memory back page by page: the whole window goes at once when it is
    /// released (see `retiring`).
    func retire() { retiring.store(true, ordering: .releasing) }

    /// The frame + 1 owning `page`, 0 if none, `releasing` while its memory is punched out.
    func owner(_ page: Int) -> UInt32 {
        let word = owners[page].pointee.load(ordering: .acquiring)
        return word == Self.releasingWatched ? Self.releasing : word
    }

    /// The discard clock now: what a handler thread notes before it reads a fault message (see
    /// `discarded(_:after:)`).
    func readDiscardClock() -> UInt64 {
        // Relaxed: the read happens before the message's read, which happens before whatever
        // lets its thread go on and discard the page; coherence alone keeps that discard's
        // tick out of what this load sees
        discardClock.load(ordering: .relaxed)
    }

    /// Records that `page` was discarded (its page-table entry cleared). Caller holds the
    /// page's page-table lock.
    func noteDiscard(_ page: Int) {
        // Relaxed: only counts (see `readDiscardClock`); the page's word is read under the
        // page-table lock the caller holds
        let tick = discardClock.add(1, ordering: .relaxed).newValue
        discardedAt[page].pointee.store(tick, ordering: .relaxed)  // Relaxed: as above
    }

    /// Whether `page` was discarded after the discard clock read `clock`: a fault message read
    /// after that look may be older than the discard, and its thread may have gone on since
    /// (see `TransparentFaultResolver.resolveOnce`). Caller holds the page's page-table lock.
    func discarded(_ page: Int, after clock: UInt64) -> Bool {
        discardedAt[page].pointee.load(ordering: .relaxed) > clock  // Relaxed: under the page-table lock
    }

    /// Records that the application's view maps `page` now.
    @inline(__always)
    func markInstalled(_ page: Int) { installed[page].pointee.store(1, ordering: .releasing) }

    /// Whether the application's view maps `page` (as far as the last install or unmap says).
    @inline(__always)
    func isInstalled(_ page: Int) -> Bool { installed[page].pointee.load(ordering: .acquiring) != 0 }

    /// Unmaps `page` from the application's view (the engine's view and the data stay): its next
    /// access faults. Swap-out calls it before writing a page, so no store can land after the
    /// write started.
    func unmapFromApp(_ page: Int) {
        installed[page].pointee.store(0, ordering: .releasing)
        do {
            try Syscalls.madvise(appAddress(page), length: SwapPage.size, advice: cus_MADV_DONTNEED())
        } catch {
            trap("cannot unmap page \(page) of a transparent region: \(error)")
        }
    }

    /// `unmapFromApp`, the unmap gathered in `batch`: for callers whose unmap orders nothing but
    /// that it happens before they return (see `UnmapBatch`).
    func unmapFromApp(_ page: Int, into batch: inout UnmapBatch) {
        installed[page].pointee.store(0, ordering: .releasing)
        batch.add(appAddress(page), length: SwapPage.size)
    }

    /// Access tracking without hardware bits (the second-chance scheme of classic pagers): if
    /// the application maps `page`, unmap it (in `batch`) and report true — it may have been
    /// used since it was mapped; its next touch is a minor fault that marks the folio
    /// referenced. The unmap may land late (see `UnmapBatch`): a touch before it is one the scan
    /// did not see, as a touch just before the scan would be.
    func deactivate(_ page: Int, into batch: inout UnmapBatch) -> Bool {
        guard installed[page].pointee.exchange(0, ordering: .acquiringAndReleasing) != 0 else { return false }
        batch.add(appAddress(page), length: SwapPage.size)
        return true
    }
}
