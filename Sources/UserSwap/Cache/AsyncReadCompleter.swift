import Foundation
import Synchronization

/// Finishes the reads of asynchronous readahead windows, which no faulting thread waits for
/// (kernel: the bio completion of an async readahead, `end_swap_bio_read` → `folio_end_read`).
/// One thread per swap cache, started at the first async window, takes the submitted runs in
/// submission order, waits for each on its device's I/O engine (for io_uring it takes the
/// reaper role like any waiter), and completes it: uptodate or `.error` (out of the cache, the
/// data left on the device), on the LRU as read ahead, unlocked, put. A fault on one of those
/// folios meanwhile just waits on its folio lock, as on any read in flight.
///
/// In submission order, because a stream's windows complete in about that order anyway and a
/// queue costs no syscall; a run behind a slow one waits a little longer, never forever (every
/// submitted request is completed, see `IORequestTable.wait`).
///
/// Lifetime: each queued run holds its swap cache (and, through `SubmittedRead`, its device), so
/// a space, region or device released with reads in flight stays valid until they finish; the
/// thread holds only this object and stops when the cache goes (`stop`, from the cache's
/// `deinit`, possibly on this very thread as it drops a run's last reference).
///
/// The reads of async pins (`Region+AsyncPin.swift`) come here too: the pinning task is
/// suspended on its folio, and the unlock that completes the run resumes it, on this thread.
final class AsyncReadCompleter: Sendable {
    /// A submitted run and what completing it needs.
    struct Pending: Sendable {
        let cache: SwapCache
        let run: [RunFolio]
        let read: SubmittedRead
        /// The folio of the run that starts the next window when first used.
        let trigger: Folio?
        /// The run was prefetched by the application (`FolioFlags.prefetched`).
        let prefetched: Bool
        /// The folio of an async pin's own page, if the run holds it: settled as a swap-in, not
        /// as read ahead.
        var demand: Folio? = nil
    }

    /// The queue and the thread's state; all of it behind `state`.
    private struct State: ~Copyable {
        var queue: [Pending] = []
        var started = false
        var stopping = false
    }

    private let state = Mutex(State(), rank: .asyncReads)
    /// Runs queued and not finished yet (the one being finished included). Released after a run
    /// is finished and acquired by `outstanding`, so one who sees it drop sees the run's folios
    /// as the completer left them; the increment is relaxed (the queue's mutex follows).
    private let pending = Atomic<Int>(0)
    /// One signal per queued run, and one to stop.
    private let work = DispatchSemaphore(value: 0)
    /// Woken when the last outstanding run is finished (`waitUntilIdle`).
    private let idle = WaitQueue()

    init() {}

    /// Queues a submitted run for completion.
    func enqueue(_ pending: Pending) {
        self.pending.add(1, ordering: .relaxed)  // Relaxed: the queue's mutex, taken next, orders it
        let start = state.withLock { s in
            s.queue.append(pending)
            defer { s.started = true }
            return !s.started
        }
        if start {
            let thread = Thread { [self] in run() }
            thread.name = "userswap-readahead"
            thread.start()
        }
        work.signal()
    }

    /// Completes on the calling thread the queued run that holds `f`, if the completer thread
    /// has not taken it yet. A thread about to sleep on that folio's lock would
    /// otherwise wait for the completer to reach the run in submission order, behind every run
    /// queued before it, and then for its own wake-up: with the run taken here it waits for its
    /// read alone (kernel: the bio completion unlocks the folio; no thread stands in between).
    /// Caller holds a reference to `f` and no lock.
    func complete(runOf f: Folio) {
        let taken: Pending? = state.withLock { s in
            guard let i = s.queue.firstIndex(where: { p in p.run.contains { $0.folio == f } }) else { return nil }
            return s.queue.remove(at: i)
        }
        guard let taken else { return }
        // Its signal stays: the thread wakes once more and finds one run fewer.
        finish(taken)
    }

    /// Runs queued and not finished yet.
    var outstanding: Int { pending.load(ordering: .acquiring) }

    /// Sleeps until every queued run is finished (for a quiet space: the invariant walker,
    /// tests), woken by the completer when it finishes the last one.
    func waitUntilIdle() {
        idle.startWatching()
        defer { idle.stopWatching() }
        while true {
            let generation = idle.generation
            if outstanding == 0 { return }
            idle.wait(after: generation)
        }
    }

    /// Lets the thread exit once the queue is empty. Called by the cache's `deinit`: no run
    /// can be queued after it (each would hold the cache).
    func stop() {
        let running = state.withLock { s in
            s.stopping = true
            return s.started
        }
        if running { work.signal() }
    }

    private func run() {
        while true {
            work.wait()
            let next: Pending? = state.withLock { s in s.queue.isEmpty ? nil : s.queue.removeFirst() }
            guard let next else {
                if state.withLock({ $0.stopping && $0.queue.isEmpty }) { return }
                continue
            }
            finish(next)
        }
    }

    private func finish(_ run: Pending) {
        run.cache.completeReadahead(run.run, run.read, trigger: run.trigger, prefetched: run.prefetched, demand: run.demand)
        if pending.subtract(1, ordering: .releasing).newValue == 0 { idle.wake() }
    }
}
