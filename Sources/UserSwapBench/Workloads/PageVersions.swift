import Glibc
import Synchronization
import UserSwap

/// One 32-bit word per page, outside the swappable memory: the version of the page's latest
/// write (bits 0–30), and a lock bit (bit 31) held while a thread reads or writes the page's
/// bytes. 4 bytes per 4 KiB page (1 MiB per GiB of data) is the workload's whole record of what
/// every page must contain, so a read can check that it sees the latest write.
///
/// Version 0 means never written: the page must read as zeroes. Versions count up and skip 0
/// when they wrap (after 2^31 − 1 writes of one page).
///
/// The lock is a test-and-set spin lock that yields after a few tries: it is held for one fill
/// or check of 4 KiB (~0.1–1 µs) and never across a page fault (the caller pins first), so two
/// threads meet on it only when they touch the same page at the same moment.
public final class PageVersions {
    public let count: Int
    /// `count` words, allocated and initialized (to 0) by `init`, freed by `deinit`.
    private let words: UnsafeMutablePointer<Atomic<UInt32>>

    static let lockBit: UInt32 = 1 << 31
    static let versionMask: UInt32 = lockBit - 1

    public init(count: Int) {
        require(count >= 0, "versions of \(count) pages")
        self.count = count
        words = .allocate(capacity: max(1, count))
        for index in 0..<count { (words + index).initialize(to: Atomic(0)) }
    }

    deinit {
        words.deinitialize(count: count)
        words.deallocate()
    }

    @inline(__always)
    private func word(_ page: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        require(page >= 0 && page < count, "page \(page) outside 0..<\(count)")
        return words + page
    }

    /// Takes `page`'s lock and returns its version. Acquiring: the bytes the last holder wrote
    /// are visible to us.
    @inline(__always)
    public func lock(_ page: Int) -> UInt32 {
        let word = word(page)
        var tries = 0
        while true {
            // Relaxed: only a look; the compare-exchange below orders.
            let seen = word.pointee.load(ordering: .relaxed)
            if seen & Self.lockBit == 0,
                word.pointee.compareExchange(
                    expected: seen, desired: seen | Self.lockBit,
                    successOrdering: .acquiring, failureOrdering: .relaxed  // Relaxed on failure: the loop looks again
                ).exchanged
            {
                return seen
            }
            tries += 1
            // The holder may have been preempted mid-copy: give it the core.
            if tries >= 64 { sched_yield() }
        }
    }

    /// Releases `page`'s lock, setting its version. Releasing: publishes the bytes written
    /// under the lock to the next holder.
    @inline(__always)
    public func unlock(_ page: Int, version: UInt32) {
        require(version & Self.lockBit == 0, "a version has 31 bits")
        let word = word(page)
        // Relaxed: our own lock bit, which only we clear
        assert(word.pointee.load(ordering: .relaxed) & Self.lockBit != 0, "unlocking page \(page), which is not locked")
        word.pointee.store(version, ordering: .releasing)
    }

    /// The version of `page` when no thread holds its lock (between phases).
    public func version(_ page: Int) -> UInt32 {
        word(page).pointee.load(ordering: .acquiring) & Self.versionMask
    }

    /// The version after `version`: +1, skipping 0 (which means "never written").
    @inline(__always)
    public static func successor(of version: UInt32) -> UInt32 {
        let next = (version &+ 1) & versionMask
        return next == 0 ? 1 : next
    }
}

/// Every word is an `Atomic`, written only through `lock`/`unlock`; the pointer never changes
/// after `init` and the memory lives until `deinit`.
extension PageVersions: @unchecked Sendable {}
