import Glibc
import Synchronization

/// Page-aligned pages that swap-ins read into before storing them into a transparent region's
/// memfd (see `FrameWindow.store`): a fixed pool, lent page by page, so that what it costs in
/// RSS is bounded (a reader that finds none free reads through the engine's view instead). A
/// loan is one compare-and-swap on a bitmap word, so a signal handler may take one (no
/// allocation, no lock). Aligned for `O_DIRECT`, so a device can read into them. Pages are
/// resident only once first lent.
final class BouncePages: @unchecked Sendable {
    let count: Int
    private let base: UnsafeMutableRawPointer
    /// Bit `i % 64` of word `i / 64` set while page `i` is lent.
    private let lent: _UnsafeAtomicArray<UInt64>

    /// `count` pages, a multiple of 64; nil when the system will not map them.
    init?(count: Int) {
        precondition(count > 0 && count % 64 == 0, "a pool of whole bitmap words")
        let bytes = count << SwapPage.shift
        guard let block = try? Syscalls.mmap(length: bytes, protection: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS)
        else { return nil }
        self.count = count
        base = block
        lent = _UnsafeAtomicArray(count: count / 64, initialValue: 0)
    }

    deinit { Syscalls.munmap(base, length: count << SwapPage.shift) }

    /// Lends a free page: its index, or nil when every page is lent.
    func borrow() -> Int? {
        for w in 0..<lent.count {
            let word = lent[w]
            // Relaxed: a first look; the exchange below orders the loan
            var bits = word.pointee.load(ordering: .relaxed)
            while bits != .max {
                let i = (~bits).trailingZeroBitCount
                let (done, now) = word.pointee.compareExchange(expected: bits, desired: bits | 1 << i, ordering: .acquiring)
                if done { return w * 64 + i }
                bits = now
            }
        }
        return nil
    }

    /// Takes back page `index` (lent by `borrow`).
    func giveBack(_ index: Int) {
        lent[index / 64].pointee.bitwiseAnd(~(1 << UInt64(index % 64)), ordering: .releasing)
    }

    /// The bytes of page `index`.
    func page(_ index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + index << SwapPage.shift, count: SwapPage.size)
    }

    /// Runs `body` with a lent page; nil, without running it, when every page is lent.
    @inline(__always)
    func withPage<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R? {
        guard let i = borrow() else { return nil }
        defer { giveBack(i) }
        return try body(page(i))
    }
}
