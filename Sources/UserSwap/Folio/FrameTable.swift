import CUserSwap
import Glibc
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
/// - `meta`: order and memory group, written when the folio is allocated, and the window of
///   its placement (below). The head frame is not stored: a folio of order `k` starts at a
///   frame aligned to `1 << k` (the buddy allocator hands out only such blocks), so the head
///   is the frame with its low `k` bits cleared.
/// - `owner`: which region page maps the folio (reverse map), for reclaim.
/// - `placement`: where the folio's bytes live (`FramePlacement`; the arena unless the folio
///   belongs to a transparent region): the window's slot in `meta`, the page in the window in
///   a word of its own.
/// - `uses`: the folio's decayed use count, for the `.frequency` reclaim policy (`UseCount`).
///
/// 36 bytes per frame (`bytesPerFrame`): 64-bit words only for the swap entry and the owner,
/// which need them; every other field in 32 bits.
package final class FrameTable: Sendable {
    public let frameCount: Int
    let storage: _UnsafeFrameTableStorage
    /// Tasks suspended on folios (`FrameTable+AsyncWait.swift`).
    let waitTable = FolioWaitTable()
    /// Pages of the folios marked `.arriving`: allocated for swap-ins, not on a list yet.
    let arrivingPages = Atomic<Int>(0)

    /// Bytes of table per frame.
    static var bytesPerFrame: Int { _UnsafeFrameTableStorage.bytesPerFrame }

    init(frameCount: Int) {
        require(
            frameCount <= 1 << 32 && SwapCluster.maxOrder <= Int(Meta.orderMask)
                && MemoryGroupTable.capacity <= Int(Meta.groupMask) + 1 && FrameWindowTable.capacity <= Int(Meta.windowMask),
            "the frame table's meta word cannot hold \(frameCount) frames, order \(SwapCluster.maxOrder), \(MemoryGroupTable.capacity) groups and \(FrameWindowTable.capacity) windows"
        )
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
    public func order(_ f: Folio) -> Int { Meta.order(storage.meta(f.frame).pointee.load(ordering: .acquiring)) }

    @inline(__always)
    public func pageCount(_ f: Folio) -> Int { 1 << order(f) }

    /// The folio a frame belongs to: the frame rounded down to the start of a block of the
    /// order its meta word names (one load, so a racing split or reuse gives the old folio or
    /// the new one, never a mix; lookups re-check what they found).
    @inline(__always)
    public func folio(containing frame: UInt32) -> Folio {
        let order = Meta.order(storage.meta(frame).pointee.load(ordering: .acquiring))
        return Folio(frame: frame & ~(UInt32(1) << UInt32(order) &- 1))
    }

    /// The memory group charged for the folio.
    @inline(__always)
    public func group(_ f: Folio) -> Int {
        Int(storage.meta(f.frame).pointee.load(ordering: .acquiring) >> Meta.groupShift & Meta.groupMask)
    }

    /// The layout of a frame's `meta` word (not the reverse-map word, `ReverseMapKey`, which
    /// has its own):
    /// ```
    ///  31    27 26                 14 13           4 3       0
    /// +--------+---------------------+--------------+---------+
    /// |   0    |  window slot + 1    |   group id   |  order  |
    /// +--------+---------------------+--------------+---------+
    /// ```
    /// Order up to `SwapCluster.maxOrder` (9), group ids of `MemoryGroupTable.idBits` (10),
    /// window slots below `FrameWindowTable.capacity` (4096; 0 here is the arena). `init`
    /// checks that the three still fit.
    ///
    /// Written only by the folio's one owner: the allocator before anyone else sees the folio
    /// (`initializeMeta`, `setPlacement`), a split with the folio frozen, a free after the last
    /// reference. Readers that find the folio by a frame number read it racily and re-check.
    private enum Meta {
        static let orderMask: UInt32 = 0xf
        static let groupShift: UInt32 = 4
        static let groupMask: UInt32 = 0x3ff
        static let windowShift: UInt32 = 14
        static let windowMask: UInt32 = 0x1fff

        @inline(__always)
        static func order(_ word: UInt32) -> Int { Int(word & orderMask) }
        @inline(__always)
        static func windowSlotPlusOne(_ word: UInt32) -> UInt32 { word >> windowShift & windowMask }
    }

    /// Records order and group on every frame of a new folio, which is in the arena.
    func initializeMeta(_ f: Folio, order: Int, group: Int) {
        assert(f.frame & (UInt32(1) << UInt32(order) &- 1) == 0, "\(f) is not aligned to its order \(order)")
        assert(placement(f).isArena, "\(f) is initialized while it is placed in a window")
        let word = UInt32(group) << Meta.groupShift | UInt32(order)
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
    /// The meta word is read first: a placement set with `setPlacement` is seen whole by a
    /// reader whose load of the meta word sees its window.
    @inline(__always)
    func placement(_ f: Folio) -> FramePlacement {
        let window = Meta.windowSlotPlusOne(storage.meta(f.frame).pointee.load(ordering: .acquiring))
        guard window != 0 else { return .arena }
        return FramePlacement(raw: UInt64(window) << 32 | UInt64(storage.windowPage(f.frame).pointee.load(ordering: .acquiring)))
    }

    /// Sets where the folio's bytes live. Caller owns the folio alone (a new folio nobody else
    /// sees yet, or one being freed), so nobody else writes its meta word meanwhile.
    @inline(__always)
    func setPlacement(_ f: Folio, _ value: FramePlacement) {
        let window = UInt32(truncatingIfNeeded: value.raw >> 32)
        require(window <= Meta.windowMask, "window slot \(value.windowSlot) does not fit in the frame table")
        // The page first, so that a reader that sees the window sees its page (`placement`).
        storage.windowPage(f.frame).pointee.store(UInt32(truncatingIfNeeded: value.raw), ordering: .releasing)
        let meta = storage.meta(f.frame)
        // Relaxed: the caller is the word's only writer (see the function's comment).
        let old = meta.pointee.load(ordering: .relaxed)
        meta.pointee.store(old & ~(Meta.windowMask << Meta.windowShift) | window << Meta.windowShift, ordering: .releasing)
    }

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

/// The raw arrays behind `FrameTable`, in one private anonymous mapping made once for the
/// space's lifetime: the 64-bit words of every frame (entries, owners), then the 32-bit ones
/// (flags, reference counts, meta words, window pages, use counts). Every field of a frame
/// starts at zero, which the kernel's fresh pages already are, so nothing is written to make
/// the table, and a page of it costs RAM only once a frame in it is first used. (An integer
/// atomic is its value's bytes: all-zero bytes are `Atomic(0)`.)
struct _UnsafeFrameTableStorage: ~Copyable {
    let count: Int
    /// The mapping: `count * bytesPerFrame` bytes, rounded up to whole pages.
    let base: UnsafeMutableRawPointer
    let byteCount: Int
    private let entries: UnsafeMutablePointer<Atomic<UInt64>>
    private let owners: UnsafeMutablePointer<Atomic<UInt64>>
    private let flagWords: UnsafeMutablePointer<Atomic<UInt32>>
    private let refcounts: UnsafeMutablePointer<Atomic<UInt32>>
    private let metas: UnsafeMutablePointer<Atomic<UInt32>>
    private let windowPages: UnsafeMutablePointer<Atomic<UInt32>>
    private let useWords: UnsafeMutablePointer<Atomic<UInt32>>

    /// Bytes per frame: two 64-bit words and five 32-bit ones.
    static let bytesPerFrame = 2 * MemoryLayout<Atomic<UInt64>>.stride + 5 * MemoryLayout<Atomic<UInt32>>.stride

    init(count: Int) {
        require(count >= 1, "a frame table needs at least one frame, not \(count)")
        let bytes = (count * Self.bytesPerFrame + SwapPage.size - 1) & ~(SwapPage.size - 1)
        let block: UnsafeMutableRawPointer
        do {
            block = try Syscalls.mmap(
                length: bytes, protection: PROT_READ | PROT_WRITE, flags: MAP_PRIVATE | MAP_ANONYMOUS | cus_MAP_NORESERVE())
        } catch {
            // As any allocation failure in Swift: nothing sensible to do but stop.
            trap("cannot map \(bytes) bytes for the frame table of \(count) frames: \(error)")
        }
        // Sound: each array lies inside the mapping, aligned (the 64-bit ones first, from the
        // page-aligned start), and no two overlap.
        let wide = count * MemoryLayout<Atomic<UInt64>>.stride
        let narrow = count * MemoryLayout<Atomic<UInt32>>.stride
        entries = block.bindMemory(to: Atomic<UInt64>.self, capacity: count)
        owners = (block + wide).bindMemory(to: Atomic<UInt64>.self, capacity: count)
        flagWords = (block + 2 * wide).bindMemory(to: Atomic<UInt32>.self, capacity: count)
        refcounts = (block + 2 * wide + narrow).bindMemory(to: Atomic<UInt32>.self, capacity: count)
        metas = (block + 2 * wide + 2 * narrow).bindMemory(to: Atomic<UInt32>.self, capacity: count)
        windowPages = (block + 2 * wide + 3 * narrow).bindMemory(to: Atomic<UInt32>.self, capacity: count)
        useWords = (block + 2 * wide + 4 * narrow).bindMemory(to: Atomic<UInt32>.self, capacity: count)
        assert(2 * wide + 5 * narrow == count * Self.bytesPerFrame)
        self.count = count
        base = block
        byteCount = bytes
    }

    deinit { Syscalls.munmap(base, length: byteCount) }

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
    @inline(__always) func meta(_ f: UInt32) -> UnsafeMutablePointer<Atomic<UInt32>> {
        check(f)
        return metas + Int(f)
    }
    @inline(__always) func owner(_ f: UInt32) -> UnsafeMutablePointer<Atomic<UInt64>> {
        check(f)
        return owners + Int(f)
    }
    @inline(__always) func windowPage(_ f: UInt32) -> UnsafeMutablePointer<Atomic<UInt32>> {
        check(f)
        return windowPages + Int(f)
    }

    @inline(__always) func uses(_ f: UInt32) -> UnsafeMutablePointer<Atomic<UInt32>> {
        check(f)
        return useWords + Int(f)
    }

    @inline(__always) private func check(_ f: UInt32) { assert(Int(f) < count, "frame \(f) out of range") }
}

// Pointers fixed at init; every element is an atomic.
extension _UnsafeFrameTableStorage: @unchecked Sendable {}
