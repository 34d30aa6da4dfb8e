import Synchronization
import UserSwap

/// The write generation of every page of a cluster device (see `RedisPageFormat`): bumped
/// before each write of the page is sent, expected in the value each read finds. 4 bytes per
/// page, kept in this process's memory, never on the cluster.
///
/// Relaxed atomics: the engine orders every read of a page after the write it reads (the read
/// is issued only once the write returned and the swap table says the slot holds it, which
/// passes through the engine's locks); the atomics only make concurrent transfers of different
/// pages, and a racing readahead of a stale slot, well-defined.
final class _UnsafeWriteGenerations {
    private let storage: UnsafeMutablePointer<Atomic<UInt32>>
    let count: Int

    init(count: Int) {
        require(count >= 0, "generations for \(count) pages")
        self.count = count
        storage = .allocate(capacity: max(count, 1))
        for i in 0..<count { (storage + i).initialize(to: Atomic(0)) }
    }

    deinit {
        storage.deinitialize(count: count)
        storage.deallocate()
    }

    /// The generation of `page`'s latest write.
    func current(_ page: Int) -> UInt32 {
        require(page >= 0 && page < count, "page \(page) outside 0..<\(count)")
        // In bounds (checked above); relaxed: see the type's summary.
        return storage[page].load(ordering: .relaxed)
    }

    /// The generation the next write of `page` carries, recorded as its latest.
    func bump(_ page: Int) -> UInt32 {
        require(page >= 0 && page < count, "page \(page) outside 0..<\(count)")
        // Relaxed: one writer per page at a time (see below and the type's summary)
        let next = (storage[page].load(ordering: .relaxed) &+ 1) % RedisPageFormat.generationLimit
        // One writer per page at a time (the engine writes a slot from one thread): a plain
        // store after the load is enough.
        storage[page].store(next, ordering: .relaxed)
        return next
    }
}

// The pointer is fixed after init and every element is an atomic: shared between threads safely.
extension _UnsafeWriteGenerations: @unchecked Sendable {}
