import Synchronization

/// The memory groups of a space by id, for lookups on hot paths (a folio's group, a shadow's
/// group) without a lock: ids index an array of atomic references. Groups live as long as the
/// space (ids are not reused), so a looked-up group is never freed under its user.
final class MemoryGroupTable: Sendable {
    /// Bits of a group id: the group field of a shadow (`Shadow.groupBits`) holds one.
    static let idBits = 10
    static let capacity = 1 << idBits

    private let slots = _UnsafeAtomicArray<UInt>(count: MemoryGroupTable.capacity, initialValue: 0)
    /// Strong references, which keep every group alive.
    private let all = Mutex<[MemoryGroup]>([], rank: .groupTable)
    let root: MemoryGroup

    init(frames: FrameTable) {
        root = MemoryGroup(id: 0, name: "root", parent: nil, frames: frames, memoryLimit: nil, swapLimit: nil)
        publish(root)
    }

    /// Creates a group under `parent` (the root when nil).
    func make(name: String, parent: MemoryGroup?, frames: FrameTable, memoryLimit: Int?, swapLimit: Int?) throws(SwapError) -> MemoryGroup {
        let id = all.withLock { $0.count }
        guard id < Self.capacity else {
            throw SwapError(.invalidArgument, "a space holds at most \(Self.capacity) memory groups")
        }
        let group = MemoryGroup(
            id: id, name: name, parent: parent ?? root, frames: frames,
            memoryLimit: memoryLimit, swapLimit: swapLimit)
        publish(group)
        return group
    }

    private func publish(_ group: MemoryGroup) {
        all.withLock { $0.append(group) }
        slots[group.id].pointee.store(UInt(bitPattern: Unmanaged.passUnretained(group).toOpaque()), ordering: .releasing)
    }

    /// The group with `id`; traps for an id never handed out (a corrupted folio or shadow).
    @inline(__always)
    subscript(id: Int) -> MemoryGroup {
        let bits = slots[id].pointee.load(ordering: .acquiring)
        guard let raw = UnsafeRawPointer(bitPattern: bits) else { trap("no memory group \(id)") }
        // Sound: `all` holds a strong reference for the table's lifetime.
        return Unmanaged<MemoryGroup>.fromOpaque(raw).takeUnretainedValue()
    }

    /// The group with `id` if it exists (for ids read from shadows).
    func ifPresent(_ id: Int) -> MemoryGroup? {
        id >= 0 && id < Self.capacity && slots[id].pointee.load(ordering: .acquiring) != 0 ? self[id] : nil
    }

    var list: [MemoryGroup] { all.withLock { $0 } }
}
