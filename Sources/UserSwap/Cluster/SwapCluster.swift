/// Bookkeeping for one cluster of 512 swap slots (kernel: `struct swap_cluster_info`).
///
/// A cluster is the allocator's unit: it serves one folio order at a time, hands out naturally
/// aligned runs of `1 << order` slots, and owns a swap table (one `Atomic<UInt64>` per slot, see
/// `SwapTableSlot`) only while it is not free.
///
/// Every field is protected by the cluster lock (`_UnsafeClusterStorage.lock(_:)`), except that
/// `list` changes only with both the cluster lock and the device lock held, so either lock is
/// enough to read it.
struct SwapCluster {
    /// Slots per cluster (kernel: `SWAPFILE_CLUSTER`): the pages of one 2 MiB PMD, so that one
    /// cluster's table of 8-byte slots is exactly one 4 KiB page.
    static let slotCount = 512
    static let slotShift = 9
    /// The largest folio order a cluster serves: 2^9 pages = 2 MiB.
    static let maxOrder = 9
    static let orderCount = maxOrder + 1

    /// Used slots: the non-zero words of the table (allocated, cache-only, header and bad).
    var count: UInt16 = 0
    /// The order this cluster serves; meaningful only while `count > 0`.
    var order: UInt8 = 0
    /// The list the cluster is on (`ClusterLists.ID`), or `ClusterLists.isolated` while a
    /// thread has taken it off every list to scan it.
    var list: UInt8 = ClusterLists.isolated
    /// The cluster's table page is in use. A free cluster's table page is given back to the OS
    /// (it reads as all-empty), so a cluster with no table treats every slot as free.
    var hasTable = false

    @inline(__always) var isEmpty: Bool { count == 0 }
    @inline(__always) var isFull: Bool { Int(count) == Self.slotCount }

    /// Whether this cluster can serve `order`: order 0 fits anywhere; a larger order needs an
    /// empty cluster or one already serving that order (kernel: `cluster_is_usable`).
    @inline(__always)
    func isUsable(forOrder order: Int) -> Bool {
        order == 0 || count == 0 || Int(self.order) == order
    }
}
