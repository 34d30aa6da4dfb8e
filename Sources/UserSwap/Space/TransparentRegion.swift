import Dispatch
import Foundation

/// Swappable memory used through plain loads and stores: `bytes` is an ordinary mapping that any
/// thread may read and write, while the engine keeps at most the space's budget of it in RAM.
/// Made by `SwapSpace.makeTransparentRegion(bytes:)`.
///
/// Behind it is an explicit region whose pages live in a memfd window (`FrameWindow`) that the
/// application maps too; a userfaultfd reports touches of pages it does not map, and
/// `TransparentFaultHandler` brings them in through the same swap cache, reclaim and devices as
/// pins. Pins work on the same pages (`pin(_:for:)`).
///
/// Who serves the faults is the region's `FaultService`: handler threads (the default), or the
/// faulting thread itself. Kernel code may touch the memory too (`read(2)` into it) with handler
/// threads, when the process may handle kernel faults (`handlesKernelFaults`; root, or the
/// sysctl `vm.unprivileged_userfaultfd=1`).
///
/// The memory is valid until the region is released: release it only when no thread uses it
/// any more. Faults already in flight at release are resolved first, and the mapping stays for
/// a second after release so that their threads finish their accesses.
public final class TransparentRegion: @unchecked Sendable {
    /// The start of the memory.
    public let base: UnsafeMutableRawPointer
    /// The size in 4 KiB pages.
    public let pageCount: Int
    /// Who resolves the region's faults.
    public let faultService: FaultService
    let region: Region
    let window: FrameWindow
    let resolver: TransparentFaultResolver
    private let handler: TransparentFaultHandler?
    private let routerSlot: Int?
    /// The region's slot in `TransparentCrashGuard` (nil: the table was full).
    private let crashGuardSlot: Int?

    /// Who resolves the faults of a transparent region.
    public enum FaultService: Sendable, Equatable {
        /// `count` threads serve the region's userfaultfd; the faulting thread sleeps in the
        /// kernel until one has brought the page in. Kernel code touching the region (a
        /// `read(2)` into it) is served too, where the process may handle kernel faults.
        case handlerThreads(Int)
        /// The faulting thread resolves its own fault, from a SIGBUS handler
        /// (`UFFD_FEATURE_SIGBUS`): no thread switch, the fastest way, and it needs no
        /// privilege. Kernel code touching a page that is not mapped gets EFAULT instead (a
        /// `read(2)` into the region must go to pages touched or pinned just before). The
        /// process's SIGBUS handler is UserSwap's; it passes on the signals that are not its own
        /// to the handler installed before it.
        case faultingThread
    }

    /// A userfaultfd for the region's faults (queued, or SIGBUS to the faulting thread with
    /// `signals`); its failure as the engine's error.
    private static func openUserFaultFD(signals: Bool) throws(SwapError) -> UserFaultFD {
        do {
            return try UserFaultFD(signals: signals)
        } catch {
            throw SwapError(error)
        }
    }

    init(region: Region, window: FrameWindow, faults: FaultService) throws(SwapError) {
        self.region = region
        self.window = window
        faultService = faults
        base = window.appView
        pageCount = region.pageCount
        switch faults {
        case .handlerThreads(let count):
            resolver = try TransparentFaultResolver(region: region, window: window, uffd: Self.openUserFaultFD(signals: false))
            handler = try TransparentFaultHandler(resolver: resolver, threads: count)
            routerSlot = nil
        case .faultingThread:
            resolver = try TransparentFaultResolver(region: region, window: window, uffd: Self.openUserFaultFD(signals: true))
            handler = nil
            routerSlot = try SignalFaultRouter.shared.add(resolver)
        }
        crashGuardSlot = TransparentCrashGuard.shared.add(resolver)
    }

