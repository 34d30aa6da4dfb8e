import CUserSwap
import Glibc
import Synchronization

/// The raw memory behind a device's clusters: one lock word and one `SwapCluster` per cluster,
/// and the swap tables.
///
/// The tables of all clusters live in one anonymous `MAP_NORESERVE` mapping, one 4 KiB page per
/// cluster, at a fixed address. "Allocating" a cluster's table is just starting to use its page
/// (the kernel backs it on first write); "freeing" it is `MADV_DONTNEED`, which gives the memory
/// back and makes the page read as zeroes (every slot empty). Because the mapping lives as long as
/// the device, a lockless reader can load any slot at any time without use-after-free: the
/// guarantee the kernel gets from RCU-freeing its tables. Readers re-check under the cluster lock
/// or the folio lock, as in the kernel.
struct _UnsafeClusterStorage: ~Copyable {
    let clusterCount: Int
    private let locks: UnsafeMutablePointer<Atomic<UInt32>>
    private let info: UnsafeMutablePointer<SwapCluster>
    private let tables: UnsafeMutablePointer<Atomic<UInt64>>
    private let tableBytes: Int

    init(clusterCount: Int) throws(SwapError) {
        require(clusterCount > 0, "cluster storage needs at least one cluster, not \(clusterCount)")
        self.clusterCount = clusterCount
        tableBytes = clusterCount * SwapCluster.slotCount * MemoryLayout<UInt64>.stride
        do {
            let base = try Syscalls.mmap(
                length: tableBytes, protection: PROT_READ | PROT_WRITE,
                flags: MAP_PRIVATE | MAP_ANONYMOUS | cus_MAP_NORESERVE())
            // Sound: fresh anonymous memory is zero, which is the bit pattern of Atomic(0).
            tables = base.bindMemory(to: Atomic<UInt64>.self, capacity: clusterCount * SwapCluster.slotCount)
        } catch {
            throw SwapError(.outOfMemory, "cannot reserve \(tableBytes) bytes of address space for the swap tables", errno: error)
        }
        locks = .allocate(capacity: clusterCount)
        info = .allocate(capacity: clusterCount)
        for c in 0..<clusterCount {
            (locks + c).initialize(to: Atomic(0))
            (info + c).initialize(to: SwapCluster())
        }
    }

    deinit {
        locks.deinitialize(count: clusterCount)
        locks.deallocate()
        info.deinitialize(count: clusterCount)
        info.deallocate()
        Syscalls.munmap(UnsafeMutableRawPointer(tables), length: tableBytes)
    }

    /// Locks cluster `c` (kernel: `swap_cluster_lock`, `ci->lock`), waiting for it: the guard
    /// is the only way to write its swap table.
    @inline(__always)
    func lock(_ c: Int) -> ClusterGuard {
        assert(c >= 0 && c < clusterCount)
        let word = FutexLock(locks + c, rank: .cluster)
        word.lock()
        return ClusterGuard(index: c, word: word, table: tables + c * SwapCluster.slotCount, info: info + c)
    }

    /// Locks cluster `c` if nobody holds it (for a caller that holds the device lock, which
    /// ranks below the cluster lock).
    @inline(__always)
    func tryLock(_ c: Int) -> ClusterGuard? {
        assert(c >= 0 && c < clusterCount)
        let word = FutexLock(locks + c, rank: .cluster)
        guard word.tryLock() else { return nil }
        return ClusterGuard(index: c, word: word, table: tables + c * SwapCluster.slotCount, info: info + c)
    }

    /// Cluster `c`'s bookkeeping. Caller holds its cluster lock to read or write it (reading
    /// `list` under the device lock is also allowed); a `ClusterGuard` gives it as `info`.
    @inline(__always)
    func cluster(_ c: Int) -> UnsafeMutablePointer<SwapCluster> {
        assert(c >= 0 && c < clusterCount)
        return info + c
    }

    /// Slot `i` of cluster `c`, read without the lock. Always safe (the tables live as long as
    /// the storage); a caller that acts on it re-checks under the cluster lock or the folio lock.
    @inline(__always)
    func loadSlot(_ c: Int, _ i: Int) -> SwapTableSlot {
        assert(c >= 0 && c < clusterCount && i >= 0 && i < SwapCluster.slotCount)
        return SwapTableSlot(raw: tables[c * SwapCluster.slotCount + i].load(ordering: .acquiring))
    }

    /// Bytes of metadata this storage adds per cluster, besides the table page.
    static var headerBytesPerCluster: Int {
        MemoryLayout<Atomic<UInt32>>.stride + MemoryLayout<SwapCluster>.stride
    }
}

// The pointers never change after init; what they point at is guarded per element: lock words
// and table slots are atomics, `SwapCluster` fields by that cluster's lock.
extension _UnsafeClusterStorage: @unchecked Sendable {}

/// A held cluster lock (kernel: `swap_cluster_lock` … `swap_cluster_unlock`), and the only
/// writer of the cluster's swap table (kernel: `__swap_table_set` with
/// `lockdep_assert_held(&ci->lock)`): the table's memory is private to this file, so a store
/// into a swap table compiles only through a guard, and a guard exists only while its lock is
/// held. Functions that need the cluster lock take one `borrowing` and end in `Locked`.
///
/// Unlocks when it goes away; a noncopyable value may go away at its last use, so a holder
/// that needs the lock to the end of a section says so with `unlock()`.
struct ClusterGuard: ~Copyable {
    /// The cluster's index in its device.
    let index: Int
    private let word: FutexLock
    private let table: UnsafeMutablePointer<Atomic<UInt64>>
    /// The cluster's bookkeeping, which this lock guards.
    let info: UnsafeMutablePointer<SwapCluster>

    fileprivate init(
        index: Int, word: FutexLock, table: UnsafeMutablePointer<Atomic<UInt64>>,
        info: UnsafeMutablePointer<SwapCluster>
    ) {
        self.index = index
        self.word = word
        self.table = table
        self.info = info
    }

    deinit { word.unlock() }

    /// Releases the lock here (the guard is consumed).
    consuming func unlock() {}

    /// Slot `i` of the table. Relaxed: every store to it happens under this lock, which we hold.
    @inline(__always)
    func slot(_ i: Int) -> SwapTableSlot {
        SwapTableSlot(raw: table[i].load(ordering: .relaxed))  // Relaxed: every store happens under this lock, which we hold
    }

    /// Writes slot `i`. Releasing: a lockless reader that sees the word also sees what it
    /// names (a folio's identity, published before its slots).
    @inline(__always)
    func set(_ i: Int, _ s: SwapTableSlot) {
        table[i].store(s.raw, ordering: .releasing)
    }

    /// Gives the table's page back to the OS (every slot must be empty): lockless readers that
    /// race with this see "empty" either way.
    func releaseTable() {
        let page = UnsafeMutableRawPointer(table)
        do {
            try Syscalls.madvise(page, length: SwapCluster.slotCount * 8, advice: cus_MADV_DONTNEED())
        } catch {
            // Only EINVAL/ENOMEM are possible on our own aligned mapping: both would be our bug.
            trap("madvise(DONTNEED) of a swap table failed: \(error)")
        }
    }
}
