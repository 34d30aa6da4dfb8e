import Foundation
import Synchronization

/// The background reclaimer (kernel: `kswapd`): a thread that sleeps until free frames fall
/// below the low watermark, then reclaims until they are back above the high one, so that
/// faulting threads rarely have to reclaim themselves.
final class BackgroundReclaimer: Sendable {
    private let wakeups = DispatchSemaphore(value: 0)
    private let pending = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let stopped = DispatchSemaphore(value: 0)
    /// Held during each reclaim pass, so that an invariant walk can wait for a quiet moment.
    private let passLock = Mutex((), rank: .backgroundReclaimPass)

    /// Starts the thread. It uses the reclaimer until `stop()`, whose caller keeps the reclaimer
    /// alive until then; the thread holds it only unowned, and reports that it stopped after it
    /// let go (a thread holding the reclaimer past `stop()` would release the devices on its own
    /// time).
    init(reclaimer: Reclaimer) {
        let stopped = self.stopped
        let thread = Thread { [unowned self, unowned reclaimer] in
            self.run(reclaimer)
            stopped.signal()
        }
        thread.name = "userswap-kswapd"
        thread.start()
    }

    private func run(_ reclaimer: Reclaimer) {
        let pool = reclaimer.allocator.pool, watermarks = reclaimer.allocator.watermarks
        let waiters = reclaimer.allocator.frameWaiters
        while true {
            wakeups.wait()
            if stopping.load(ordering: .acquiring) { break }
            pending.store(false, ordering: .releasing)
            reclaimer.stats.count(.kswapdWakeups)
            // Tasks waiting for frames (async pins, `FrameWaitQueue`) keep the pass going past
            // the high watermark until each has been resumed: the frames free go to the oldest
            // first, one each, before every batch. Relaxed: ends the pass early; the loop above
            // re-reads it acquiring
            while !stopping.load(ordering: .relaxed) {
                waiters.resume(upTo: pool.freeFrames)
                guard pool.freeFrames < watermarks.high || !waiters.isEmpty else { break }
                // One batch past the high watermark, so that a pass is at least two batches and
                // the first one's write-back overlaps the second one's scan.
                let batch = reclaimer.largeBatch
                let target = max(watermarks.high - pool.freeFrames, 0) + batch + waiters.count
                let freed = passLock.withLock { _ in reclaimer.shrink(target: target, batchSize: batch) }
                if freed == 0 {
                    // Nothing reclaimable right now (all pinned, or swap full): back off instead
                    // of spinning; the next allocation below the low watermark wakes us again. A
                    // backoff on purpose: no one event says pages became reclaimable (an unpin,
                    // a freed slot, a new device).
                    usleep(1000)
                    guard !waiters.isEmpty else { break }
                    // Tasks wait for frames. Reads in flight (or another reclaimer) will make
                    // some reclaimable: try again after the backoff, the tasks staying
                    // suspended. Nothing will: they look again, to fail as an allocation that
                    // cannot reclaim does (each one's next wait wakes us again).
                    if reclaimer.othersMayFree(besides: 0) { continue }
                    waiters.resumeAll()
                    break
                }
            }
            // Whatever this pass left free (a task queued during its last batch), in order.
            waiters.resume(upTo: pool.freeFrames)
        }
    }

    /// Runs `body` while the reclaimer is between passes (for the invariant walker).
    func paused<R>(_ body: () -> R) -> R {
        passLock.withLock { _ in body() }
    }

    /// Asks the thread to run; cheap when it is already asked.
    func wake() {
        if !pending.exchange(true, ordering: .acquiringAndReleasing) { wakeups.signal() }
    }

    /// Stops the thread and waits for it.
    func stop() {
        stopping.store(true, ordering: .releasing)
        wakeups.signal()
        stopped.wait()
    }
}
