/// The value of one swap table slot: everything UserSwap knows about one swap slot, in one
/// 8-byte word (the kernel's phase III encoding, with no separate `swap_map`).
///
/// ```
///  63      58 57                             5   4   3   2   1 0
/// +----------+--------------------------------+---+---+---+-----+
/// |  count   |            payload             | S | Z | C | tag |
/// +----------+--------------------------------+---+---+---+-----+
/// ```
/// - `tag`: 0 none, 1 shadow (payload = workingset info of the evicted page), 2 folio (payload =
///   frame index: the page is in the swap cache), 3 bad (header, bad page, past the end).
/// - `C`: the legacy protocol's has-cache bit (kernel: `SWAP_HAS_CACHE`), set by a swap-in that
///   claimed the slot before its folio exists. Never set under the swap-cache protocol.
/// - `Z`: reserved for "the page is all zeroes, nothing was written" (kernel: zeromap).
/// - `S`: the slot's swap is charged to the memory group named in its shadow (kernel: the swap
///   cgroup record, `swap_cgroup_record`); whoever frees the slot uncharges it.
/// - `count`: references from page tables (kernel: the swap count). A slot is free if and only if
///   the whole word is 0; "used" slots are exactly the non-zero ones, which is what the cluster
///   counts.
///
/// Overflow: the count holds at most `maxCount` (63) mappings; one more is refused with the typed
/// error `SwapError.Code.countOverflow` instead of the kernel's continuation pages, because a
/// UserSwap page is mapped by one region at a time and 63 is far beyond what a user reaches.
package struct SwapTableSlot: Hashable, Sendable, CustomStringConvertible {
    public var raw: UInt64

    @inline(__always) public init(raw: UInt64) { self.raw = raw }

    public enum Tag: UInt64, Sendable { case none = 0, shadow = 1, folio = 2, bad = 3 }

    static let tagMask: UInt64 = 0b11
    static let hasCacheBit: UInt64 = 1 << 2
    static let zeroBit: UInt64 = 1 << 3
    static let chargedBit: UInt64 = 1 << 4
    static let payloadShift: UInt64 = 5
    public static let payloadBits = 53
    static let payloadMask: UInt64 = ((1 << UInt64(payloadBits)) - 1) << payloadShift
    static let countShift: UInt64 = 58
    /// The largest swap count a slot holds.
    public static let maxCount = 63
    /// The largest shadow or frame index a slot holds.
    public static let maxPayload: UInt64 = (1 << UInt64(payloadBits)) - 1

    /// A free slot.
    public static let empty = SwapTableSlot(raw: 0)
    /// The header, a bad page, or a slot past the device's end: never allocated.
    public static let bad = SwapTableSlot(raw: Tag.bad.rawValue)

    /// A slot held by a folio in the swap cache.
    @inline(__always)
    public static func folio(_ frame: UInt32, count: Int = 0) -> SwapTableSlot {
        SwapTableSlot(raw: Tag.folio.rawValue | UInt64(frame) << payloadShift | UInt64(count) << countShift)
    }

    /// A slot that remembers an evicted page's workingset info.
    @inline(__always)
    public static func shadow(_ value: UInt64, count: Int) -> SwapTableSlot {
        require(value <= maxPayload, "shadow does not fit the slot")
        return SwapTableSlot(raw: Tag.shadow.rawValue | value << payloadShift | UInt64(count) << countShift)
    }

    /// A used slot with no folio and no shadow.
    @inline(__always)
    public static func counted(_ count: Int) -> SwapTableSlot {
        SwapTableSlot(raw: UInt64(count) << countShift)
    }

    @inline(__always) public var tag: Tag { Tag(rawValue: raw & Self.tagMask)! }
    @inline(__always) public var isFree: Bool { raw == 0 }
    @inline(__always) public var isBad: Bool { raw & Self.tagMask == Tag.bad.rawValue }
    @inline(__always) public var isFolio: Bool { raw & Self.tagMask == Tag.folio.rawValue }
    @inline(__always) public var isShadow: Bool { raw & Self.tagMask == Tag.shadow.rawValue }
    @inline(__always) public var payload: UInt64 { (raw & Self.payloadMask) >> Self.payloadShift }
    /// The frame of the cached folio; meaningful only when `isFolio`.
    @inline(__always) public var frame: UInt32 { UInt32(truncatingIfNeeded: payload) }
    @inline(__always) public var count: Int { Int(raw >> Self.countShift) }
    @inline(__always) public var hasCache: Bool { raw & Self.hasCacheBit != 0 }
    @inline(__always) public var isZeroFilled: Bool { raw & Self.zeroBit != 0 }
    @inline(__always) public var isSwapCharged: Bool { raw & Self.chargedBit != 0 }

    /// The same slot with another count.
    @inline(__always)
    public func withCount(_ count: Int) -> SwapTableSlot {
        require(count >= 0 && count <= Self.maxCount, "swap count \(count) out of range")
        return SwapTableSlot(raw: raw & ~(UInt64(0x3f) << Self.countShift) | UInt64(count) << Self.countShift)
    }

    @inline(__always)
    public func withHasCache(_ on: Bool) -> SwapTableSlot {
        SwapTableSlot(raw: on ? raw | Self.hasCacheBit : raw & ~Self.hasCacheBit)
    }

    @inline(__always)
    public func withZeroFilled(_ on: Bool) -> SwapTableSlot {
        SwapTableSlot(raw: on ? raw | Self.zeroBit : raw & ~Self.zeroBit)
    }

    @inline(__always)
    public func withSwapCharged(_ on: Bool) -> SwapTableSlot {
        SwapTableSlot(raw: on ? raw | Self.chargedBit : raw & ~Self.chargedBit)
    }

    /// Keeps count and flags, replaces what the slot holds with nothing / a shadow / a folio.
    @inline(__always)
    public func replacingContent(with content: SwapTableSlot) -> SwapTableSlot {
        let keep = raw & (UInt64(0x3f) << Self.countShift | Self.hasCacheBit | Self.zeroBit | Self.chargedBit)
        return SwapTableSlot(raw: keep | (content.raw & (Self.tagMask | Self.payloadMask)))
    }

    public var description: String {
        var s: String
        switch tag {
        case .none: s = raw == 0 ? "free" : "used"
        case .shadow: s = "shadow(\(payload))"
        case .folio: s = "folio(\(frame))"
        case .bad: return "bad"
        }
        if count > 0 { s += " count=\(count)" }
        if hasCache { s += " has-cache" }
        if isZeroFilled { s += " zero" }
        if isSwapCharged { s += " charged" }
        return s
    }
}
