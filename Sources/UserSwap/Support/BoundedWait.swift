import CUserSwap
import Glibc

/// A wait for another thread to let go of something it holds for a moment — a reclaimer its
/// isolated batch, a scanner its cluster — bounded by time, not by a count of yields: a count
/// is outrun on an idle core while the holder is still busy (a background batch of large
/// folios holds megabytes under write for milliseconds; ten thousand `sched_yield`s took less,
/// and turned a busy moment into a spurious out-of-memory, measured with `bench device-limits`
/// and 256 KiB folios).
///
/// Yields first (the holder is usually about to finish), then sleeps in short steps; gives up
/// once `limitNanoseconds` have passed since the first pause. A poll on purpose: what it waits
/// for is any of several threads (reclaimers, readers, scanners) letting go, and its point is
/// the bound, after which the caller reports out of memory or swap; a wait queue woken by every
/// reclaim batch and every scan would put a check on those paths for a rare wait.
struct BoundedWait {
    /// For an allocation waiting on reclaimers or reads in flight.
    static let reclaim = BoundedWait(limitNanoseconds: 2_000_000_000)
    /// For a slot allocation waiting on other threads' cluster scans.
    static let clusterScan = BoundedWait(limitNanoseconds: 100_000_000)

    let limitNanoseconds: UInt64
    private var pauses = 0
    private var deadline: UInt64 = 0

    init(limitNanoseconds: UInt64) { self.limitNanoseconds = limitNanoseconds }

    /// Waits a moment; false once the limit has passed (then the caller gives up).
    mutating func pause() -> Bool {
        let now = cus_monotonic_ns()
        if pauses == 0 { deadline = now + limitNanoseconds }
        guard now < deadline else { return false }
        pauses += 1
        if pauses < 1_000 { sched_yield() } else { usleep(100) }  // A poll on purpose: see the type's comment
        return true
    }
}
