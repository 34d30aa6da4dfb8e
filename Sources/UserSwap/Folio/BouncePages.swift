import Glibc
import Synchronization

/// A few page-aligned pages a thread borrows for a moment, from any context: a claim is one
/// compare-and-swap on a bitmap, so a signal handler may take one (no allocation, no lock).
/// Aligned for `O_DIRECT`, so a device can read into one.
final class BouncePages: @unchecked Sendable {
    /// Pages in the pool: one word of the bitmap.
    static let count = 64
    private let base: UnsafeMutableRawPointer
    /// Bit `i` set while page `i` is borrowed.
    private let borrowed = Atomic<UInt64>(0)

    /// Nil when the system will not allocate the pages.
    init?() {
        var block: UnsafeMutableRawPointer?
        guard posix_memalign(&block, SwapPage.size, Self.count * SwapPage.size) == 0, let block else { return nil }
        base = block
    }

    deinit { free(base) }

    /// Runs `body` with a borrowed page; nil, without running it, when every page is borrowed.
    @inline(__always)
    func withPage<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R? {
        // Relaxed: a first look; the exchange below orders the claim
        var word = borrowed.load(ordering: .relaxed)
        while true {
            guard word != .max else { return nil }
            let i = (~word).trailingZeroBitCount
            let (done, now) = borrowed.compareExchange(expected: word, desired: word | 1 << i, ordering: .acquiring)
            if done {
                defer { borrowed.bitwiseAnd(~(1 << UInt64(i)), ordering: .releasing) }
                return try body(UnsafeMutableRawBufferPointer(start: base + i * SwapPage.size, count: SwapPage.size))
            }
            word = now
        }
    }
}
