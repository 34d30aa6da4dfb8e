import Synchronization

/// The frame table (kernel: memmap, the array of `struct page`): per-frame state as a struct of
/// arrays indexed by frame number, so a folio is an integer and the fault path allocates nothing.
///
/// Per frame:
/// - `flags`: the `FolioFlags` word; the folio lock and the writeback wait sleep on it.
/// - `refcount`: references to the folio (head frame only): one per mapping, `nr` for the swap
///   cache, one per transient user (a lookup, a pin). 0 means free or being freed.
/// - `entry`: the first swap entry of the folio while it is in the swap cache. Written with the
///   folio locked and the cluster locked; read racily by lookups, which re-check it.
/// - `meta`: head frame, order and memory group, written when the folio is allocated.
/// - `owner`: which region page maps the folio (reverse map), for reclaim.
/// - `placement`: where the folio's bytes live (`FramePlacement`; the arena unless the folio
///   belongs to a transparent region).
/// - `uses`: the folio's decayed use count, for the `.frequency` reclaim policy (`UseCount`).
package final class FrameTable: Sendable {
    public let frameCount: Int
    let storage: _UnsafeFrameTableStorage
    /// Tasks suspended on folios (`FrameTable+AsyncWait.swift`).
    let waitTable = FolioWaitTable()
    /// Pages of the folios marked `.arriving`: allocated for swap-ins, not on a list yet.
    let arrivingPages = Atomic<Int>(0)

    init(frameCount: Int) {
        self.frameCount = frameCount
        storage = _UnsafeFrameTableStorage(count: frameCount)
    }

    // MARK: arriving folios

    /// Marks a new folio, locked by its swap-in, as arriving (`FolioFlags.arriving`).
    @inline(__always)
    func markArriving(_ f: Folio) {
        setFlags(f, .arriving)
        // Relaxed: a hint for an allocator deciding whether to wait; the flag is what counts.
        arrivingPages.add(pageCount(f), ordering: .relaxed)
    }

    /// Ends `f`'s arrival if it was arriving: it went on a list, or is being freed. Called by
    /// the folio's one owner (the LRU lock held, or its last reference gone), so the flag clears
    /// once and the count stays exact.
    @inline(__always)
    func endArrival(_ f: Folio) {
        guard flags(f).contains(.arriving) else { return }
        clearFlags(f, .arriving)
        // Relaxed: as in `markArriving`.
        arrivingPages.subtract(pageCount(f), ordering: .relaxed)
    }

    // MARK: flags

    @inline(__always)
    public func flags(_ f: Folio) -> FolioFlags {
        FolioFlags(rawValue: storage.flags(f.frame).pointee.load(ordering: .acquiring))
    }

    /// Sets `bits`; returns the flags before.
    @inline(__always) @discardableResult
    func setFlags(_ f: Folio, _ bits: FolioFlags) -> FolioFlags {
        FolioFlags(rawValue: storage.flags(f.frame).pointee.bitwiseOr(bits.rawValue, ordering: .acquiringAndReleasing).oldValue)
    }

    /// Clears `bits`; returns the flags before.
    @inline(__always) @discardableResult
    func clearFlags(_ f: Folio, _ bits: FolioFlags) -> FolioFlags {
        FolioFlags(rawValue: storage.flags(f.frame).pointee.bitwiseAnd(~bits.rawValue, ordering: .acquiringAndReleasing).oldValue)
    }

    /// Sets `bits` only if some are missing: a referenced page is touched constantly, and a
    /// load is cheaper than writing a shared cache line every time.
    @inline(__always)
    func markFlags(_ f: Folio, _ bits: FolioFlags) {
        // Relaxed: the bits are hints for reclaim; a lost race just sets them again.
        if storage.flags(f.frame).pointee.load(ordering: .relaxed) & bits.rawValue != bits.rawValue {
            setFlags(f, bits)
        }
    }

    // MARK: reference count

    @inline(__always)
    public func refcount(_ f: Folio) -> Int { Int(storage.refcount(f.frame).pointee.load(ordering: .acquiring)) }

    /// Takes a reference the caller knows to be safe (it already holds one, or holds a lock that
    /// keeps the folio alive).
    @inline(__always)
    func get(_ f: Folio, _ n: UInt32 = 1) {
        // Relaxed: the caller holds a reference already (kernel: `folio_get`)
        let old = storage.refcount(f.frame).pointee.wrappingAdd(n, ordering: .relaxed).oldValue
        require(old > 0, "get on a free \(f)")
    }

    /// Takes a reference unless the folio is free or being freed (kernel: `folio_try_get`).
    @inline(__always)
    func tryGet(_ f: Folio) -> Bool {
        let rc = storage.refcount(f.frame)
        var old = rc.pointee.load(ordering: .relaxed)  // Relaxed: a peek; the compare-exchange below orders
        while old != 0 {
            // Sequentially consistent: pairs with the unmap in swap-out (store PTE, then read the
            // refcount) so that a pin and an unmap never both miss each other.
            let (done, now) = rc.pointee.compareExchange(
                expected: old, desired: old + 1,
                ordering: .sequentiallyConsistent)
            if done { return true }
            old = now
        }
        return false
    }

    /// Drops `n` references. Returns true when that was the last: the caller then frees it.
    @inline(__always)
    func put(_ f: Folio, _ n: UInt32 = 1) -> Bool {
        let old = storage.refcount(f.frame).pointee.wrappingSubtract(n, ordering: .acquiringAndReleasing).oldValue
        require(old >= n, "refcount underflow on \(f)")
        return old == n
    }

    /// Drops the references from `expected` to 0 in one step if nobody else holds one (kernel:
    /// `folio_ref_freeze`); a racing `tryGet` then fails.
    @inline(__always)
    func freeze(_ f: Folio, expected: UInt32) -> Bool {
        storage.refcount(f.frame).pointee.compareExchange(
            expected: expected, desired: 0,
            ordering: .sequentiallyConsistent
        ).exchanged
    }

    /// Sets the count of a folio nobody else can see yet (just allocated).
    @inline(__always)
    func initializeRefcount(_ f: Folio, _ n: UInt32) {
        storage.refcount(f.frame).pointee.store(n, ordering: .releasing)
    }

    // MARK: identity

    /// The swap entry of a folio in the swap cache (meaningful only with `.swapcache`).
    @inline(__always)
    public func entry(_ f: Folio) -> SwapEntry { SwapEntry(raw: storage.entry(f.frame).pointee.load(ordering: .acquiring)) }

    @inline(__always)
    func setEntry(_ f: Folio, _ e: SwapEntry) { storage.entry(f.frame).pointee.store(e.raw, ordering: .releasing) }

    /// log2 of the folio's pages.
    @inline(__always)
    public func order(_ f: Folio) -> Int { Int(storage.meta(f.frame).pointee.load(ordering: .acquiring) >> Meta.orderShift & 0xff) }

    @inline(__always)
    public func pageCount(_ f: Folio) -> Int { 1 << order(f) }

    /// The folio a frame belongs to.
    @inline(__always)
    public func folio(containing frame: UInt32) -> Folio {
        Folio(frame: UInt32(truncatingIfNeeded: storage.meta(frame).pointee.load(ordering: .acquiring)))
    }

    /// The memory group charged for the folio.
    @inline(__always)
    public func group(_ f: Folio) -> Int { Int(storage.meta(f.frame).pointee.load(ordering: .acquiring) >> Meta.groupShift & 0xffff) }

    /// The layout of a frame's `meta` word (not the reverse-map word, `ReverseMapKey`, which
    /// has its own):
    /// ```
    ///  63      56 55          40 39     32 31                      0
    /// +----------+--------------+---------+-------------------------+
    /// |    0     |  group id    |  order  |       head frame        |
    /// +----------+--------------+---------+-------------------------+
    /// ```
    private enum Meta {
        static let orderShift: UInt64 = 32
        static let groupShift: UInt64 = 40
    }

    /// Records head, order and group on every frame of a new folio.
    func initializeMeta(_ f: Folio, order: Int, group: Int) {
        let word = UInt64(group) << Meta.groupShift | UInt64(order) << Meta.orderShift | UInt64(f.frame)
        for i in 0..<(1 << order) {
            storage.meta(f.frame + UInt32(i)).pointee.store(word, ordering: .releasing)
        }
    }

    /// The region page that maps the folio (the reverse map's key), `.none` when unmapped.
    @inline(__always)
    func owner(_ f: Folio) -> ReverseMapKey { ReverseMapKey(raw: storage.owner(f.frame).pointee.load(ordering: .acquiring)) }

    @inline(__always)
    func setOwner(_ f: Folio, _ value: ReverseMapKey) { storage.owner(f.frame).pointee.store(value.raw, ordering: .releasing) }

    /// Where the folio's bytes live; set by the allocator's caller before anyone else sees it.
    @inline(__always)
    func placement(_ f: Folio) -> FramePlacement { FramePlacement(raw: storage.placement(f.frame).pointee.load(ordering: .acquiring)) }

    @inline(__always)
    func setPlacement(_ f: Folio, _ value: FramePlacement) { storage.placement(f.frame).pointee.store(value.raw, ordering: .releasing) }

    /// The folio's use count word (`UseCount`). Relaxed: a ranking hint, written by reclaim
    /// (which holds the folio isolated) and by whoever brings the folio in.
    @inline(__always)
    func uses(_ f: Folio) -> UseCount { UseCount(raw: storage.uses(f.frame).pointee.load(ordering: .relaxed)) }  // Relaxed: a ranking hint

    @inline(__always)
    // Relaxed: a ranking hint (see `uses`)
    func setUses(_ f: Folio, _ value: UseCount) { storage.uses(f.frame).pointee.store(value.raw, ordering: .relaxed) }

    /// Counts one use of a pinned folio, up to the maximum: a load and, below it, a store. A
    /// racing pin may lose an increment; the epoch stays as it was (reclaim brings the count up
    /// to date each time it looks).
    @inline(__always)
    func noteUse(_ f: Folio) {
        let word = storage.uses(f.frame)
        let raw = word.pointee.load(ordering: .relaxed)  // Relaxed: a ranking hint; a racing pin may lose an increment
        if Int(raw & 0xff) < UseCount.maxCount { word.pointee.store(raw + 1, ordering: .relaxed) }  // Relaxed: a ranking hint
    }

    /// Whether `f` is in the swap cache and covers `entry` (kernel: `folio_matches_swap_entry`).
    /// Stable only with the folio locked.
    @inline(__always)
    public func matches(_ f: Folio, _ e: SwapEntry) -> Bool {
        guard flags(f).contains(.swapcache) else { return false }
        let first = entry(f)
        return first.type == e.type && e.offset >= first.offset && e.offset < first.offset + pageCount(f)
    }
}

