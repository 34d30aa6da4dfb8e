import Synchronization

/// Per-region readahead state (kernel: the VMA's `swap_readahead_info` and the global
/// `swapin_readahead_hits`): where the last missing fault was, the window used then, and how
/// many pages read ahead have been used since.
final class ReadaheadState: Sendable {
    /// The largest window, in pages: 1 MiB, the transfer at which this kind of disk reaches its
    /// sequential bandwidth (`bench device-limits`). The kernel's VMA readahead stops at 2^5
    /// pages, but its file readahead grows to the device's `ra_pages`; a sequential stream of
    /// swap needs the same, since at 32 pages the per-window wait, not the disk, is the limit.
    static let maxWindow = 256

    /// How far ahead of the window in use a trigger may read, in windows: the use of a
    /// window's trigger page submits one window, from the first page after it that is neither
    /// in memory nor being read, ending at most this many windows past the current one (the
    /// kernel's file readahead keeps one in flight). Since each trigger submits one window,
    /// a larger lead lets a stream catch up after a truncated window but does not build up a
    /// deeper pipeline. A deeper one (two windows in flight per stream) does not make `bench seq`
    /// faster, since a 4 KiB stream is bound by the disk's cost per page segment (see
    /// docs/PERFORMANCE.md, *Device limits*), and its top-ups split large-folio windows into
    /// smaller reads.
    static let asyncLead = 1

    /// Last faulting page << 16 | last window. Relaxed: a heuristic; racing faults of one region
    /// just blend their guesses.
    let last = Atomic<UInt64>(0)
    let hits = Atomic<Int>(0)
    let advice = Atomic<UInt8>(Region.Advice.normal.rawValue)

    /// Counts `pages` read ahead and used (a large folio mapped whole counts all its pages).
    func hit(_ pages: Int = 1) { hits.add(pages, ordering: .relaxed) }  // Relaxed: a heuristic

    /// The window for a missing fault at `page` (kernel: `__swapin_nr_pages`): hits + 2 rounded
    /// up to a power of two; with no hits, 2 only if the fault is next to the previous one, else
    /// 1 (no readahead); capped; never shrinking faster than half the previous window. `stride`
    /// is the distance between neighbouring faults: a large-folio region faults once per block.
    func window(for page: Int, stride: Int = 1) -> Int {
        switch Region.Advice(rawValue: advice.load(ordering: .relaxed)) {  // Relaxed: advice, a heuristic
        case .sequential: return Self.maxWindow
        case .random: return 1
        default: break
        }
        let previous = last.load(ordering: .relaxed)  // Relaxed: a heuristic; a racing fault sizes its own window
        let previousPage = Int(previous >> 16), previousWindow = Int(previous & 0xffff)
        let used = hits.exchange(0, ordering: .relaxed)  // Relaxed: a heuristic
        var pages = used + 2
        if pages == 2 {
            if page != previousPage + stride && page != previousPage - stride { pages = 1 }
        } else {
            pages = 1 << (Int.bitWidth - (pages - 1).leadingZeroBitCount)
        }
        pages = min(pages, Self.maxWindow)
        pages = max(pages, previousWindow / 2)
        last.store(UInt64(page) << 16 | UInt64(pages), ordering: .relaxed)  // Relaxed: a heuristic
        return pages
    }

    /// The next window of a stream whose trigger page `page` was just used (kernel:
    /// `get_next_ra_size`): four times the last window while it is small, then twice, capped;
    /// 0 for no readahead.
    func asyncWindow(at page: Int) -> Int {
        switch Region.Advice(rawValue: advice.load(ordering: .relaxed)) {  // Relaxed: advice, a heuristic
        case .sequential:
            last.store(UInt64(page) << 16 | UInt64(Self.maxWindow), ordering: .relaxed)  // Relaxed: a heuristic
            return Self.maxWindow
        case .random: return 0
        default: break
        }
        let previous = Int(last.load(ordering: .relaxed) & 0xffff)  // Relaxed: a heuristic
        let pages = Swift.min(Self.maxWindow, Swift.max(4, previous < Self.maxWindow / 16 ? 4 * previous : 2 * previous))
        last.store(UInt64(page) << 16 | UInt64(pages), ordering: .relaxed)  // Relaxed: a heuristic
        return pages
    }
}
