/// Which page of which region maps a folio's first page: the frame table's owner word, from
/// which the reverse map finds the page table to unmap (kernel: `folio->mapping` and
/// `folio->index`). The region id above the page index; `.none` (0) when no page maps the
/// folio (region ids start at 1).
///
/// ```
///  63                 40 39                                     0
/// +---------------------+----------------------------------------+
/// |      region id      |               page index               |
/// +---------------------+----------------------------------------+
/// ```
struct ReverseMapKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Bits of the page index: a region holds at most 2⁴⁰ pages (4 PiB).
    static let pageBits = 40
    static let pageMask: UInt64 = 1 << UInt64(pageBits) - 1
    /// No page maps the folio.
    static let none = ReverseMapKey(raw: 0)

    /// The packed word, as stored in the frame table.
    let raw: UInt64

    @inline(__always) init(raw: UInt64) { self.raw = raw }

    /// Page `page` of region `region`.
    @inline(__always) init(region: Int, page: Int) {
        assert(region > 0 && page >= 0 && UInt64(page) <= Self.pageMask, "no key for page \(page) of region \(region)")
        raw = UInt64(region) << UInt64(Self.pageBits) | UInt64(page)
    }

    /// The id of the region.
    @inline(__always) var region: Int { Int(raw >> UInt64(Self.pageBits)) }
    /// The page index in the region.
    @inline(__always) var page: Int { Int(raw & Self.pageMask) }
    /// Whether no page maps the folio.
    @inline(__always) var isNone: Bool { raw == 0 }

    /// The key of the page `n` pages further in the same region (the pages of a split folio).
    @inline(__always) func advanced(by n: Int) -> ReverseMapKey { ReverseMapKey(region: region, page: page + n) }

    /// Region, then page: reclaim sorts a batch this way so that neighbouring pages take
    /// neighbouring slots.
    @inline(__always) static func < (a: ReverseMapKey, b: ReverseMapKey) -> Bool { a.raw < b.raw }

    var description: String { isNone ? "unmapped" : "region \(region) page \(page)" }
}
