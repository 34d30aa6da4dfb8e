/// One page-table entry of a region: where a virtual page is (kernel: a PTE).
///
/// ```
/// none:     0
/// present:  frame << 2 | 0b01          the page is in memory, in that frame
/// swap:     offset << 7 | type << 2 | 0b10   the page is on a device, at that entry
/// ```
/// One atomic word, so the fault fast path can read it without the page-table lock.
struct PageTableEntry: Equatable, Sendable {
    var raw: UInt64

    static let none = PageTableEntry(raw: 0)

    @inline(__always)
    static func present(frame: UInt32) -> PageTableEntry { PageTableEntry(raw: UInt64(frame) << 2 | 1) }

    @inline(__always)
    static func swap(_ e: SwapEntry) -> PageTableEntry {
        PageTableEntry(raw: UInt64(e.offset) << 7 | UInt64(e.type) << 2 | 2)
    }

    @inline(__always) var isNone: Bool { raw == 0 }
    @inline(__always) var isPresent: Bool { raw & 3 == 1 }
    @inline(__always) var isSwap: Bool { raw & 3 == 2 }
    @inline(__always) var frame: UInt32 { UInt32(truncatingIfNeeded: raw >> 2) }
    @inline(__always) var swapEntry: SwapEntry { SwapEntry(type: Int(raw >> 2 & 0x1f), offset: Int(raw >> 7)) }
}
