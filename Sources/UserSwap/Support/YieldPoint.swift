import Synchronization

/// Named places in the swap-in, swap-out, free and swapoff paths where a test scheduler may
/// switch threads, to explore interleavings of the synchronization protocol deterministically.
/// In release builds they compile to nothing; in debug builds they cost one relaxed load unless a
/// scheduler is installed.
package enum YieldPoint: String, Sendable, CaseIterable {
    case swapInMissed, swapInAdded, swapInLostRace, swapInFoundCached, swapInLocked, swapInBeforeRead
    /// Legacy protocol, the kernel just before swap-cache synchronization: the has-cache bit taken, the folio not inserted yet.
    case swapInPrepared
    case faultBeforeMap, faultMapped, faultZeroMapped
    case swapOutAllocated, swapOutUnmapped, swapOutBeforeRemove
    case zapCleared, zapBeforeCacheReclaim
    case swapOffBeforeUnuse
    /// The allocator saw allocation allowed (`writeOK`) under the cluster lock and is about to
    /// take its slots, not counted in the device's in-use pages yet: the window in which
    /// swapoff must not find the device empty and remove it. The only point reached with a lock
    /// held (the cluster lock): a scheduler pauses here only when the other threads cannot need
    /// that lock meanwhile (see `holdsClusterLock`).
    case allocationLocked
    /// Legacy protocols: a racer found the has-cache bit taken and no folio, and is about to
    /// sleep a tick (or until woken) before it looks again. The sleep ends by itself, so it is
    /// an ordinary yield point; a scheduler runs another thread first, as the sleep lets the
    /// bit's holder run.
    case swapInRetry
    /// A thread is about to sleep on a folio lock or an I/O completion, which only another
    /// thread can end: a scheduler must run someone else.
    case blocking

    /// Whether the thread reaching the point holds a cluster lock. Pausing it there is safe only
    /// when no other thread the scheduler runs meanwhile waits for that lock: the wait is a
    /// futex sleep no scheduler hears of, and the threads would hang.
    package var holdsClusterLock: Bool { self == .allocationLocked }
}

#if DEBUG
/// What a test scheduler implements (debug builds only, as is everything a test installs).
package protocol YieldScheduler: AnyObject, Sendable {
    func reached(_ point: YieldPoint)
}

/// The installed scheduler, if any (tests only).
package enum YieldPoints {
    static let installed = Atomic<Bool>(false)
    static let scheduler = Mutex<(any YieldScheduler)?>(nil, rank: .testHook)

    /// Installs `scheduler` for every engine in the process until `uninstall()`.
    public static func install(_ s: any YieldScheduler) {
        scheduler.withLock { $0 = s }
        installed.store(true, ordering: .releasing)
    }

    public static func uninstall() {
        installed.store(false, ordering: .releasing)
        scheduler.withLock { $0 = nil }
    }
}
#endif

/// Marks a yield point. Never call it with a cluster lock or page-table lock held, except at a
/// point that says so (`YieldPoint.holdsClusterLock`).
@inline(__always)
func yieldPoint(_ point: YieldPoint) {
    #if DEBUG
    // Relaxed: a scheduler installed a moment late just misses a few points.
    if YieldPoints.installed.load(ordering: .relaxed) {
        YieldPoints.scheduler.withLock { $0 }?.reached(point)
    }
    #endif
}
