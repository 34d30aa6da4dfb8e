import CUserSwap

/// Every lock of the engine, in the order they nest: the one place that says which lock may be
/// taken while which is held (the kernel writes its lock order at the top of `mm/rmap.c` and
/// checks it with lockdep).
///
/// A thread may take a lock only while every lock it holds ranks *higher*: outer locks rank
/// high, inner locks low. Debug builds record, per thread, the locks it holds (their owner) and
/// trap when a lock is taken while a lock of lower or equal rank is held, naming both; a
/// `tryLock` cannot deadlock, so it is recorded but not checked. Release builds compile none
/// of it: the ranks are constants that fold away.
///
/// | Rank | Lock | Kind | Guards |
/// |-----:|------|------|--------|
/// | 200 | `SwappableArray.writer` | Mutex | an array's count, segments and growth; held across pins, faults and reclaim |
/// | 190 | `BackgroundReclaimer.passLock` | Mutex | a background reclaim pass (the invariant walker waits on it) |
/// | 180 | `SlotReclaimWorker.passLock` | Mutex | a pass of the slot reclaimer (the invariant walker waits on it) |
/// | 170 | `SignalFaultRouter.changing` | Mutex | the SIGBUS router's table of transparent regions (adding and removing) |
/// | 150 | folio lock (`FrameTable.lock`) | bit in the flags word | a folio's contents while it is read, its swap-cache membership, its mapping changes (kernel: `folio_lock`) |
/// | 140 | page-table lock (`Region.ptl`) | `FutexLock` | the page-table entries of 512 pages and the slot references they hold (kernel: `pte_lockptr`) |
/// | 130 | cluster lock (`ClusterGuard`) | `FutexLock` | a cluster's swap table and `SwapCluster` bookkeeping (kernel: `ci->lock`) |
/// | 120 | device lock (`SwapDevice.lists`) | Mutex | a device's cluster lists and per-CPU cluster hints (kernel: `si->lock`) |
/// | 110 | device set (`SwapDeviceSet.state`) | Mutex | which devices exist, by type and priority (kernel: `swap_lock`, `swap_avail_lock`) |
/// | 100 | LRU lock (`LRUVec.state`) | Mutex | a group's LRU lists, links, counts and folios' `.lru`/`.active` flags (kernel: `lruvec->lru_lock`) |
/// | 90 | frame pool (`FramePool.state`) | Mutex | the buddy free lists (kernel: `zone->lock`) |
/// | 80 | reverse map (`ReverseMap.mappings`) | Mutex | region id → region |
/// | 78 | memory group table (`MemoryGroupTable.all`) | Mutex | the groups' strong references |
/// | 76 | frame window table (`FrameWindowTable.windows`) | Mutex | transparent regions' windows by slot |
/// | 70 | async reads (`AsyncReadCompleter.state`) | Mutex | queued readahead runs and the completer's thread state |
/// | 60 | I/O submission (`IOUringDriver.state`, `IOThreadPool.queues`) | Mutex | the ring's submission side / the pool's queues, and queued writes |
/// | 55 | I/O request slots (`IORequestTable.freeSlots`) | Mutex | the free request slots |
/// | 50 | slot reclaimer (`SlotReclaimWorker.state`, `.cache`) | Mutex | its queue of devices and thread state; the cache it uses until stopped |
/// | 45 | background reclaimer handle (`Reclaimer.kswapd`) | Mutex | the thread to wake |
/// | 40 | wait queue (`WaitQueue.state`) | Mutex | sleepers and the wake-up generation; may be taken under any lock above |
/// | 37 | frame waiters (`FrameWaitQueue`'s `TicketQueue`) | Mutex | the tasks suspended until free frames return, oldest first; taken by the background reclaimer with no lock held |
/// | 35 | folio wait bucket (`FolioWaitTable.buckets`; `AsyncReadGate`'s `TicketQueue`) | Mutex | the tasks suspended on the folios of one hash bucket (on a read slot); taken by a folio's unlock (by a task ending its read), under any lock above |
/// | 30 | last error (`Reclaimer.lastWriteFailure`, `TransparentFaultResolver.lastError`) | Mutex | the error to report |
/// | 20 | registries (`SwapStatistics.engines`, `StagedSwapFile.names`) | Mutex | a list, read or written whole |
/// | 10 | test hooks (`TestHook`, `TestHooks`, `YieldPoints.scheduler`, `SwapFile` hooks) | Mutex | a closure, copied out and called after the unlock |
///
/// Rules the ranks cannot show:
/// - Folio locks are bit locks (like the kernel's, which lockdep does not track either): a
///   folio locked on one thread may be unlocked on another (an async read's completer), so
///   they are not recorded; taking or waiting for one is checked against the locks recorded.
///   Two folio locks are taken together only with `tryLock` or on fresh folios nobody else
///   can see.
/// - A cluster lock is taken under the device lock only with `tryLock` (isolating a cluster,
///   kernel: `isolate_lock_cluster`).
/// - No lock is held across I/O (a folio lock is: it is what a reader waits on), an allocation
///   from the OS, or a sleep other than on a lock of lower rank.
///
/// Kept in one file: comments elsewhere that speak of lock order point here.
package enum LockRank: UInt8, Sendable {
    case swappableArrayWriter = 200
    case backgroundReclaimPass = 190
    case slotReclaimPass = 180
    case signalRouter = 170
    case crashGuard = 165
    case folio = 150
    case pageTable = 140
    case cluster = 130
    case device = 120
    case deviceSet = 110
    case lru = 100
    case framePool = 90
    case reverseMap = 80
    case groupTable = 78
    case windowTable = 76
    case asyncReads = 70
    case ioSubmission = 60
    case ioRequestSlots = 55
    case slotReclaimer = 50
    case backgroundReclaimerHandle = 45
    case waitQueue = 40
    case frameWaiters = 37
    case folioWaitBucket = 35
    case lastError = 30
    case registry = 20
    case testHook = 10

    /// The lock's name in a trap message.
    var name: String {
        switch self {
        case .swappableArrayWriter: "SwappableArray writer lock"
        case .backgroundReclaimPass: "background reclaim pass lock"
        case .slotReclaimPass: "slot reclaim pass lock"
        case .signalRouter: "SIGBUS router lock"
        case .crashGuard: "crash guard lock"
        case .folio: "folio lock"
        case .pageTable: "page-table lock"
        case .cluster: "cluster lock"
        case .device: "device lock"
        case .deviceSet: "device set lock"
        case .lru: "LRU lock"
        case .framePool: "frame pool lock"
        case .reverseMap: "reverse map lock"
        case .groupTable: "memory group table lock"
        case .windowTable: "frame window table lock"
        case .asyncReads: "async read completer lock"
        case .ioSubmission: "I/O submission lock"
        case .ioRequestSlots: "I/O request slot lock"
        case .slotReclaimer: "slot reclaimer lock"
        case .backgroundReclaimerHandle: "background reclaimer handle lock"
        case .waitQueue: "wait queue lock"
        case .frameWaiters: "frame waiters lock"
        case .folioWaitBucket: "folio wait bucket lock"
        case .lastError: "last error lock"
        case .registry: "registry lock"
        case .testHook: "test hook lock"
        }
    }
}

