import Synchronization

/// A fixed array of atomics allocated once (page tables, page-table locks, allocator hints,
/// counters).
struct _UnsafeAtomicArray<Value: AtomicRepresentable>: ~Copyable where Value: Sendable {
    let count: Int
    private let base: UnsafeMutablePointer<Atomic<Value>>

    init(count: Int, initialValue: Value) {
        self.count = count
        base = .allocate(capacity: max(count, 1))
        for i in 0..<count { (base + i).initialize(to: Atomic(initialValue)) }
    }

    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }

    @inline(__always)
    subscript(i: Int) -> UnsafeMutablePointer<Atomic<Value>> {
        assert(i >= 0 && i < count)
        return base + i
    }
}

// Fixed at init; every element is an atomic.
extension _UnsafeAtomicArray: @unchecked Sendable {}
