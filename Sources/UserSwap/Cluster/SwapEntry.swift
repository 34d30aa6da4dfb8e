/// A swap entry (kernel: `swp_entry_t`): which device (`type`) and which slot on it (`offset`,
/// in pages), packed in one word so page tables and the swap table can hold it atomically.
///
/// Offset 0 of every device is the header and never names data.
package struct SwapEntry: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let raw: UInt64

    /// Bits for the device index (kernel: MAX_SWAPFILES_SHIFT).
    public static let typeBits = 5
    static let offsetBits = 64 - typeBits
    static let offsetMask: UInt64 = (1 << offsetBits) - 1
    /// Devices a space can hold at once.
    public static let maxDevices = 1 << typeBits

    @inline(__always)
    public init(type: Int, offset: Int) {
        require(type >= 0 && type < Self.maxDevices, "swap type \(type) out of range")
        require(offset >= 0 && UInt64(offset) <= Self.offsetMask, "swap offset \(offset) out of range")
        raw = UInt64(type) << Self.offsetBits | UInt64(offset)
    }

    @inline(__always)
    public init(raw: UInt64) { self.raw = raw }

    /// The device index (kernel: `swp_type`).
    @inline(__always) public var type: Int { Int(raw >> Self.offsetBits) }
    /// The slot index on the device, in pages (kernel: `swp_offset`).
    @inline(__always) public var offset: Int { Int(raw & Self.offsetMask) }
    /// The cluster holding this slot.
    @inline(__always) public var clusterIndex: Int { offset >> SwapCluster.slotShift }
    /// The slot's index inside its cluster (kernel: `swp_cluster_offset`).
    @inline(__always) public var slotInCluster: Int { offset & (SwapCluster.slotCount - 1) }

    @inline(__always)
    public func advanced(by n: Int) -> SwapEntry { SwapEntry(type: type, offset: offset + n) }

    /// The first entry of the naturally aligned run of `1 << order` slots containing this one.
    @inline(__always)
    public func alignedDown(order: Int) -> SwapEntry {
        SwapEntry(type: type, offset: offset & ~((1 << order) - 1))
    }

    public static func < (a: SwapEntry, b: SwapEntry) -> Bool { a.raw < b.raw }

    public var description: String { "swap[\(type):\(offset)]" }
}
