import Synchronization

/// One swap device (kernel: `struct swap_info_struct`): a backend that stores pages, split into
/// clusters of 512 slots, each with a swap table, plus the allocator's lists and hints.
///
/// This file holds the device's state and setup; allocation is in `SwapDevice+Allocation.swift`,
/// swap counts in `SwapDevice+Counts.swift`, the invariant walker in `SwapDevice+Invariants.swift`.
///
/// The device lock (`lists`) ranks below the cluster lock (`LockRank`, Support/LockOrder.swift):
/// from under it, clusters are taken only with `tryLock`.
public final class SwapDevice: Sendable {
    /// Pages of the device, header included (kernel: `si->max`).
    public let pageCount: Int
    /// Pages that can hold data: all but the header and bad pages (kernel: `si->pages`).
    public let usablePages: Int
    /// Allocation clusters of 512 slots (the last one may be partial).
    public let clusterCount: Int
    /// The device's index among the space's devices; the `type` of its swap entries.
    public let type: Int
    /// Higher serves first; equal priorities take turns.
    public let priority: Int
    /// Where the pages live.
    public let backend: any SwapBackend
    /// How transfers reach the backend: io_uring, a thread pool, or the calling thread.
    package let io: IOEngine
    /// The on-disk header, when the device is a swap file.
    public let header: SwapHeader?
    /// Freed clusters are discarded on the backend (a file punches holes).
    public let discardEnabled: Bool

    let clusters: _UnsafeClusterStorage
    /// The device lock (kernel: `si->lock`): protects the cluster lists.
    let lists: Mutex<ClusterLists>
    /// Per-shard, per-order allocation hints (kernel: `percpu_swap_cluster`): where a thread
    /// last allocated, packed as `(cluster + 1) << 32 | next slot in cluster`, 0 for none.
    let hints: _UnsafeAtomicArray<UInt64>
    static let hintShards = 16

    /// Data slots in use (kernel: `si->inuse_pages`); excludes header and bad slots.
    let inusePages = Atomic<Int>(0)
    /// Slots marked bad at setup (header, bad pages, past the end).
    let badSlots: Int
    /// Allocation allowed (kernel: `SWP_WRITEOK`); cleared when swapoff begins. The allocator
    /// checks it under the cluster lock of the slots it takes, holding a `users` reference.
    let writeOK = Atomic<Bool>(true)
    /// Where the next reclaim of cache-only slots starts looking, a cluster index (see
    /// `SwapCache.reclaimCacheOnlySlots`). Relaxed everywhere: only spreads the scans.
    let reclaimCursor = Atomic<Int>(0)
    /// Wakes swapoff when the device changes: slots freed, mapping counts changed.
    let progress = WaitQueue()
    /// Allocations on their way into the device, which swapoff waits for (kernel: `si->users`).
    let users = SwapDeviceUsers()
    #if DEBUG
    /// Tests only: runs in `allocateSlots` after the device accepted the allocation and before
    /// any cluster lock, the window in which swapoff may stop allocation on the device.
    let beforeAllocationLock = TestHook()
    /// Tests only: runs in `allocateRunLocked` once `writeOK` passed, under the cluster lock,
    /// the window in which swapoff may find the device empty although a slot is being taken.
    let afterWriteOKLocked = TestHook()
    /// Tests only: the invariant walker reads the clusters under the device lock instead of
    /// each one's cluster lock, a planted lock-asymmetry race that ThreadSanitizer must report
    /// (`scripts/tsan-planted-race`).
    let walkerSkipsClusterLock = Atomic<Bool>(false)
    #endif
    /// Called, under the cluster lock, with the word of every swap-charged slot being freed, so
    /// the owner of the charge (a memory group) can release it. Must only do atomic arithmetic.
    let swapUncharge: @Sendable (SwapTableSlot) -> Void
    /// The backend keeps per-slot copies and must hear of every freed slot.
    let invalidatesSlots: Bool
    /// Reads complete on the caller, from memory (kernel: `SWP_SYNCHRONOUS_IO`; see
    /// `SwapBackend.isSynchronous`): swap-ins always free their slots.
    public let isSynchronous: Bool
    /// Called, under the cluster lock, when a cluster becomes full (moves to the full list), so
    /// that the space can schedule a background pass over the device's full clusters (kernel:
    /// `schedule_work(&si->reclaim_work)`). Must only take leaf locks and must not block.
    let clusterFilled: @Sendable (SwapDevice) -> Void

