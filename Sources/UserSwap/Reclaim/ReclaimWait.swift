import CUserSwap
import Glibc

/// How long an allocation that found nothing to reclaim waits for another reclaimer (or reads in
/// flight) to free what it holds, before it calls memory full: by time, not by a count of
/// yields. A background batch of large folios holds thousands of pages through a write of
/// megabytes (milliseconds), which ten thousand `sched_yield`s on an idle core outran, turning
/// a busy moment into a spurious out-of-memory (measured: `bench device-limits` with 256 KiB
/// folios).
///
/// Yields first (the other reclaimer is usually about to finish), then sleeps in short steps;
/// gives up after `limit`. Nothing waits on the waiter, so the wait cannot deadlock: a reclaimer
/// never allocates frames.
struct ReclaimWait {
    static let limitNanoseconds: UInt64 = 2_000_000_000
    private var pauses = 0
    private var deadline: UInt64 = 0

    /// Waits a moment; false once the limit has passed (then the caller gives up).
    mutating func pause() -> Bool {
        let now = cus_monotonic_ns()
        if pauses == 0 { deadline = now + Self.limitNanoseconds }
        guard now < deadline else { return false }
        pauses += 1
        if pauses < 1_000 { sched_yield() } else { usleep(100) }
        return true
    }
}
