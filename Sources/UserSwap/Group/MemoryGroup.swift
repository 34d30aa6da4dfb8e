import Synchronization

/// A memory group (kernel: a memory cgroup): a set of regions with a memory limit, a swap limit,
/// usage and peak, its own LRU lists and workingset clock, and the `memory.stat` counters that
/// apply to anonymous memory. Groups nest: a charge counts against the group and every ancestor.
///
/// Pages are charged when their folio is allocated and uncharged when it is freed; a group over
/// its limit reclaims its own pages first. Swap is charged per slot to the group whose page was
/// swapped out, when the page leaves memory, and released when the slot is freed or the page
/// comes back.
public final class MemoryGroup: Sendable {
    /// Unique within the space; the root group is 0.
    public let id: Int
    /// The name given to `SwapSpace.makeGroup(name:memoryLimit:swapLimit:parent:)`.
    public let name: String
    /// The group whose limits this one's charges count against too; nil for the root group.
    public let parent: MemoryGroup?
    let lru: LRUVec
    /// The workingset clock of this group (kernel: `lruvec->nonresident_age`).
    let nonresidentAge = Atomic<UInt64>(0)

    private let memoryLimitPages: Atomic<Int>
    private let swapLimitPages: Atomic<Int>
    private let memoryPages = Atomic<Int>(0)
    private let swapPages = Atomic<Int>(0)
    /// Swap reserved by folios that have slots but have not left memory yet.
    private let swapReservedPages = Atomic<Int>(0)
    private let memoryPeakPages = Atomic<Int>(0)
    private let swapPeakPages = Atomic<Int>(0)
    private let counters = _UnsafeAtomicArray<UInt64>(count: Stat.allCases.count, initialValue: 0)

    /// The `memory.stat` counters kept per group.
    public enum Stat: Int, CaseIterable, Sendable {
        /// Pages of the group read back from swap.
        case pswpin
        /// Pages of the group written to swap.
        case pswpout
        /// Pages brought back while their shadow said they had been evicted recently (kernel:
        /// `workingset_refault_anon`).
        case workingsetRefault
        /// Refaulted pages activated at once because their refault distance fit in memory.
        case workingsetActivate
        /// Refaulted pages that had been part of the active workingset when evicted.
        case workingsetRestore
        /// Pages looked at by reclaim.
        case pgscan
        /// Pages reclaim took out of memory.
        case pgsteal
        /// Pages moved to the active list.
        case pgactivate
        /// Reclaims run because the group reached its memory limit.
        case limitReclaims
    }

    init(id: Int, name: String, parent: MemoryGroup?, frames: FrameTable, memoryLimit: Int?, swapLimit: Int?) {
        self.id = id
        self.name = name
        self.parent = parent
        lru = LRUVec(frames: frames)
        memoryLimitPages = Atomic((memoryLimit ?? Int.max / SwapPage.size) / SwapPage.size)
        swapLimitPages = Atomic((swapLimit ?? Int.max / SwapPage.size) / SwapPage.size)
    }

    // MARK: limits and usage (bytes)

    /// The most memory the group's pages may occupy; nil for no limit. Set it with
    /// `SwapSpace.setMemoryLimit(_:of:)`, which swaps out what a lowered limit leaves above it
    /// before returning.
    ///
    /// The setter here only stores the number (the Group layer cannot call up into reclaim): a
    /// group left above it reclaims at its next charge.
    public internal(set) var memoryLimit: Int? {
        get { Self.bytes(memoryLimitPages.load(ordering: .relaxed)) }  // Relaxed: a setting; a racing charge sees the old or the new limit
        // Relaxed: a setting, read at the next charge (the store is atomic: a racing charge sees the old or the new limit)
        set { memoryLimitPages.store((newValue ?? Int.max / SwapPage.size) / SwapPage.size, ordering: .relaxed) }
    }

    /// Pages of memory charged to the group and the groups nested in it.
    var memoryPageCount: Int { memoryPages.load(ordering: .relaxed) }  // Relaxed: a look; see `FrameAllocator.setMemoryLimit`

    /// The memory limit in pages (`Int.max / page size` for none).
    var memoryLimitPageCount: Int { memoryLimitPages.load(ordering: .relaxed) }  // Relaxed: a setting; see `memoryLimit`

