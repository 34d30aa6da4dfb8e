import Synchronization

/// Refault detection (kernel: `mm/workingset.c`). When reclaim evicts a folio it leaves a
/// shadow in its swap slot: the group, the value of the group's nonresident-age clock at
/// eviction, and whether the folio was part of the workingset. When the page faults back in,
/// the refault distance — how many evictions and activations happened since — tells whether
/// the page would have stayed resident had the active list been that much bigger: then it is
/// activated at once instead of starting over on the inactive list.
struct Shadow: Equatable {
    static let ageBits = 38
    static let groupBits = 10
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

extension SwapEngine {
    /// The shadow to leave for a folio being evicted now; ages its group's clock by the
    /// folio's pages (kernel: `workingset_eviction` with `workingset_age_nonresident(lruvec,
    /// folio_nr_pages(folio))`), so that a refault distance counts pages evicted, whatever
    /// their folios' sizes. Call it only once the eviction is certain (the refcount frozen).
    func workingsetEviction(_ f: Folio) -> UInt64 {
        let group = groups[frames.group(f)]
        let age = group.nonresidentAge.wrappingAdd(UInt64(frames.pageCount(f)), ordering: .relaxed).oldValue
        let flags = frames.flags(f)
        let uses = policy == .frequency ? frames.uses(f).count(at: age / useHalfLife(group)) : 0
        return Shadow(
            age: age, group: group.id, workingset: flags.contains(.workingset) || flags.contains(.active),
            uses: uses
        ).packed
    }

    /// Pages evicted from `group` (and activations) since the page that left `shadow` was
    /// evicted (kernel: the refault distance of `workingset_test_recent`).
    func refaultDistance(_ shadow: Shadow, group: MemoryGroup) -> UInt64 {
        // Relaxed: the clock is a heuristic input; a slightly stale value moves the decision by
        // a few evictions at most.
        let now = group.nonresidentAge.load(ordering: .relaxed)
        return (now &- shadow.age) & Shadow.ageMask
    }

    /// Decides where a folio that replaced `shadow` starts (kernel: `workingset_refault`):
    /// returns true if it should go straight to the active list. A shadow whose group is gone
    /// carries no information. `demand` is false for a page read ahead: a refault all the
    /// same, but not a use, so the frequency policy does not give it back the use count it
    /// left with (a page a scan read ahead would otherwise rank with the pages in use).
    func workingsetRefault(_ f: Folio, shadow packed: UInt64, demand: Bool = true) -> Bool {
        let shadow = Shadow(packed: packed)
        guard let group = groups.ifPresent(shadow.group) else { return false }
        stats.count(.refaults)
        group.count(.workingsetRefault)
        let distance = refaultDistance(shadow, group: group)
        if shadow.workingset {
            frames.setFlags(f, .workingset)
            stats.count(.restores)
            group.count(.workingsetRestore)
        }
        if policy == .frequency {
            guard demand else { return false }
            // The count the page left with, halved once per half-life it spent on the device: a
            // page that keeps coming back ranks as used as it was. This use is counted by the pin
            // that the fault serves.
            let halvings = distance / useHalfLife(group)
            startUses(f, group: group, count: halvings >= 4 ? 0 : shadow.uses >> Int(halvings))
            return false
        }
        guard workingsetDetection, distance <= UInt64(group.lru.pages(.active)) else { return false }
        stats.count(.activations)
        group.count(.workingsetActivate)
        // An activation ages the nonresident clock too (kernel: `workingset_age_nonresident`).
        group.nonresidentAge.wrappingAdd(1, ordering: .relaxed)
        return true
    }
}
