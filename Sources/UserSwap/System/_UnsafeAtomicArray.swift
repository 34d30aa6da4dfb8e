import Glibc
import Synchronization

/// A fixed array of atomics allocated once (page tables, page-table locks, allocator hints,
/// counters).
struct _UnsafeAtomicArray<Value: AtomicRepresentable>: ~Copyable where Value: Sendable {
    let count: Int
    private let base: UnsafeMutablePointer<Atomic<Value>>

    init(count: Int, initialValue: Value) {
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Atomic<Value>>.stride
        guard let block = malloc(bytes) else { trap("cannot allocate \(bytes) bytes for \(count) atomics") }
        base = block.bindMemory(to: Atomic<Value>.self, capacity: max(count, 1))
        for i in 0..<count { (base + i).initialize(to: Atomic(initialValue)) }
    }

    deinit {
        // Both initializers take the memory from malloc or calloc.
        base.deinitialize(count: count)
        free(base)
    }

    @inline(__always)
    subscript(i: Int) -> UnsafeMutablePointer<Atomic<Value>> {
        assert(i >= 0 && i < count)
        return base + i
    }
}

extension _UnsafeAtomicArray where Value: FixedWidthInteger {
    /// `count` atomics holding zero, or nil when the system will not allocate them (a page
    /// table of a region near 16 TiB is 32 GiB). Their memory comes from `calloc`, which maps a
    /// large block as zero pages: nothing is written here, and each page of the array costs RAM
    /// only once an element in it is stored to.
    init?(zeroedCount count: Int) {
        guard count >= 0, let block = calloc(Swift.max(count, 1), MemoryLayout<Atomic<Value>>.stride) else { return nil }
        self.count = count
        // An integer atomic is its value's bytes: all-zero bytes are `Atomic(0)`.
        base = block.bindMemory(to: Atomic<Value>.self, capacity: Swift.max(count, 1))
    }
}

// Fixed at init; every element is an atomic.
extension _UnsafeAtomicArray: @unchecked Sendable {}
