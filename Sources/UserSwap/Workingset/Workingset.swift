import Synchronization

/// Refault detection (kernel: `mm/workingset.c`): the shadow an evicted folio leaves in its
/// slot, and the decision a refault takes from it. Below the swap cache, which calls it on
/// every insert that replaces a shadow, and beside reclaim, which calls it on every eviction.
final class Workingset: Sendable {
    let frames: FrameTable
    let groups: MemoryGroupTable
    let stats: SwapStatistics
    let allocator: FrameAllocator
    /// Activate refaulting pages whose refault distance is short (the `.workingset` policy).
    let activatesRefaults: Bool
    /// Keep use counts in shadows, and give a refaulting page its count back (the `.frequency`
    /// policy, see `UseCount`).
    let keepsUseCounts: Bool

    init(allocator: FrameAllocator, activatesRefaults: Bool, keepsUseCounts: Bool) {
        self.allocator = allocator
        frames = allocator.frames
        groups = allocator.groups
        stats = allocator.stats
        self.activatesRefaults = activatesRefaults
        self.keepsUseCounts = keepsUseCounts
    }

    /// The shadow to leave for a folio being evicted now; ages its group's clock by the
    /// folio's pages (kernel: `workingset_eviction` with `workingset_age_nonresident(lruvec,
    /// folio_nr_pages(folio))`), so that a refault distance counts pages evicted, whatever
    /// their folios' sizes. Call it only once the eviction is certain (the refcount frozen).
    func eviction(_ f: Folio) -> UInt64 {
        let group = groups[frames.group(f)]
        // Relaxed: a clock; the read-modify-write keeps it exact, and a shadow orders nothing else
        let age = group.nonresidentAge.wrappingAdd(UInt64(frames.pageCount(f)), ordering: .relaxed).oldValue
        let flags = frames.flags(f)
        let uses = keepsUseCounts ? frames.uses(f).count(at: age / allocator.useHalfLife(group)) : 0
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
    func refault(_ f: Folio, shadow packed: UInt64, demand: Bool = true) -> Bool {
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
        if keepsUseCounts {
            guard demand else { return false }
            // The count the page left with, halved once per half-life it spent on the device: a
            // page that keeps coming back ranks as used as it was. This use is counted by the pin
            // that the fault serves.
            let halvings = distance / allocator.useHalfLife(group)
            allocator.startUses(f, group: group, count: halvings >= 4 ? 0 : shadow.uses >> Int(halvings))
            return false
        }
        guard activatesRefaults, distance <= UInt64(group.lru.pages(.active)) else { return false }
        stats.count(.activations)
        group.count(.workingsetActivate)
        // An activation ages the nonresident clock too (kernel: `workingset_age_nonresident`).
        group.nonresidentAge.wrappingAdd(1, ordering: .relaxed)  // Relaxed: a clock, as in `eviction`
        return true
    }
}
