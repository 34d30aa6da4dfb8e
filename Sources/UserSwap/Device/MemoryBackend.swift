import CUserSwap
import Glibc
import Synchronization

/// A swap device in anonymous memory: the stand-in for a disk in tests and benchmarks (the
/// kernel's equivalent is a zram or brd block device). Pages live in one `MAP_NORESERVE` mapping,
/// so a 64 GiB device costs address space only until pages are written, and a discard gives the
/// memory back with `MADV_DONTNEED`.
///
/// It counts what it moves, so that tests of the layers above can prove claims such as "exactly
/// one read per swapped-in entry". Transfers to different pages may run concurrently from any
/// thread; two transfers to the same page at once are a bug in the caller (the swap cache holds
/// the folio lock across I/O to a slot), as they would be on a disk.
public final class MemoryBackend: SwapBackend {
    /// Pages in the device, header included. Page 0 is never transferred, as on a file.
    public let pageCount: Int
    /// The pages; unmapped when the backend goes away.
    private let mapping: _AnonymousMapping

    // The counters are statistics read by tests after the transfers they count have returned;
    // every update is relaxed because no other memory is published through them.
    private let pagesRead = Atomic<Int>(0)
    private let readCalls = Atomic<Int>(0)
    private let pagesWritten = Atomic<Int>(0)
    private let writeCalls = Atomic<Int>(0)
    private let pagesDiscarded = Atomic<Int>(0)

    /// A device of `pageCount` pages (header included), all reading as zeros.
    ///
    /// Traps if the address space cannot be reserved: with MAP_NORESERVE only a size beyond the
    /// process's address-space limit fails, which is a configuration bug in the test or benchmark.
    public init(pageCount: Int) {
        require(pageCount >= 1, "a memory device needs at least its header page")
        self.pageCount = pageCount
        self.mapping = _AnonymousMapping(byteCount: pageCount * SwapPage.size)
    }

    /// Pages in memory: a read is a copy (the kernel's zram and brd are `SWP_SYNCHRONOUS_IO`).
    public var isSynchronous: Bool { true }

    /// True: a read is a copy and two relaxed counters.
    public var readsInSignalHandler: Bool { true }

    /// Pages read so far (a vectored read of 3 pages counts 3).
    public var readCount: Int { pagesRead.load(ordering: .relaxed) }  // Relaxed: a statistic
    /// Pages written so far.
    public var writeCount: Int { pagesWritten.load(ordering: .relaxed) }  // Relaxed: a statistic
    /// Read calls so far (a vectored read counts once).
    public var readCallCount: Int { readCalls.load(ordering: .relaxed) }  // Relaxed: a statistic
    /// Write calls so far (a vectored write counts once).
    public var writeCallCount: Int { writeCalls.load(ordering: .relaxed) }  // Relaxed: a statistic
    /// Pages discarded so far.
    public var discardCount: Int { pagesDiscarded.load(ordering: .relaxed) }  // Relaxed: a statistic

    /// Sets every counter back to zero, between the phases of a test.
    public func resetCounters() {
        pagesRead.store(0, ordering: .relaxed)  // Relaxed: statistics, reset between test phases with no I/O in flight
        readCalls.store(0, ordering: .relaxed)  // Relaxed: as above
        pagesWritten.store(0, ordering: .relaxed)  // Relaxed: as above
        writeCalls.store(0, ordering: .relaxed)  // Relaxed: as above
        pagesDiscarded.store(0, ordering: .relaxed)  // Relaxed: as above
    }

    // MARK: Transfers

    public func read(into buffer: UnsafeMutableRawBufferPointer, atPage page: Int) throws(SwapError) {
        let pages = checkedRange(bytes: buffer.count, atPage: page)
        copyOut(into: buffer, from: pages.lowerBound)
        count(pages.count, pages: pagesRead, calls: readCalls)
    }

    public func write(_ buffer: UnsafeRawBufferPointer, atPage page: Int) throws(SwapError) {
        let pages = checkedRange(bytes: buffer.count, atPage: page)
        copyIn(buffer, at: pages.lowerBound)
        count(pages.count, pages: pagesWritten, calls: writeCalls)
    }

    public func read(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, atPage page: Int) throws(SwapError) {
        let pages = checkedRange(bytes: buffers.reduce(0) { $0 + $1.count }, atPage: page)
        var next = pages.lowerBound
        for buffer in buffers {
            require(buffer.count % SwapPage.size == 0, "a vectored read buffer of \(buffer.count) bytes is not whole pages")
            copyOut(into: buffer, from: next)
            next += buffer.count / SwapPage.size
        }
        count(pages.count, pages: pagesRead, calls: readCalls)
    }

    public func write(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, atPage page: Int) throws(SwapError) {
        let pages = checkedRange(bytes: buffers.reduce(0) { $0 + $1.count }, atPage: page)
        var next = pages.lowerBound
        for buffer in buffers {
            require(buffer.count % SwapPage.size == 0, "a vectored write buffer of \(buffer.count) bytes is not whole pages")
            copyIn(buffer, at: next)
            next += buffer.count / SwapPage.size
        }
        count(pages.count, pages: pagesWritten, calls: writeCalls)
    }

