import UserSwap

/// Where a workload's pages live: a UserSwap region (`RegionPageStore`, the engine's explicit
/// API) or plain anonymous memory that the kernel swaps (`AnonymousPageStore`, the `kernel`
/// mode of the benchmarks). The workloads (`PatternedPages`, `PagedHashTable`) are generic over
/// it, so the same code runs on both and a number from one compares with a number from the
/// other.
///
/// The workloads are specialized for each store (they are generic, not existential, all the way
/// down to the timing loop: see `WorkloadPhase`), so `withPage` inlines into the access.
public protocol PageStore: Sendable {
    /// What a page access can fail with: `SwapError` for a region, `Never` for plain memory.
    associatedtype Failure: Error

    /// Pages of 4 KiB.
    var pageCount: Int { get }

    /// Runs `body` on `page`'s 4 KiB while the page is resident: the store brings it in first
    /// (a swap-in or a zero fill), before `body` runs, so that `body` may take a workload lock
    /// without holding it across a fault. `.write` says that `body` may change the bytes.
    func withPage<R>(_ page: Int, for access: PageAccess, _ body: (UnsafeMutableRawBufferPointer) -> R) throws(Failure) -> R

    /// Asks for `pages` (ascending, no repeats) to be brought in ahead of their accesses, as a
    /// program that knows its next accesses would (`multiget`): a region submits all their
    /// reads into its swap cache at once and returns, plain memory gets
    /// `madvise(MADV_WILLNEED)` on each run of consecutive pages (`forEachRun`).
    func prefetch(_ pages: [Int]) throws(Failure)

    /// Whether `page` was certainly never touched (it reads as zeroes and holds no memory).
    /// Verification skips such pages so that it does not fault them in; a store that cannot
    /// tell answers `false`.
    func isUntouched(_ page: Int) -> Bool
}

extension PageStore {
    /// Calls `body` with each run of consecutive pages of `pages` (ascending, no repeats), in
    /// order: `[3, 4, 5, 9]` is `3..<6`, then `9..<10`.
    @inline(__always)
    public static func forEachRun<E: Error>(_ pages: [Int], _ body: (Range<Int>) throws(E) -> Void) throws(E) {
        var index = 0
        while index < pages.count {
            let start = pages[index]
            var end = start + 1
            index += 1
            while index < pages.count && pages[index] == end {
                end += 1
                index += 1
            }
            try body(start..<end)
        }
    }
}

/// A UserSwap region: each access pins the page (faulting it in through the engine) for the
/// duration of `body`.
public struct RegionPageStore: PageStore {
    public let region: Region

    public init(region: Region) {
        self.region = region
    }

    /// A fresh region of `pages` pages in `space`, swapped in folios of `folioSize` bytes.
    public init(space: SwapSpace, pages: Int, folioSize: Int = SwapPage.size) throws(SwapError) {
        region = try space.makeRegion(bytes: pages * 4096, folioSize: folioSize)
    }

    public var pageCount: Int { region.pageCount }

    @inline(__always)
    public func withPage<R>(_ page: Int, for access: PageAccess, _ body: (UnsafeMutableRawBufferPointer) -> R) throws(SwapError) -> R {
        let pin = try region.pin(page, for: access)
        return body(pin.bytes)
    }

    /// `Region.prefetch(pages:)` on the whole batch: every read submitted to the device at once
    /// (io_uring: one `io_uring_enter`), nothing waited for; each lookup's pin then waits only
    /// for its own page's read, if it is still in flight.
    public func prefetch(_ pages: [Int]) throws(SwapError) {
        try region.prefetch(pages: pages)
    }

    public func isUntouched(_ page: Int) -> Bool {
        region.state(ofPage: page) == .untouched
    }
}
