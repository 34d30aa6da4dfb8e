import Synchronization

/// The devices of a space (kernel: `swap_info[]` plus the `swap_avail_heads` priority list).
///
/// Allocation goes to the highest-priority device with a free run; devices of equal priority
/// take turns, so their load spreads evenly (kernel: `plist_requeue` on the avail list).
package final class SwapDeviceSet: Sendable {
    private struct State: ~Copyable {
        /// Strong references, indexed by device type.
        var byType: [SwapDevice?] = Array(repeating: nil, count: SwapEntry.maxDevices)
        /// Devices grouped by priority, highest first.
        var groups: [[SwapDevice]] = []
    }

    private let state = Mutex(State(), rank: .deviceSet)
    /// Bumped on every allocation to rotate among equal priorities. Relaxed everywhere: it only
    /// spreads load; any interleaving is correct.
    private let rotor = Atomic<Int>(0)

    public init() {}

    /// A type number no current device uses.
    public func nextFreeType() throws(SwapError) -> Int {
        let t = state.withLock { s in s.byType.firstIndex { $0 == nil } }
        guard let t else {
            throw SwapError(.invalidArgument, "a space holds at most \(SwapEntry.maxDevices) swap devices")
        }
        return t
    }

    /// Adds `device`; its `type` must be free.
    public func add(_ device: SwapDevice) throws(SwapError) {
        try state.withLock { (s: inout State) throws(SwapError) in
            guard s.byType[device.type] == nil else {
                throw SwapError(.invalidArgument, "swap type \(device.type) is already in use")
            }
            s.byType[device.type] = device
            Self.regroup(&s)
        }
    }

    /// Removes `device` from allocation and lookup. The caller (swapoff) has already emptied it.
    public func remove(_ device: SwapDevice) {
        state.withLock { s in
            guard s.byType[device.type] === device else { return }
            s.byType[device.type] = nil
            Self.regroup(&s)
        }
    }

    private static func regroup(_ s: inout State) {
        let sorted = s.byType.compactMap { $0 }.sorted { $0.priority > $1.priority }
        var groups: [[SwapDevice]] = []
        for d in sorted {
            if let last = groups.last?.last, last.priority == d.priority {
                groups[groups.count - 1].append(d)
            } else {
                groups.append([d])
            }
        }
        s.groups = groups
    }

    /// The device an entry names, or nil if it was removed.
    public func device(for entry: SwapEntry) -> SwapDevice? {
        state.withLock { $0.byType[entry.type] }
    }

    /// Every device, highest priority first.
    public var devices: [SwapDevice] { state.withLock { $0.groups.flatMap { $0 } } }

    /// The device of `entry`, which a page table or the swap cache refers to. Such an entry keeps
    /// its device: swapoff brings every page back and empties the cache before it removes one,
    /// so a miss is a broken invariant.
    func device(mappedBy entry: SwapEntry) -> SwapDevice {
        guard let device = device(for: entry) else { trap("\(entry) names a removed device") }
        return device
    }

    /// Whether less than half of all swap is free (kernel: `vm_swap_full`): from then on a slot
    /// that only the swap cache holds is worth more free than as a clean copy of a page in
    /// memory, so swap-ins free their slots and the allocator reclaims cache-only slots.
    /// Every swap-in asks: one lock, no allocation.
    var isSwapFull: Bool {
        state.withLock { s in
            var free = 0
            var total = 0
            for case let d? in s.byType {
                free += d.freePages
                total += d.usablePages
            }
            return free * 2 < total
        }
    }

    /// When swap is what stops reclaim: the devices that take new pages (none being removed by
    /// swapoff) exist and have no free slot. Nil while a slot is free, or with no device at
    /// all (memory alone is then full: out of memory, not swap full).
    var exhausted: (slots: Int, devices: Int)? {
        let serving = devices.filter { $0.writeOK.load(ordering: .acquiring) }
        guard !serving.isEmpty, serving.allSatisfy({ $0.freePages == 0 }) else { return nil }
        return (serving.reduce(0) { $0 + $1.usablePages }, serving.count)
    }

    /// Allocates `1 << order` slots filled with `initial` on the best device that has them.
    func allocateSlots(order: Int, initial: SwapTableSlot) -> SwapEntry? {
        let groups = state.withLock { $0.groups }
        // Relaxed: fairness only
        let turn = Int(UInt(bitPattern: rotor.wrappingAdd(1, ordering: .relaxed).oldValue) % UInt(SwapEntry.maxDevices * 64))
        for group in groups {
            for k in 0..<group.count {
                let device = group[(turn &+ k) % group.count]
                if let entry = device.allocateSlots(order: order, initial: initial) { return entry }
            }
        }
        return nil
    }

    /// Allocates `1 << order` slots with count 1 (see `SwapDevice.allocate(order:)`).
    public func allocate(order: Int = 0) throws(SwapError) -> SwapEntry {
        guard let entry = allocateSlots(order: order, initial: .counted(1)) else {
            let free = devices.reduce(0) { $0 + $1.freePages }
            throw SwapError(
                .swapFull,
                "no swap device has a free run of \(1 << order) slots (\(free) slots free in all); add a device or make one larger")
        }
        return entry
    }
}