/// The raw arrays behind `FrameTable`, allocated once for the space's lifetime.
struct _UnsafeFrameTableStorage: ~Copyable {
    let count: Int
    private let flagWords: UnsafeMutablePointer<Atomic<UInt32>>
    private let refcounts: UnsafeMutablePointer<Atomic<UInt32>>
    private let entries: UnsafeMutablePointer<Atomic<UInt64>>
    private let metas: UnsafeMutablePointer<Atomic<UInt64>>
    private let owners: UnsafeMutablePointer<Atomic<UInt64>>
    private let placements: UnsafeMutablePointer<Atomic<UInt64>>
    private let useWords: UnsafeMutablePointer<Atomic<UInt32>>

    init(count: Int) {
        self.count = count
        flagWords = .allocate(capacity: count)
        refcounts = .allocate(capacity: count)
        entries = .allocate(capacity: count)
        metas = .allocate(capacity: count)
        owners = .allocate(capacity: count)
        placements = .allocate(capacity: count)
        useWords = .allocate(capacity: count)
        for i in 0..<count {
            (flagWords + i).initialize(to: Atomic(0))
            (refcounts + i).initialize(to: Atomic(0))
            (entries + i).initialize(to: Atomic(0))
            (metas + i).initialize(to: Atomic(UInt64(i)))
            (owners + i).initialize(to: Atomic(0))
            (placements + i).initialize(to: Atomic(0))
            (useWords + i).initialize(to: Atomic(0))
        }
    }

