import Dispatch
import Foundation
import Synchronization

/// Deletes the keys of freed slots, in batches, on a thread of its own.
///
/// The engine reports each freed slot through `invalidate(page:)` with the slot's cluster lock
/// held, where no I/O may happen; so the page only joins `pending` there, and a deleter thread
/// sends the UNLINKs (one per key group, pipelined) a millisecond later, when more have gathered.
/// UNLINK rather than DEL: the server frees the value off its main thread.
///
/// The race this must get right: a slot is freed (its page joins `pending`), allocated again,
/// and written, all before its deletion reaches the server. A late UNLINK would then delete the
/// new value, and the next read of the page would find nothing. So a write first takes its pages
/// out of `pending` (the SET replaces the old value anyway), and if the deleter has already
/// taken one of them (`inFlight`), waits for that UNLINK to be answered before sending the SET;
/// Redis then executes the UNLINK before the SET, whatever connections they used.
///
/// The order is sound without checking under the lock on every write: `invalidate` runs under
/// the cluster lock before the slot can be allocated again, and raises `outstanding` under our
/// lock; the allocation takes the same cluster lock afterwards, and the write follows it. So a
/// writer that loads `outstanding` (acquiring) and sees 0 knows every deletion that could concern
/// its pages has been answered.
final class RedisDeletionQueue: Sendable {
    private struct State {
        /// Freed pages whose keys may still exist.
        var pending = Set<Int>()
        /// Pages whose UNLINK has been sent and not yet answered.
        var inFlight = Set<Int>()
        var stopping = false
        /// The deleter thread was started (and will signal `exited`).
        var started = false
    }

    /// Everything above; never held across I/O.
    private let state = Mutex(State())
    /// `pending.count + inFlight.count`, updated under `state`, read without it as a fast path.
    private let outstanding = Atomic<Int>(0)
    /// Signalled when `pending` stops being empty, and to stop.
    private let wake = DispatchSemaphore(value: 0)
    /// Signalled by the deleter thread as it exits.
    private let exited = DispatchSemaphore(value: 0)
    /// How long the deleter lets freed pages gather before sending their UNLINKs.
    private let gatherDelay: Duration
    /// Keys per UNLINK command at most (one key group holds 512).
    static let batchKeys = RedisPageFormat.groupPages

    // Statistics; relaxed, nothing is published through them.
    let pagesDeleted = Atomic<Int>(0)
    let deleteFailures = Atomic<Int>(0)

    init(gatherDelay: Duration = .milliseconds(1)) {
        self.gatherDelay = gatherDelay
    }

    /// Starts the deleter thread; `delete` sends one batch of UNLINKs and says how many keys it
    /// deleted. The thread keeps `self` and `delete` (and what it captures) alive until `stop()`.
    func start(_ delete: @escaping @Sendable ([Int]) throws(RedisFailure) -> Void) {
        state.withLock { $0.started = true }
        let thread = Thread { [self] in
            while true {
                wake.wait()
                if state.withLock({ $0.stopping }) { break }
                _RedisSystem.sleep(gatherDelay)
                flush(delete)
            }
            flush(delete)
            exited.signal()
        }
        thread.name = "userswap-redis-unlink"
        thread.start()
    }

    /// Stops the deleter after it has sent what is pending; waits at most `timeout`.
    func stop(timeout: Duration) {
        let started = state.withLock { s in
            s.stopping = true
            return s.started
        }
        // A backend whose init failed never started its deleter: nothing to wait for.
        guard started else { return }
        wake.signal()
        let (seconds, _) = timeout.components
        _ = exited.wait(timeout: .now() + .seconds(Int(max(seconds, 1))))
    }

    /// `page` was freed. Called under the engine's cluster lock: a set insert and at most one
    /// semaphore signal.
    func add(_ page: Int) {
        let wasEmpty = state.withLock { s in
            let wasEmpty = s.pending.isEmpty
            // Relaxed: written under `state`; readers that skip the lock rely on the cluster
            // lock's ordering (see the type's comment), not on this operation's.
            if s.pending.insert(page).inserted { outstanding.add(1, ordering: .relaxed) }
            return wasEmpty
        }
        if wasEmpty { wake.signal() }
    }

    /// Forgets the pending deletions of `pages`, which are about to be written (or deleted
    /// synchronously), and waits until no UNLINK of theirs is on its way.
    func claim<C: Collection<Int>>(_ pages: C) {
        // Acquiring: pairs with the cluster lock ordering described in the type's comment.
        if outstanding.load(ordering: .acquiring) == 0 { return }
        var waits = 0
        while true {
            let busy = state.withLock { s in
                var busy = false
                for p in pages {
                    // Relaxed: under `state`, as in `add`.
                    if s.pending.remove(p) != nil { outstanding.subtract(1, ordering: .relaxed) }
                    if s.inFlight.contains(p) { busy = true }
                }
                return busy
            }
            if !busy { return }
            // The deleter's UNLINK is bounded by the command timeout; its pages leave inFlight
            // when it is answered or has failed.
            waits += 1
            _RedisSystem.sleep(.microseconds(waits < 100 ? 20 : 200))
        }
    }

    /// Returns when no deletion is pending or on its way (the deleter's current batch
    /// answered). Bounded by the deleter's command timeout and retries.
    func waitUntilIdle() {
        while outstanding.load(ordering: .acquiring) > 0 { _RedisSystem.sleep(.microseconds(100)) }
    }

    /// Pages waiting for deletion or being deleted (tests, statistics).
    var outstandingCount: Int { outstanding.load(ordering: .acquiring) }

    /// Sends every pending deletion, `batchKeys` at a time, until none is left. A failed batch
    /// is dropped (counted in `deleteFailures`): its keys waste server memory but hold nothing
    /// anybody will read, and a write that reuses a slot overwrites its key anyway.
    func flush(_ delete: ([Int]) throws(RedisFailure) -> Void) {
        while true {
            let batch: [Int] = state.withLock { s in
                var batch: [Int] = []
                batch.reserveCapacity(min(s.pending.count, Self.batchKeys * 8))
                while batch.count < Self.batchKeys * 8, let p = s.pending.popFirst() {
                    batch.append(p)
                    s.inFlight.insert(p)
                }
                return batch
            }
            if batch.isEmpty { return }
            do {
                try delete(batch)
                pagesDeleted.add(batch.count, ordering: .relaxed)  // Relaxed: a statistic
            } catch {
                deleteFailures.add(batch.count, ordering: .relaxed)  // Relaxed: a statistic
            }
            state.withLock { s in
                for p in batch { s.inFlight.remove(p) }
                // Releasing: a writer that then loads 0 (acquiring) skips the lock, so the
                // answered UNLINK must be ordered before it.
                outstanding.subtract(batch.count, ordering: .releasing)
            }
        }
    }
}
