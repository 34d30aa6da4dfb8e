import Synchronization
import UserSwap

/// A UserSwap transparent region used as plain memory: the `transparent` mode of the workload
/// benchmarks. Accesses are ordinary loads and stores through the region's pointer; the engine
/// serves the faults (userfaultfd), so the workload code is the same as over the kernel's swap.
public final class TransparentPageStore: PageStore {
    public typealias Failure = Never

    public let region: TransparentRegion
    private let base: UnsafeMutableRawPointer

    /// A fresh transparent region of `pages` pages in `space`, its faults served by `faults`.
    public init(space: SwapSpace, pages: Int, faults: TransparentRegion.FaultService = .handlerThreads(4)) throws(SwapError) {
        region = try space.makeTransparentRegion(bytes: pages * 4096, faults: faults)
        base = region.base
    }

    public var pageCount: Int { region.pageCount }

    @inline(__always)
    public func withPage<R>(_ page: Int, for access: PageAccess, _ body: (UnsafeMutableRawBufferPointer) -> R) -> R {
        require(page >= 0 && page < pageCount, "page \(page) outside 0..<\(pageCount)")
        let start = base + page * 4096
        // Fault the page in before `body` takes the workload's page lock, as a pin does (see
        // `AnonymousPageStore`). A write touches with a compare-and-exchange of the word with
        // itself, which the processor performs as a write: one write fault instead of a read
        // fault followed by a write-protect fault. It cannot lose another thread's store.
        let word = start.assumingMemoryBound(to: Atomic<UInt64>.self)
        let value = word.pointee.load(ordering: .relaxed)  // Relaxed: only faults the page in; the page lock orders the data
        if access == .write {
            _ = word.pointee.compareExchange(expected: value, desired: value, ordering: .relaxed)  // Relaxed: as the load
        }
        return body(UnsafeMutableRawBufferPointer(start: start, count: 4096))
    }

    /// `TransparentRegion.prefetch(pages:)` on the whole batch (as `madvise(MADV_WILLNEED)` on
    /// the region's memory): every read submitted at once into the swap cache, and their
    /// faults find the pages there. Advice, as the kernel's: a failure leaves the pages for
    /// their faults to read.
    public func prefetch(_ pages: [Int]) {
        _ = try? region.prefetch(pages: pages)
    }

    public func isUntouched(_ page: Int) -> Bool {
        region.state(ofPage: page) == .untouched
    }
}

/// The region's pointer never changes; what threads do to the bytes is the workloads' business.
extension TransparentPageStore: @unchecked Sendable {}
