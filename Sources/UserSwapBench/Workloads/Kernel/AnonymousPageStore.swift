import Glibc
import Synchronization
import UserSwap

/// Plain anonymous memory (one `mmap` of `MAP_PRIVATE | MAP_ANONYMOUS`), accessed through the
/// pointer with no UserSwap engine involved: the `kernel` mode of the workload benchmarks. The
/// kernel swaps these pages when the process runs in a memory cgroup whose limit is below the
/// data (`bench/kernel-compare` sets that up), so the workload measures the kernel's own swap
/// with the same code, patterns, seeds and checks as UserSwap's explicit API.
///
/// Transparent huge pages are refused (`MADV_NOHUGEPAGE`) unless asked for: the kernel then
/// swaps 4 KiB pages, the unit UserSwap's regions use by default, and a run does not depend on
/// the machine's THP setting.
public final class AnonymousPageStore: PageStore {
    public typealias Failure = Never

    public let pageCount: Int
    public let hugePages: Bool
    private let mapping: _AnonymousMapping

    /// Maps `pages` pages. Throws `WorkloadError` when the kernel refuses the mapping.
    public init(pages: Int, hugePages: Bool = false) throws(WorkloadError) {
        require(pages >= 1, "a page store of \(pages) pages; at least 1")
        pageCount = pages
        self.hugePages = hugePages
        mapping = try _AnonymousMapping(bytes: pages * 4096, hugePages: hugePages)
    }

    @inline(__always)
    public func withPage<R>(_ page: Int, for access: PageAccess, _ body: (UnsafeMutableRawBufferPointer) -> R) -> R {
        require(page >= 0 && page < pageCount, "page \(page) outside 0..<\(pageCount)")
        let start = mapping.base + page * 4096
        // Fault the page in here, as a region's pin does, before `body` takes the workload's
        // page lock: a relaxed atomic load of its first word, which the optimizer must keep.
        // It may meet another thread's plain store to that word under the page lock; an
        // aligned 8-byte load cannot tear, and its value is thrown away. A read fault maps an
        // exclusive swapped-in page writable (`do_swap_page`), so a write in `body` does not
        // fault again; and if reclaim takes the page back in between, `body` simply faults.
        _ = start.assumingMemoryBound(to: Atomic<UInt64>.self).pointee.load(ordering: .relaxed)
        return body(UnsafeMutableRawBufferPointer(start: start, count: 4096))
    }

    /// `madvise(MADV_WILLNEED)` on each run of consecutive pages: for swapped-out anonymous
    /// memory the kernel starts the reads (`swapin_readahead` per page, without waiting) and
    /// returns, so one thread has a whole batch of reads in flight. Advice: its result is not
    /// checked, since a failure only leaves the pages for their faults.
    public func prefetch(_ pages: [Int]) {
        Self.forEachRun(pages) { run in
            require(run.lowerBound >= 0 && run.upperBound <= pageCount, "pages \(run) outside 0..<\(pageCount)")
            _ = madvise(mapping.base + run.lowerBound * 4096, run.count * 4096, MADV_WILLNEED)
        }
    }

    /// The kernel knows (`mincore`), but asking costs a system call per page: answer "maybe".
    public func isUntouched(_ page: Int) -> Bool { false }
}

/// The mapping's address and size never change after `init`, and it lives until `deinit`;
/// what threads do to the bytes is the workloads' business (their page locks).
extension AnonymousPageStore: @unchecked Sendable {}

/// The mapping of an `AnonymousPageStore`, unmapped by `deinit`. Non-copyable so that exactly
/// one owner unmaps it.
///
/// Direct libc calls (`mmap`, `madvise`, `munmap`) rather than the engine's `Syscalls`, which are
/// internal to the engine: this memory is deliberately outside UserSwap.
struct _AnonymousMapping: ~Copyable {
    let base: UnsafeMutableRawPointer
    let bytes: Int

    init(bytes: Int, hugePages: Bool) throws(WorkloadError) {
        require(bytes > 0 && bytes % 4096 == 0, "a mapping of \(bytes) bytes: whole 4 KiB pages, at least one")
        guard let address = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            address != UnsafeMutableRawPointer(bitPattern: -1)
        else {
            throw WorkloadError("cannot map \(ByteSize.format(Int64(bytes))) of anonymous memory: \(String(cString: strerror(errno)))")
        }
        base = address
        self.bytes = bytes
        // Advice only: without it the run still works, with whatever the THP setting gives.
        _ = madvise(address, bytes, hugePages ? MADV_HUGEPAGE : MADV_NOHUGEPAGE)
    }

    deinit {
        // Our own mapping of our own size: munmap can only fail on our bug.
        let result = munmap(base, bytes)
        require(result == 0, "munmap of \(bytes) bytes failed: \(String(cString: strerror(errno)))")
    }
}