    deinit {
        for p in [entries, metas, owners, placements] {
            p.deinitialize(count: count)
            p.deallocate()
        }
        for p in [flagWords, refcounts, useWords] {
            p.deinitialize(count: count)
            p.deallocate()
        }
    }

    @inline(__always) func flags(_ f: UInt32) -> UnsafeMutablePointer<Atomic<UInt32>> {
        check(f)
        return flagWords + Int(f)
    }
    @inline(__always) func refcount(_ f: UInt32) -> UnsafeMutablePointer<Atomic<UInt32>> {
        check(f)
        return refcounts + Int(f)
    }
    @inline(__always) func entry(_ f: UInt32) -> UnsafeMutablePointer<Atomic<UInt64>> {
        check(f)
        return entries + Int(f)
    }
    @inline(__always) func meta(_ f: UInt32) -> UnsafeMutablePointer<Atomic<UInt64>> {
        check(f)
        return metas + Int(f)
    }
    @inline(__always) func owner(_ f: UInt32) -> UnsafeMutablePointer<Atomic<UInt64>> {
        check(f)
        return owners + Int(f)
    }
    @inline(__always) func placement(_ f: UInt32) -> UnsafeMutablePointer<Atomic<UInt64>> {
        check(f)
        return placements + Int(f)
    }

    @inline(__always) func uses(_ f: UInt32) -> UnsafeMutablePointer<Atomic<UInt32>> {
        check(f)
        return useWords + Int(f)
    }

    @inline(__always) private func check(_ f: UInt32) { assert(Int(f) < count, "frame \(f) out of range") }
}

// Pointers fixed at init; every element is an atomic.
extension _UnsafeFrameTableStorage: @unchecked Sendable {}