    /// The most swap the group's pages may occupy; nil for no limit.
    public var swapLimit: Int? {
        get { Self.bytes(swapLimitPages.load(ordering: .relaxed)) }  // Relaxed: a setting; a racing charge sees the old or the new limit
        // Relaxed: a setting, read at the next charge
        set { swapLimitPages.store((newValue ?? Int.max / SwapPage.size) / SwapPage.size, ordering: .relaxed) }
    }

    /// Bytes of memory charged (kernel: `memory.current`).
    public var memoryUsage: Int { memoryPages.load(ordering: .relaxed) * SwapPage.size }  // Relaxed: a statistic
    /// Bytes of swap charged (kernel: `memory.swap.current`).
    public var swapUsage: Int { swapPages.load(ordering: .relaxed) * SwapPage.size }  // Relaxed: a statistic
    /// Bytes of swap reserved by folios that have slots and are still in memory: swap-outs in
    /// flight, and dirty pages whose write failed (they leave memory once a write succeeds).
    /// The swap limit counts them with `swapUsage`.
    var swapReservedUsage: Int { swapReservedPages.load(ordering: .relaxed) * SwapPage.size }  // Relaxed: a statistic
    /// The most bytes of memory charged at once since the group was made.
    public var memoryPeak: Int { memoryPeakPages.load(ordering: .relaxed) * SwapPage.size }  // Relaxed: a statistic
    /// The most bytes of swap charged at once since the group was made.
    public var swapPeak: Int { swapPeakPages.load(ordering: .relaxed) * SwapPage.size }  // Relaxed: a statistic

    /// The `memory.stat` counters, plus `anon` (resident bytes), `swap` and the LRU sizes.
    public var stat: [String: Int] {
        var s = Dictionary(uniqueKeysWithValues: Stat.allCases.map { ("\($0)", self[$0]) })
        s["anon"] = memoryUsage
        s["swap"] = swapUsage
        s["active_anon"] = lru.pages(.active) * SwapPage.size
        s["inactive_anon"] = lru.pages(.inactive) * SwapPage.size
        return s
    }

    /// One of the group's counters (it includes its descendants').
    public subscript(_ s: Stat) -> Int { Int(counters[s.rawValue].pointee.load(ordering: .relaxed)) }  // Relaxed: a statistic

    func count(_ s: Stat, _ n: Int = 1) {
        var g: MemoryGroup? = self
        while let group = g {
            // Relaxed: a statistic.
            group.counters[s.rawValue].pointee.wrappingAdd(UInt64(n), ordering: .relaxed)
            g = group.parent
        }
    }

    // MARK: charging

    /// Charges `pages` of memory to this group and its ancestors, unless that takes one of them
    /// over its limit; returns the group that refused (nothing charged), or nil when charged.
    func tryChargeMemory(_ pages: Int) -> MemoryGroup? {
        var g: MemoryGroup? = self
        while let group = g {
            // Relaxed: a counter; the read-modify-write alone keeps it exact, and it guards no other memory
            let now = group.memoryPages.wrappingAdd(pages, ordering: .relaxed).newValue
            if now > group.memoryLimitPages.load(ordering: .relaxed) {  // Relaxed: a setting
                // Undo this level and every level below it.
                group.memoryPages.wrappingSubtract(pages, ordering: .relaxed)  // Relaxed: a counter (see above)
                var undo: MemoryGroup? = self
                while let u = undo, u !== group {
                    u.memoryPages.wrappingSubtract(pages, ordering: .relaxed)  // Relaxed: a counter (see above)
                    undo = u.parent
                }
                return group
            }
            Self.raise(group.memoryPeakPages, to: now)
            g = group.parent
        }
        return nil
    }

    func unchargeMemory(_ pages: Int) {
        var g: MemoryGroup? = self
        while let group = g {
            // Relaxed: a counter; the read-modify-write keeps it exact
            let old = group.memoryPages.wrappingSubtract(pages, ordering: .relaxed).oldValue
            require(old >= pages, "group \(group.name) memory uncharged below zero")
            g = group.parent
        }
    }

