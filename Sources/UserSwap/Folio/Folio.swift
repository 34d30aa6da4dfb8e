/// A folio: one or more physically contiguous frames of the engine's RAM, handled as a unit
/// (kernel: `struct folio`). It is just the index of its first (head) frame in the frame table,
/// so holding one costs no allocation and no reference counting by Swift; the frame table keeps
/// its state.
package struct Folio: Hashable, Sendable, CustomStringConvertible {
    /// Index of the head frame.
    public let frame: UInt32

    @inline(__always) public init(frame: UInt32) { self.frame = frame }

    public var description: String { "folio#\(frame)" }
}

/// The folio's state bits (kernel: `PG_*` page flags), in one 32-bit word per folio so that the
/// folio lock can sleep on it with a futex.
package struct FolioFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The folio lock (kernel: `PG_locked`): ownership of the folio's identity and I/O.
    public static let locked = FolioFlags(rawValue: 1 << 0)
    /// Someone sleeps waiting for `locked` to clear (kernel: `PG_waiters`).
    public static let waiters = FolioFlags(rawValue: 1 << 1)
    /// The contents are valid (kernel: `PG_uptodate`); never map a folio without it.
    public static let uptodate = FolioFlags(rawValue: 1 << 2)
    /// Newer than its copy on the device, if it has one (kernel: `PG_dirty`).
    public static let dirty = FolioFlags(rawValue: 1 << 3)
    /// Being written to the device (kernel: `PG_writeback`).
    public static let writeback = FolioFlags(rawValue: 1 << 4)
    /// Someone sleeps waiting for `writeback` to clear.
    public static let writebackWaiters = FolioFlags(rawValue: 1 << 5)
    /// Anonymous memory that swap can back (kernel: `PG_swapbacked`).
    public static let swapbacked = FolioFlags(rawValue: 1 << 6)
    /// In the swap cache: its `entry` names slots whose table words name this folio
    /// (kernel: `PG_swapcache`).
    public static let swapcache = FolioFlags(rawValue: 1 << 7)
    /// On an LRU list (kernel: `PG_lru`).
    public static let lru = FolioFlags(rawValue: 1 << 8)
    /// On the active list (kernel: `PG_active`).
    public static let active = FolioFlags(rawValue: 1 << 9)
    /// Touched since reclaim last looked (kernel: `PG_referenced`, and the PTE young bit).
    public static let referenced = FolioFlags(rawValue: 1 << 10)
    /// Part of the workingset when it was evicted (kernel: `PG_workingset`).
    public static let workingset = FolioFlags(rawValue: 1 << 11)
    /// Brought in by readahead and not used yet (kernel: `PG_readahead`).
    public static let readahead = FolioFlags(rawValue: 1 << 12)
    /// The last read failed (kernel: `PG_error`); the contents are not valid.
    public static let error = FolioFlags(rawValue: 1 << 13)
    /// Must be reclaimed as soon as writeback ends (kernel: `PG_reclaim`).
    public static let reclaim = FolioFlags(rawValue: 1 << 14)
    /// Holds a swap reservation of its group, released when it leaves the swap cache.
    public static let swapReserved = FolioFlags(rawValue: 1 << 15)
    /// Read ahead as the first page of its window: its first use starts reading the next
    /// window without waiting for it (kernel: `PG_readahead` as file readahead's async marker;
    /// swap's own `PG_readahead` is our `readahead`).
    public static let readaheadTrigger = FolioFlags(rawValue: 1 << 16)
    /// Read ahead because the application asked (`Region.prefetch(pages:)`), not by a fault's
    /// window: its use counts as a readahead hit but does not widen the next window (the
    /// kernel's `MADV_WILLNEED` pages carry no `PG_readahead` either).
    public static let prefetched = FolioFlags(rawValue: 1 << 17)
    /// A task is suspended until `locked` or `writeback` clears (kernel: `PG_waiters`, for the
    /// async waiters of `FolioWaitTable`): set only while one of the two is set, cleared with
    /// either, so that unlocking a folio nobody awaits costs one flag test more than before.
    public static let asyncWaiters = FolioFlags(rawValue: 1 << 18)
    /// A new folio allocated for a swap-in and on no LRU list yet (kernel: none — it puts such a
    /// folio on the LRU before the read): it joins a list once read, or is freed. Counted in
    /// `FrameTable.arrivingPages`, so that an allocation that finds nothing to reclaim knows
    /// these frames will soon be reclaimable and waits for them instead of failing.
    public static let arriving = FolioFlags(rawValue: 1 << 19)

    /// Every mark of a folio read ahead, cleared together at its first use.
    static let readaheadMarks: FolioFlags = [.readahead, .readaheadTrigger, .prefetched]
}