    /// Creates a device over `backend`, marking the header slot, `badPages` and the slots past
    /// the end of the last cluster as never allocatable (kernel: `setup_clusters`).
    public convenience init(
        backend: any SwapBackend, header: SwapHeader? = nil, type: Int = 0, priority: Int = 0,
        discard: Bool = false, io: IOEngineChoice = .automatic
    ) throws(SwapError) {
        try self.init(
            backend: backend, header: header, type: type, priority: priority, discard: discard,
            swapUncharge: { _ in }, clusterFilled: { _ in }, io: IOEngine(backend: backend, choice: io))
    }

    init(
        backend: any SwapBackend, header: SwapHeader?, type: Int, priority: Int, discard: Bool,
        swapUncharge: @escaping @Sendable (SwapTableSlot) -> Void,
        clusterFilled: @escaping @Sendable (SwapDevice) -> Void, io: IOEngine
    ) throws(SwapError) {
        self.io = io
        let pages = backend.pageCount
        guard pages >= 1 + SwapCluster.slotCount else {
            throw SwapError(
                .tooSmall,
                "a swap device of \(pages) pages is too small; it needs at least one cluster (\(SwapCluster.slotCount) pages, 2 MiB) after the header"
            )
        }
        require(type >= 0 && type < SwapEntry.maxDevices, "swap type \(type) outside 0..<\(SwapEntry.maxDevices)")
        pageCount = pages
        clusterCount = (pages + SwapCluster.slotCount - 1) / SwapCluster.slotCount
        self.type = type
        self.priority = priority
        self.backend = backend
        self.header = header
        discardEnabled = discard
        self.swapUncharge = swapUncharge
        self.clusterFilled = clusterFilled
        invalidatesSlots = backend.wantsInvalidation
        isSynchronous = backend.isSynchronous
        clusters = try _UnsafeClusterStorage(clusterCount: clusterCount)
        hints = _UnsafeAtomicArray(count: Self.hintShards * SwapCluster.orderCount, initialValue: 0)

        var bad = Set<Int>([0])
        for p in header?.badPages ?? [] where Int(p) < pages { bad.insert(Int(p)) }
        for p in pages..<(clusterCount * SwapCluster.slotCount) { bad.insert(p) }
        badSlots = bad.count
        usablePages = pages - bad.filter { $0 < pages }.count

        var lists = ClusterLists(clusterCount: clusterCount)
        var badPerCluster = [Int: [Int]]()
        for p in bad { badPerCluster[p >> SwapCluster.slotShift, default: []].append(p & (SwapCluster.slotCount - 1)) }
        for c in 0..<clusterCount {
            let ci = clusters.cluster(c)
            if let slots = badPerCluster[c] {
                // Nobody else sees the device yet; the lock is the way to write its table.
                let g = clusters.lock(c)
                for s in slots { g.set(s, .bad) }
                g.unlock()
                ci.pointee.hasTable = true
                ci.pointee.count = UInt16(slots.count)
                ci.pointee.order = 0
                ci.pointee.list = ci.pointee.isFull ? ClusterLists.full : ClusterLists.nonfull(0)
            } else {
                ci.pointee.list = ClusterLists.free
            }
            lists.append(c, to: ci.pointee.list)
        }
        self.lists = Mutex(lists, rank: .device)
    }

    /// Tells the backend a slot was freed, if it wants to know.
    @inline(__always)
    func slotFreedLocked(_ g: borrowing ClusterGuard, slot i: Int) {
        if invalidatesSlots { backend.invalidate(page: g.index << SwapCluster.slotShift | i) }
    }

    /// Slots handed out and not yet freed.
    public var usedPages: Int {
        // Relaxed: a statistic; callers that need an exact figure quiesce first.
        inusePages.load(ordering: .relaxed)
    }

    /// Data slots still free.
    public var freePages: Int { usablePages - usedPages }

    /// The swap table slot of `entry`, read without any lock. A caller that acts on it must
    /// re-check under the cluster lock (or, for a folio, after taking the folio lock).
    @inline(__always)
    package func slot(_ entry: SwapEntry) -> SwapTableSlot {
        require(entry.type == type && entry.offset < pageCount, "\(entry) is not on device \(type)")
        return clusters.loadSlot(entry.clusterIndex, entry.slotInCluster)
    }

    /// Bytes of allocator metadata per slot when every cluster has its table: the 8-byte slot plus
    /// the cluster header, lock and list links amortized over 512 slots.
    public static var metadataBytesPerSlot: Double {
        let perCluster = _UnsafeClusterStorage.headerBytesPerCluster + 2 * MemoryLayout<Int32>.stride
        return Double(MemoryLayout<UInt64>.stride) + Double(perCluster) / Double(SwapCluster.slotCount)
    }
}
