/// Where a `SwappableArray`'s pages live: in segments, each a `Region`, that never move.
///
/// A region's page table is sized when it is made, so a region cannot grow in place, and
/// copying a grown array into a bigger region would read every swapped-out page back from its
/// device. Instead the array adds regions: segment 0 holds the pages the array was made with,
/// and segment k ≥ 1 holds `growthPages << (k - 1)` pages, so the capacity roughly doubles with
/// each segment (appending is amortized O(1)) and locating a page takes a few shifts:
///
/// ```
/// page:     0 … firstPages-1 | +0 … +G-1 | +G … +3G-1 | +3G … +7G-1 | …
/// segment:        0          |     1     |     2      |      3      | …
/// ```
///
/// A segment costs only its page table until its pages are touched (8 bytes per 4 KiB page), so
/// the unused part of the last segment costs at most about as much page table as the data has.
struct SwappableArrayLayout: Sendable, Equatable {
    /// Pages of segment 0 (at least 1).
    let firstPages: Int
    /// log2 of the pages of segment 1 (`growthPages`).
    let growthShift: Int

    /// The most pages an array holds (16 TiB), as a transparent region: beyond it the page
    /// tables alone would take tens of GiB.
    static let maxPages = 1 << 32
    /// Segments needed to reach `maxPages` from the smallest growth step, with room to spare.
    static let maxSegments = 64
    /// The smallest growth step: 16 pages (64 KiB), so that an array grown from empty does not
    /// make a region per page.
    static let minGrowthPages = 16

    /// The layout of an array made with `firstPages` pages: growth steps start at the next power
    /// of two, so segment 1 at least doubles the capacity.
    init(firstPages: Int) {
        guard firstPages >= 1 && firstPages <= Self.maxPages else {
            fatalError("a SwappableArray's first segment holds 1...2^32 pages, not \(firstPages)")
        }
        self.firstPages = firstPages
        let growth = Swift.max(Self.minGrowthPages, firstPages)
        // The next power of two at or above `growth`.
        growthShift = Int.bitWidth - (growth - 1).leadingZeroBitCount
    }

    var growthPages: Int { 1 << growthShift }

    /// Pages of segment `k`.
    func pages(ofSegment k: Int) -> Int {
        k == 0 ? firstPages : growthPages << (k - 1)
    }

    /// Pages of the segments before segment `k` (the first page of segment `k`).
    func pagesBefore(segment k: Int) -> Int {
        k == 0 ? 0 : firstPages + growthPages * ((1 << (k - 1)) - 1)
    }

    /// The segment holding array page `page`, and the page's index in that segment's region.
    @inline(__always)
    func locate(page: Int) -> (segment: Int, page: Int) {
        if page < firstPages { return (0, page) }
        let q = page - firstPages
        // Segment k ≥ 1 covers q in [G(2^(k-1) - 1), G(2^k - 1)): k is the bit length of q/G + 1.
        let k = Int.bitWidth - ((q >> growthShift) + 1).leadingZeroBitCount
        return (k, q - growthPages * ((1 << (k - 1)) - 1))
    }

    /// Segments needed to hold `pages` pages.
    func segments(holding pages: Int) -> Int {
        if pages <= 0 { return 1 }
        return locate(page: pages - 1).segment + 1
    }
}