    /// Pages of memory this group may hold at most: the smallest of its and its ancestors'
    /// memory limits (a look: limits may change).
    func memoryCapacity() -> Int {
        var capacity = Int.max
        var g: MemoryGroup? = self
        while let group = g {
            capacity = min(capacity, group.memoryLimitPages.load(ordering: .relaxed))  // Relaxed: a setting, a look
            g = group.parent
        }
        return capacity
    }

    /// Pages of memory that fit under this group's and its ancestors' memory limits now,
    /// without reclaim (a look: racing charges may take the room).
    func memoryRoom() -> Int {
        var room = Int.max
        var g: MemoryGroup? = self
        while let group = g {
            // Relaxed: a look (racing charges may take the room)
            room = min(room, max(0, group.memoryLimitPages.load(ordering: .relaxed) - group.memoryPages.load(ordering: .relaxed)))
            g = group.parent
        }
        return room
    }

    /// Whether `pages` more of swap fit under this group's and its ancestors' swap limits.
    func swapFits(_ pages: Int) -> Bool {
        var g: MemoryGroup? = self
        while let group = g {
            // Relaxed: a look; a racing reservation may overshoot by one folio
            let used = group.swapPages.load(ordering: .relaxed) + group.swapReservedPages.load(ordering: .relaxed)
            if used + pages > group.swapLimitPages.load(ordering: .relaxed) { return false }  // Relaxed: a setting
            g = group.parent
        }
        return true
    }

    /// Whether this group or an ancestor uses half its swap limit or more (kernel:
    /// `mem_cgroup_swap_full` without the global test): its swapped-in pages should give their
    /// slots back rather than keep clean copies on swap.
    var isSwapFull: Bool {
        var g: MemoryGroup? = self
        while let group = g {
            let limit = group.swapLimitPages.load(ordering: .relaxed)  // Relaxed: a heuristic (whether to keep clean copies on swap)
            // Relaxed: a heuristic
            if limit < Int.max / SwapPage.size && group.swapPages.load(ordering: .relaxed) * 2 >= limit { return true }
            g = group.parent
        }
        return false
    }

    /// Reserves swap for a folio that just got slots and will be charged when it leaves memory,
    /// if the limits allow (so that a batch of swap-outs in flight cannot overshoot them).
    func tryReserveSwap(_ pages: Int) -> Bool {
        guard swapFits(pages) else { return false }
        var g: MemoryGroup? = self
        while let group = g {
            group.swapReservedPages.wrappingAdd(pages, ordering: .relaxed)  // Relaxed: a counter; the read-modify-write keeps it exact
            g = group.parent
        }
        return true
    }

    func unreserveSwap(_ pages: Int) {
        var g: MemoryGroup? = self
        while let group = g {
            group.swapReservedPages.wrappingSubtract(pages, ordering: .relaxed)  // Relaxed: a counter
            g = group.parent
        }
    }

    /// Records `pages` of swap for this group and its ancestors (never refused: the limit was
    /// checked when the slots were allocated).
    func chargeSwap(_ pages: Int) {
        var g: MemoryGroup? = self
        while let group = g {
            // Relaxed: a counter; the read-modify-write keeps it exact
            let now = group.swapPages.wrappingAdd(pages, ordering: .relaxed).newValue
            Self.raise(group.swapPeakPages, to: now)
            g = group.parent
        }
    }

    func unchargeSwap(_ pages: Int) {
        var g: MemoryGroup? = self
        while let group = g {
            let old = group.swapPages.wrappingSubtract(pages, ordering: .relaxed).oldValue  // Relaxed: a counter
            require(old >= pages, "group \(group.name) swap uncharged below zero")
            g = group.parent
        }
    }

    private static func raise(_ peak: borrowing Atomic<Int>, to value: Int) {
        var old = peak.load(ordering: .relaxed)  // Relaxed: a statistic (the peak)
        while value > old {
            // Relaxed: a statistic; the exchange keeps the maximum
            let (done, now) = peak.compareExchange(expected: old, desired: value, ordering: .relaxed)
            if done { return }
            old = now
        }
    }

    private static func bytes(_ pages: Int) -> Int? {
        pages >= Int.max / SwapPage.size / SwapPage.size ? nil : pages * SwapPage.size
    }
}