#if DEBUG
/// The debug-build checker: each thread's held locks in a C thread-local array
/// (`cus_thread_held_locks`: slot 0 the count, then one word per lock, its address shifted left
/// 8 bits with the rank in the low byte), in the order taken.
package enum LockOrder {
    private static let capacity = 64

    /// Traps if the calling thread holds a lock of rank `rank` or lower: taking (or sleeping on)
    /// a lock of rank `rank` now could deadlock against a thread that takes them in order.
    @inline(never)
    package static func check(taking rank: LockRank) {
        let held = cus_thread_held_locks()
        let count = Int(min(held[0], UInt64(capacity)))
        guard count > 0 else { return }
        for i in 1...count {
            let raw = UInt8(truncatingIfNeeded: held[i])
            guard raw <= rank.rawValue, let other = LockRank(rawValue: raw) else { continue }
            trap(
                "lock order: taking the \(rank.name) (rank \(rank.rawValue)) while holding the \(other.name) "
                    + "(rank \(other.rawValue)) at 0x\(String(held[i] >> 8, radix: 16)); a lock is taken only under "
                    + "locks of higher rank (Support/LockOrder.swift)")
        }
    }

    /// Records that the calling thread now holds `lock` (of rank `rank`).
    @inline(never)
    package static func acquired(_ rank: LockRank, _ lock: UnsafeRawPointer) {
        let held = cus_thread_held_locks()
        let count = Int(held[0])
        held[0] += 1
        // Past the capacity the lock is only counted: checks see the first 64.
        if count < capacity { held[count + 1] = UInt64(UInt(bitPattern: lock)) << 8 | UInt64(rank.rawValue) }
    }

    /// Records that the calling thread let `lock` go. Traps if it did not hold it: locks other
    /// than folio locks are released by their owner.
    @inline(never)
    package static func released(_ lock: UnsafeRawPointer) {
        let held = cus_thread_held_locks()
        let count = Int(held[0])
        require(count > 0, "lock order: released the lock at \(lock), which this thread does not hold")
        let key = UInt64(UInt(bitPattern: lock))
        let recorded = min(count, capacity)
        var i = recorded
        while i >= 1 && held[i] >> 8 != key { i -= 1 }
        if i >= 1 {
            // Locks are mostly released last-taken first; keep the others in order.
            for j in i..<recorded { held[j] = held[j + 1] }
            held[recorded] = 0
        } else {
            require(count > capacity, "lock order: released the lock at \(lock), which this thread does not hold")
        }
        held[0] -= 1
    }

    /// Whether the calling thread holds `lock` (for assertions).
    package static func holds(_ lock: UnsafeRawPointer) -> Bool {
        let held = cus_thread_held_locks()
        let key = UInt64(UInt(bitPattern: lock))
        let count = Int(min(held[0], UInt64(capacity)))
        return count > 0 && (1...count).contains { held[$0] >> 8 == key }
    }
}
#endif
