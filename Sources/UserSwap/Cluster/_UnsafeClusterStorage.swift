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
        precondition(clusterCount > 0)
        self.clusterCount = clusterCount
        tableBytes = clusterCount * SwapCluster.slotCount * MemoryLayout<UInt64>.stride
        do {
            let base = try Syscalls.mmap(length: tableBytes, protection: PROT_READ | PROT_WRITE,
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

    /// The cluster lock of cluster `c` (kernel: `ci->lock`).
    @inline(__always)
    func lock(_ c: Int) -> FutexLock {
        assert(c >= 0 && c < clusterCount)
        return FutexLock(locks + c)
    }

    /// Cluster `c`'s bookkeeping. Caller holds its cluster lock to read or write it (reading
    /// `list` under the device lock is also allowed).
    @inline(__always)
    func cluster(_ c: Int) -> UnsafeMutablePointer<SwapCluster> {
        assert(c >= 0 && c < clusterCount)
        return info + c
    }

    /// The first slot of cluster `c`'s table. Always safe to load from; stores need the cluster
    /// lock and `hasTable`.
    @inline(__always)
    func table(_ c: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        assert(c >= 0 && c < clusterCount)
        return tables + c * SwapCluster.slotCount
    }

    /// Gives cluster `c`'s table page back to the OS. Caller holds the cluster lock and every
    /// slot is empty, so lockless readers that race with this see "empty" either way.
    func releaseTableLocked(_ c: Int) {
        let page = UnsafeMutableRawPointer(table(c))
        do {
            try Syscalls.madvise(page, length: SwapCluster.slotCount * 8, advice: cus_MADV_DONTNEED())
        } catch {
            // Only EINVAL/ENOMEM are possible on our own aligned mapping: both would be our bug.
            preconditionFailure("madvise(DONTNEED) of a swap table failed: \(error)")
        }
    }

    /// Bytes of metadata this storage adds per cluster, besides the table page.
    static var headerBytesPerCluster: Int {
        MemoryLayout<Atomic<UInt32>>.stride + MemoryLayout<SwapCluster>.stride
    }
}

// The pointers never change after init; what they point at is guarded per element: lock words
// and table slots are atomics, `SwapCluster` fields by that cluster's lock.
extension _UnsafeClusterStorage: @unchecked Sendable {}