    deinit {
        if let crashGuardSlot { TransparentCrashGuard.shared.remove(crashGuardSlot) }
        handler?.stop()
        if let routerSlot { SignalFaultRouter.shared.remove(routerSlot) }
        resolver.uffd.unregister(resolver.appRange)
        resolver.uffd.unregister(resolver.engineRange)
        window.retire()
        region.discardAll()
        // Folios still busy elsewhere (a write-back finishing) are freed within moments; the
        // window must outlive them: sleep until the last is freed. If one never goes (a pin
        // leaked), keep the window mapped.
        guard window.waitUntilDrained(timeoutNanoseconds: 10_000_000_000) else { return }
        // The region leaves the reverse map now, not when its last reference goes: a thread of
        // the engine may hold it a moment longer (a hand-over worker that resolved a fault, its
        // resolver), and the window's slot is free for the next region from the line below. A
        // walk over the regions (the invariant walker, swapoff) must not meet this one then,
        // with a window counted 0 folios where the slot's new window has its own.
        region.engine.reverseMap.remove(id: region.id)
        region.engine.allocator.windows.remove(window)
        // A thread woken from its last fault may not have run yet to finish its access: the
        // mapping stays a moment longer (its RAM is no longer counted in the budget).
        let window = window
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(1)) { withExtendedLifetime(window) {} }
    }

    /// The memory, as a buffer.
    public var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: base, count: byteCount) }

    /// The size in bytes: `pageCount` whole pages.
    public var byteCount: Int { pageCount << SwapPage.shift }

    /// Whether kernel code touching the memory (a `read(2)` into it) is served; false when the
    /// process may only handle faults from user code (then such calls fail with EFAULT on pages
    /// not mapped yet).
    public var handlesKernelFaults: Bool { resolver.uffd.handlesKernelFaults }

    /// Whether first stores are tracked through write protection (pages read back from swap
    /// and never written are dropped without a write); without it every mapped page is dirty.
    public var tracksWrites: Bool { resolver.uffd.supportsWriteProtect }

    /// The last fault that could not be resolved, if any (its thread got SIGBUS).
    public var lastFaultError: SwapError? { resolver.lastError.withLock { $0 } }

    /// Pins a page, as for an explicit region: the same page the application sees.
    public func pin(_ page: Int, for access: PageAccess = .write) throws(SwapError) -> Pin {
        try region.pin(page, for: access)
    }

    /// Moves the resident pages of `pages` to swap now (see `Region.swapOut(pages:)`).
    @discardableResult
    public func swapOut(pages: Range<Int>) throws(SwapError) -> Int {
        try region.swapOut(pages: pages)
    }

    /// Frees `pages`: they read as zeroes again.
    public func discard(pages: Range<Int>) throws(SwapError) {
        try region.discard(pages: pages)
    }

    /// Where `page` is now, as for an explicit region.
    public func state(ofPage page: Int) -> Region.PageState { region.state(ofPage: page) }

    /// Unmaps `pages` from the application's view, keeping their data in memory: the next touch
    /// of each is a minor fault. (What reclaim does to learn whether a page is still used.)
    public func deactivate(pages: Range<Int>) throws(SwapError) {
        try region.checkPage(pages.lowerBound)
        if !pages.isEmpty { try region.checkPage(pages.upperBound - 1) }
        var unmaps = UnmapBatch()
        defer { unmaps.flush() }
        for page in pages { window.unmapFromApp(page, into: &unmaps) }
    }

    /// Maps `pages` into the application's view now, as touching them would (for writing: no
    /// write-protect fault follows), so that kernel code can use them without a fault — what
    /// a region served on its faulting thread needs before a `read(2)` into it. Best effort
    /// under memory pressure: reclaim may unmap a page again before the kernel touches it.
    public func prefault(pages: Range<Int>, for access: PageAccess = .write) throws(SwapError) {
        try region.checkPage(pages.lowerBound)
        if !pages.isEmpty { try region.checkPage(pages.upperBound - 1) }
        var zaps = UnmapBatch()
        defer { zaps.flush() }
        for page in pages {
            try resolver.resolveRetrying(.init(page: page, write: access == .write, protect: false), wake: true, zaps: &zaps)
        }
    }

    /// Starts bringing `pages` (any order, duplicates allowed) into memory without waiting,
    /// their reads submitted together, as for an explicit region (`Region.prefetch(pages:)`):
    /// their faults then find them in the swap cache. Returns the pages it started to read.
    @discardableResult
    public func prefetch(pages: some Sequence<Int>) throws(SwapError) -> Int {
        try region.prefetch(pages: pages)
    }

    /// Readahead advice, as for an explicit region (`Region.advise(_:pages:)`).
    public func advise(_ advice: Region.Advice, pages: Range<Int>? = nil) throws(SwapError) {
        try region.advise(advice, pages: pages)
    }
}
