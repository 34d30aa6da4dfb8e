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
/// Kernel code may touch the memory too (`read(2)` into it), when the process may handle kernel
/// faults (`handlesKernelFaults`; root, or the sysctl `vm.unprivileged_userfaultfd=1`).
///
/// The memory is valid until the region is released: release it only when no thread uses it
/// any more. Faults already in flight at release are resolved first, and the mapping stays for
/// a second after release so that their threads finish their accesses.
public final class TransparentRegion: @unchecked Sendable {
    /// The start of the memory.
    public let base: UnsafeMutableRawPointer
    public let pageCount: Int
    let region: Region
    let window: FrameWindow
    let handler: TransparentFaultHandler

    init(region: Region, window: FrameWindow, handlers: Int) throws(SwapError) {
        self.region = region
        self.window = window
        base = window.appView
        pageCount = region.pageCount
        handler = try TransparentFaultHandler(region: region, window: window, threads: handlers)
    }

    deinit {
        handler.stop()
        window.retire()
        region.discardAll()
        // Folios still busy elsewhere (a write-back finishing) are freed within moments; the
        // window must outlive them. If one never goes (a pin leaked), keep the window mapped.
        let deadline = Date().addingTimeInterval(10)
        while window.liveFolios.load(ordering: .acquiring) > 0 && Date() < deadline { usleep(1000) }
        guard window.liveFolios.load(ordering: .acquiring) == 0 else { return }
        region.engine.windows.remove(window)
        // A thread woken from its last fault may not have run yet to finish its access: the
        // mapping stays a moment longer (its RAM is no longer counted in the budget).
        let window = window
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(1)) { withExtendedLifetime(window) {} }
    }

    /// The memory, as a buffer.
    public var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: base, count: byteCount) }

    public var byteCount: Int { pageCount << SwapPage.shift }

    /// Whether kernel code touching the memory (a `read(2)` into it) is served; false when the
    /// process may only handle faults from user code (then such calls fail with EFAULT on pages
    /// not mapped yet).
    public var handlesKernelFaults: Bool { handler.uffd.handlesKernelFaults }

    /// Whether first stores are tracked through write protection (pages read back from swap
    /// and never written are dropped without a write); without it every mapped page is dirty.
    public var tracksWrites: Bool { handler.uffd.supportsWriteProtect }

    /// The last fault that could not be resolved, if any (its thread got SIGBUS).
    public var lastFaultError: SwapError? { handler.lastError.withLock { $0 } }

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

    public func state(ofPage page: Int) -> Region.PageState { region.state(ofPage: page) }

    /// Unmaps `pages` from the application's view, keeping their data in memory: the next touch
    /// of each is a minor fault. (What reclaim does to learn whether a page is still used.)
    public func deactivate(pages: Range<Int>) throws(SwapError) {
        try region.checkPage(pages.lowerBound)
        if !pages.isEmpty { try region.checkPage(pages.upperBound - 1) }
        for page in pages { window.unmapFromApp(page) }
    }

    /// Readahead advice, as for an explicit region (`Region.advise(_:pages:)`).
    public func advise(_ advice: Region.Advice, pages: Range<Int>? = nil) throws(SwapError) {
        try region.advise(advice, pages: pages)
    }
}
