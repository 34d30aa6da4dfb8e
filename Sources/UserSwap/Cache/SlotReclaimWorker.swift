import Foundation
import Synchronization

/// The background slot reclaimer (kernel: `si->reclaim_work`, running `swap_reclaim_work`): a
/// thread that frees the slots only the swap cache holds — clean copies of pages that are back
/// in memory — in the full clusters of a device, while swap is over half full, so that
/// allocations find free slots instead of failing first and reclaiming synchronously.
///
/// A device schedules a pass when one of its clusters becomes full while less than half of
/// all swap is free (`SwapDeviceSet.isSwapFull`, the kernel's `vm_swap_full`); a device already
/// scheduled is not queued twice (`schedule_work` on a pending work item). Each pass scans as
/// many full clusters as the device has clusters' worth of slots in use (the kernel's
/// `force` pass) and skips busy folios, then comes back to them once they are let go.
///
/// Lifetime: a pass holds a `users` reference on its device, so a swapoff that found the device
/// empty waits for the pass before it removes the device, and once the device is removed no
/// pass can start on it (its references are dead); swapoff then drops it from the queue
/// (`forget`, kernel: `flush_work`). The space stops the thread and waits for it when it goes.
final class SlotReclaimWorker: Sendable {
    private struct State: ~Copyable {
        /// Devices waiting for a pass, each once.
        var pending: [SwapDevice] = []
        /// A pass is running (on a device already taken off `pending`).
        var running = false
        var stopping = false
        var exited = false
    }

    private let state = Mutex(State(), rank: .slotReclaimer)
    /// The swap cache, until `stop()`: then nothing here holds it (or its devices and their files)
    /// any more, even while the thread object lingers.
    private let cache: Mutex<SwapCache?>
    private let wakeups = DispatchSemaphore(value: 0)
    /// Signalled when the thread has left its loop.
    private let stopped = DispatchSemaphore(value: 0)
    /// Woken after every pass and when the thread exits, for `flush`.
    private let passes = WaitQueue()
    /// Held during each pass, so that an invariant walk can wait for a quiet moment.
    private let passLock = Mutex((), rank: .slotReclaimPass)

    /// Starts the thread. It uses the swap cache until `stop()`.
    init(cache: SwapCache) {
        self.cache = Mutex(cache, rank: .slotReclaimer)
        let thread = Thread { [self] in run() }
        thread.name = "userswap-swap-reclaim"
        thread.start()
    }

    private func run() {
        while true {
            wakeups.wait()
            while let device = next() {
                if let cache = cache.withLock({ $0 }) { pass(device, cache) }
                state.withLock { $0.running = false }
                passes.wake()
            }
            if state.withLock({ $0.stopping }) { break }
        }
        state.withLock { $0.exited = true }
        passes.wake()
        stopped.signal()
    }

    /// One pass over `device`'s full clusters, then the slots it skipped: a folio that was
    /// locked or under writeback during the pass (a swap-out or a fault in progress) may hold
    /// its slots for the cache alone right after — a swap-out that gave up, a page mapped
    /// again — and nothing else would bring the worker back to them until another cluster
    /// fills. So the worker sleeps until each such folio is let go (its lock, its writeback:
    /// no timer) and tries it once more. The kernel's pass does not come back; its allocator
    /// reclaims the rest when it finds no slot, as UserSwap's does too.
    private func pass(_ device: SwapDevice, _ cache: SwapCache) {
        let pass = passLock.withLock { _ in cache.reclaimFullClusters(device) }
        guard !pass.busy.isEmpty else { return }
        // Outside the pass lock: the folios' holders may be waiting for an invariant walk.
        for entry in pass.busy { cache.waitUntilIdle(entry) }
        _ = passLock.withLock { _ in cache.reclaimSkipped(pass.busy, on: device) }
    }

    /// Takes the next device off the queue and marks a pass running; nil when the queue is
    /// empty or the worker is stopping.
    private func next() -> SwapDevice? {
        state.withLock { s in
            guard !s.stopping, !s.pending.isEmpty else { return nil }
            s.running = true
            return s.pending.removeFirst()
        }
    }

    /// A cluster of `device` just became full: schedules a pass over the device's full clusters
    /// when swap is over half full. Called under that cluster's lock: takes only leaf locks (the
    /// worker's cache box, the device set's and the queue's) and signals a semaphore.
    func clusterFilled(_ device: SwapDevice) {
        guard let devices = cache.withLock({ $0?.devices }), devices.isSwapFull else { return }
        schedule(device)
    }

    /// Queues a pass over `device`'s full clusters unless one is queued already (kernel:
    /// `schedule_work`). A pass on a device that swapoff removed meanwhile does nothing.
    func schedule(_ device: SwapDevice) {
        let queued = state.withLock { s -> Bool in
            guard !s.stopping, !s.pending.contains(where: { $0 === device }) else { return false }
            s.pending.append(device)
            return true
        }
        if queued { wakeups.signal() }
    }

    /// Drops `device` from the queue and waits for a pass on it that is running (kernel:
    /// `flush_work(&si->reclaim_work)` in swapoff). After `device` is removed from its space no
    /// new pass can start on it; this lets the queue forget it at once.
    func forget(_ device: SwapDevice) {
        state.withLock { s in s.pending.removeAll { $0 === device } }
        flush()
    }

    /// Sleeps until no pass is queued or running (or the thread has exited).
    func flush() {
        passes.startWatching()
        defer { passes.stopWatching() }
        while true {
            let generation = passes.generation
            let idle = state.withLock { s in s.exited || (!s.running && (s.pending.isEmpty || s.stopping)) }
            if idle { return }
            passes.wait(after: generation)
        }
    }

    /// Runs `body` while no pass runs (for the invariant walker).
    func paused<R>(_ body: () -> R) -> R {
        passLock.withLock { _ in body() }
    }

    /// Whether the thread has exited (after `stop`).
    var hasExited: Bool { state.withLock { $0.exited } }

    /// Stops the thread after the pass it is running, and waits for it. Queued passes are
    /// dropped: the space is going away. Only the first call waits.
    func stop() {
        let first = state.withLock { s in
            defer { s.stopping = true }
            s.pending.removeAll()
            return !s.stopping
        }
        guard first else { return }
        wakeups.signal()
        stopped.wait()
        cache.withLock { $0 = nil }
    }
}
