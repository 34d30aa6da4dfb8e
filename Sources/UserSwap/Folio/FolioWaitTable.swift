import Synchronization

/// Tasks suspended until a folio is unlocked or its writeback ends (kernel: the hashed
/// `folio_wait_table` of `mm/filemap.c`, reached through `folio_waitqueue`): a fixed table of
/// waiter lists with the frame hashed to a bucket, so a folio carries no waiter storage, and a
/// folio nobody awaits costs its unlocker one flag test (`FolioFlags.asyncWaiters`, the
/// kernel's `PG_waiters`).
///
/// The protocol, on one side the waiter (`FrameTable.waitAsync`), on the other whoever clears
/// `locked` or `writeback` (`FrameTable.unlock`, `endWriteback`):
/// - The waiter, under its bucket's lock, sets `asyncWaiters` only while the bit it waits for
///   is still set (one compare-exchange), and appends its entry; if the bit was clear already it
///   does not wait.
/// - The clearer clears the bit and `asyncWaiters` in one atomic step; if `asyncWaiters` was
///   set, it takes the bucket's lock, removes every entry of the frame, and resumes them after
///   the lock is dropped. A waiter that registered before the clear is in the list by then (it
///   held the lock while it set the flag); one that came after saw the bit clear.
/// - Waking is wake-all for the frame: each woken task looks at the folio again and waits
///   again if it must (as the kernel's non-exclusive folio waits). Clearing either bit wakes
///   the waiters of both: a spurious wake-up costs a look.
/// - A waiter cancelled while suspended is resumed by its cancellation handler and removes its
///   entry itself; a flag left set with no entry costs the next clearer one scan of a bucket.
final class FolioWaitTable: Sendable {
    /// Buckets: a power of two, as the kernel's `PAGE_WAIT_TABLE_SIZE` (256).
    static let bucketCount = 256

    /// One task waiting for one frame.
    struct Entry: Sendable {
        let frame: UInt32
        let waiter: FolioWaiter
    }

    /// A bucket's list, behind its lock (`LockRank.folioWaitBucket`, taken by unlockers under
    /// any lock of higher rank; nothing is taken under it).
    final class Bucket: Sendable {
        let entries = Mutex<[Entry]>([], rank: .folioWaitBucket)
    }

    private let buckets: [Bucket] = (0..<FolioWaitTable.bucketCount).map { _ in Bucket() }

    init() {}

    /// The bucket of `frame`: a multiplicative hash, so neighbouring frames spread.
    @inline(__always)
    func bucket(_ frame: UInt32) -> Bucket {
        buckets[Int((frame &* 0x9E37_79B1) >> 24) & (Self.bucketCount - 1)]
    }

    /// Resumes every task waiting for `frame` (its clearer saw `asyncWaiters`). The
    /// continuations run outside the bucket's lock.
    func wake(_ frame: UInt32) {
        let woken: [FolioWaiter] = bucket(frame).entries.withLock { list in
            var woken: [FolioWaiter] = []
            list.removeAll { e in
                guard e.frame == frame else { return false }
                woken.append(e.waiter)
                return true
            }
            return woken
        }
        for w in woken { w.wake() }
    }

    /// The entries waiting now (tests: a cancelled waiter leaves none behind).
    var waiterCount: Int { buckets.reduce(0) { n, b in n + b.entries.withLock { $0.count } } }
}

/// One suspended task's hand-off between its wake-up and its cancellation: whichever comes
/// first resumes the continuation, exactly once (`true`: woken, `false`: cancelled).
final class FolioWaiter: Sendable {
    private enum State {
        /// In its bucket, not suspended yet.
        case registered
        /// Suspended on the continuation.
        case suspended(UnsafeContinuation<Bool, Never>)
        /// Woken before it suspended: it resumes at once.
        case woken
        /// Cancelled before it suspended: it resumes at once.
        case cancelled
    }

    /// Never held with a bucket's lock (woken after the bucket's lock drops).
    private let state = Mutex(State.registered, rank: .folioWaitBucket)

    init() {}

    /// Suspends on `c` unless already woken or cancelled (then resumes it at once).
    func suspend(_ c: UnsafeContinuation<Bool, Never>) {
        let now: Bool? = state.withLock { s in
            switch s {
            case .registered:
                s = .suspended(c)
                return nil
            case .woken: return true
            case .cancelled: return false
            case .suspended: trap("a folio waiter suspended twice")
            }
        }
        if let now { c.resume(returning: now) }
    }

    /// The bit cleared: resumes the task (outside the lock) unless it was cancelled first.
    func wake() {
        let c: UnsafeContinuation<Bool, Never>? = state.withLock { s in
            switch s {
            case .registered:
                s = .woken
                return nil
            case .suspended(let c):
                s = .woken
                return c
            case .woken, .cancelled: return nil
            }
        }
        c?.resume(returning: true)
    }

    /// The task was cancelled: resumes it (outside the lock) unless it was woken first.
    func cancel() {
        let c: UnsafeContinuation<Bool, Never>? = state.withLock { s in
            switch s {
            case .registered:
                s = .cancelled
                return nil
            case .suspended(let c):
                s = .cancelled
                return c
            case .woken, .cancelled: return nil
            }
        }
        c?.resume(returning: false)
    }
}