    /// Gives the memory behind `pages` back to the system; they read as zeros afterwards. Only
    /// whole system pages inside the range are released (with 16 KiB system pages the 4 KiB
    /// pages at the edges are zeroed in place instead), so neighbouring swap pages are untouched.
    public func discard(pages: Range<Int>) throws(SwapError) {
        guard !pages.isEmpty else { return }
        require(
            pages.lowerBound >= 1 && pages.upperBound <= pageCount,
            "discard of pages \(pages) outside the device's 1..<\(pageCount)")
        let start = pages.lowerBound * SwapPage.size
        let end = pages.upperBound * SwapPage.size
        let systemPage = Syscalls.pageSize
        let alignedStart = (start + systemPage - 1) / systemPage * systemPage
        let alignedEnd = end / systemPage * systemPage
        if alignedStart < alignedEnd {
            mapping.zero(start..<alignedStart)
            mapping.release(alignedStart..<alignedEnd)
            mapping.zero(alignedEnd..<end)
        } else {
            mapping.zero(start..<end)
        }
        pagesDiscarded.add(pages.count, ordering: .relaxed)  // Relaxed: a statistic
    }

    // MARK: Helpers

    private func copyOut(into buffer: UnsafeMutableRawBufferPointer, from page: Int) {
        guard let destination = buffer.baseAddress else { return }
        // In bounds: checkedRange put the buffer's pages inside the mapping.
        destination.copyMemory(from: mapping.base + page * SwapPage.size, byteCount: buffer.count)
    }

    private func copyIn(_ buffer: UnsafeRawBufferPointer, at page: Int) {
        guard let source = buffer.baseAddress else { return }
        // In bounds: checkedRange put the buffer's pages inside the mapping.
        (mapping.base + page * SwapPage.size).copyMemory(from: source, byteCount: buffer.count)
    }

    private func count(_ pages: Int, pages counter: borrowing Atomic<Int>, calls: borrowing Atomic<Int>) {
        counter.add(pages, ordering: .relaxed)  // Relaxed: a statistic
        calls.add(1, ordering: .relaxed)  // Relaxed: a statistic
    }

    /// The pages a transfer of `bytes` at `page` covers; the same contract as `FileBackend`.
    private func checkedRange(bytes: Int, atPage page: Int) -> Range<Int> {
        checkedTransferRange(bytes: bytes, atPage: page, pageCount: pageCount)
    }
}

/// An anonymous, private, MAP_NORESERVE read-write mapping, unmapped in `deinit`. The one place
/// the memory backend's raw pointer lives.
struct _AnonymousMapping: ~Copyable {
    /// Start of the mapping; fixed for its whole life.
    let base: UnsafeMutableRawPointer
    let byteCount: Int

    init(byteCount: Int) {
        do throws(Errno) {
            base = try Syscalls.mmap(
                length: byteCount, protection: PROT_READ | PROT_WRITE,
                flags: MAP_PRIVATE | MAP_ANONYMOUS | cus_MAP_NORESERVE())
        } catch {
            trap("cannot map \(SwapHeader.describe(bytes: Int64(byteCount))) for a memory swap device: \(error)")
        }
        self.byteCount = byteCount
    }

    deinit { Syscalls.munmap(base, length: byteCount) }

    /// Fills `bytes` (offsets into the mapping) with zeros.
    func zero(_ bytes: Range<Int>) {
        guard !bytes.isEmpty else { return }
        require(bytes.lowerBound >= 0 && bytes.upperBound <= byteCount, "zeroing bytes \(bytes) of a \(byteCount)-byte mapping")
        (base + bytes.lowerBound).initializeMemory(as: UInt8.self, repeating: 0, count: bytes.count)
    }

    /// Drops the memory behind `bytes` (system-page aligned); a private anonymous mapping reads
    /// zeros there afterwards.
    func release(_ bytes: Range<Int>) {
        require(bytes.lowerBound >= 0 && bytes.upperBound <= byteCount, "releasing bytes \(bytes) of a \(byteCount)-byte mapping")
        require(
            bytes.lowerBound % Syscalls.pageSize == 0 && bytes.upperBound % Syscalls.pageSize == 0,
            "releasing bytes \(bytes): not aligned to \(Syscalls.pageSize)-byte system pages")
        do throws(Errno) {
            try Syscalls.madvise(base + bytes.lowerBound, length: bytes.count, advice: cus_MADV_DONTNEED())
        } catch {
            // MADV_DONTNEED on our own aligned private mapping cannot fail but for our bug.
            trap("madvise(MADV_DONTNEED) failed: \(error)")
        }
    }
}

// The mapping's address never changes and the memory behind it is shared by design: the
// backend's contract gives each page to one transfer at a time (the swap cache's folio lock),
// so concurrent transfers touch disjoint bytes.
extension _AnonymousMapping: @unchecked Sendable {}
