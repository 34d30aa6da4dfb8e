import CUserSwap
import Dispatch
import Synchronization

/// Threads asleep until something changes (kernel: a `wait_queue_head_t` with
/// `prepare_to_wait`/`wake_up`, `waitqueue_active` keeping the wake-up free when nobody waits).
/// Swapoff sleeps on its device's queue until the device changes (a slot freed, a mapping count
/// changed); the legacy wait-queue protocol's racers sleep on the engine's `swapcache_wq` until
/// the has-cache bit's holder inserts its folio or gives the bit up, at most one tick.
///
/// Costs nothing while nobody watches: `wake` checks one counter after a fence. A waiter starts
/// watching before it looks at the state it waits on, so every change after its look bumps the
/// generation it sleeps on (the fences on both sides make sure that either the waker sees the
/// watcher, or the watcher's look sees the change).
final class WaitQueue: Sendable {
    private struct State: ~Copyable {
        var generation: UInt64 = 0
        var sleepers: [DispatchSemaphore] = []
    }

    private let watchers = Atomic<Int>(0)
    private let state = Mutex(State(), rank: .waitQueue)

    init() {}

    /// Starts watching for changes; each `startWatching` needs a `stopWatching`.
    func startWatching() {
        watchers.wrappingAdd(1, ordering: .sequentiallyConsistent)
        // Before the watcher's first look: pairs with the fence in `notify`.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }

    func stopWatching() {
        watchers.wrappingSubtract(1, ordering: .sequentiallyConsistent)
    }

    /// The number of wake-ups seen by watchers: read it before looking at the state.
    var generation: UInt64 { state.withLock { $0.generation } }

    /// Sleeps until a wake-up has happened since `generation` was read, or, with a `deadline`
    /// (`cus_monotonic_ns` time), until then at the latest.
    func wait(after generation: UInt64, deadline: UInt64? = nil) {
        let sleeper = DispatchSemaphore(value: 0)
        let sleeps = state.withLock { s in
            guard s.generation == generation else { return false }
            s.sleepers.append(sleeper)
            return true
        }
        guard sleeps else { return }
        guard let deadline else {
            sleeper.wait()
            return
        }
        let now = cus_monotonic_ns()
        let timeout = DispatchTime.now() + .nanoseconds(Int(deadline > now ? deadline - now : 0))
        if sleeper.wait(timeout: timeout) == .timedOut {
            // Not woken: take the sleeper off the queue, unless a wake-up is signalling it
            // right now (then its signal is simply never consumed).
            state.withLock { s in s.sleepers.removeAll { $0 === sleeper } }
        }
    }

    /// Wakes every sleeper (after a change they may wait for: a slot freed, a count changed,
    /// a folio inserted). May run under a cluster lock: the state's mutex is taken only while
    /// someone watches, and is a leaf.
    @inline(__always)
    func wake() {
        // The change's stores before the watcher count: pairs with the watcher registering
        // before its look (see the type's comment).
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        guard watchers.load(ordering: .relaxed) > 0 else { return }  // Relaxed: ordered by the fence above
        state.withLock { s in
            s.generation &+= 1
            for sleeper in s.sleepers { sleeper.signal() }
            s.sleepers.removeAll()
        }
    }
}
