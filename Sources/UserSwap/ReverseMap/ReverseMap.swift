import Synchronization

/// The reverse map (kernel: rmap): from the key a folio carries (`ReverseMapKey`) to the mapping
/// that maps it — for reclaim, which must unmap a folio it found on an LRU list, and for the
/// walks that visit every region (swapoff, the invariant walker).
///
/// Mappings register themselves when made and leave when they go; the map holds them weakly,
/// so reclaim never keeps a region alive.
final class ReverseMap: Sendable {
    private let mappings = Mutex<[Int: WeakMapping]>([:], rank: .reverseMap)

    init() {}

    /// Registers `mapping` under its id.
    func insert(_ mapping: any ReverseMapping) {
        mappings.withLock { $0[mapping.id] = WeakMapping(mapping: mapping) }
    }

    /// Removes the mapping with `id` (from its `deinit`).
    func remove(id: Int) {
        mappings.withLock { _ = $0.removeValue(forKey: id) }
    }

    /// The mapping `key` names, if it still exists; nil for `.none`.
    func mapping(_ key: ReverseMapKey) -> (any ReverseMapping)? {
        guard !key.isNone else { return nil }
        return mappings.withLock { $0[key.region]?.mapping }
    }

    /// Every mapping that still exists.
    var all: [any ReverseMapping] {
        mappings.withLock { $0.values.compactMap(\.mapping) }
    }
}

/// A weak reference to a mapping: reclaim must not keep regions alive.
private struct WeakMapping: Sendable {
    weak var mapping: (any ReverseMapping)?
}
