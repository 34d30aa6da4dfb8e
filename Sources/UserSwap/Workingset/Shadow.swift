/// Refault detection (kernel: `mm/workingset.c`). When reclaim evicts a folio it leaves a
/// shadow in its swap slot: the group, the value of the group's nonresident-age clock at
/// eviction, and whether the folio was part of the workingset. When the page faults back in,
/// the refault distance — how many evictions and activations happened since — tells whether
/// the page would have stayed resident had the active list been that much bigger: then it is
/// activated at once instead of starting over on the inactive list.
struct Shadow: Equatable {
    static let ageBits = 38
    static let groupBits = MemoryGroupTable.idBits
    static let usesBits = 4
    static let ageMask: UInt64 = (1 << UInt64(ageBits)) - 1

    var age: UInt64
    var group: Int
    var workingset: Bool
    /// The folio's use count at eviction (`UseCount`), for the `.frequency` policy.
    var uses: Int

    init(age: UInt64, group: Int, workingset: Bool, uses: Int = 0) {
        self.age = age & Self.ageMask
        self.group = group
        self.workingset = workingset
        self.uses = min(uses, UseCount.maxCount)
    }

    /// The 53-bit slot payload: uses, workingset, group, age (high to low).
    var packed: UInt64 {
        UInt64(uses) << UInt64(Self.ageBits + Self.groupBits + 1)
            | (workingset ? 1 << UInt64(Self.ageBits + Self.groupBits) : 0) | UInt64(group) << UInt64(Self.ageBits) | age
    }

    init(packed: UInt64) {
        age = packed & Self.ageMask
        group = Int(packed >> UInt64(Self.ageBits)) & ((1 << Self.groupBits) - 1)
        workingset = packed >> UInt64(Self.ageBits + Self.groupBits) & 1 == 1
        uses = Int(packed >> UInt64(Self.ageBits + Self.groupBits + 1)) & ((1 << Self.usesBits) - 1)
    }
}
