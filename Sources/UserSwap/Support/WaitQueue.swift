import Dispatch
import Synchronization

/// Wakes a swapoff that waits for a device to change (kernel: `try_to_unuse` retries until
/// `si->inuse_pages` is 0; here the retry sleeps until there is something new to do): a slot
/// freed, or a slot's mapping count changed (a swap-out that finished its unmap leaves a page
/// to bring back; a page mapped again leaves a cache-only slot to drop).
///
/// Costs nothing while nobody watches: the events check one counter after a fence. A watcher
/// registers before it looks at the device, so every event after its look bumps the
/// generation it waits on (the fences on both sides make sure that either the event's thread
/// sees the watcher, or the watcher's look sees the event).
final class SwapDeviceProgress: Sendable {
    private struct State: ~Copyable {
        var generation: UInt64 = 0
        var sleepers: [DispatchSemaphore] = []
    }

    private let watchers = Atomic<Int>(0)
    private let state = Mutex(State())

    init() {}

    /// Starts watching the device's events; each `startWatching` needs a `stopWatching`.
    func startWatching() {
        watchers.wrappingAdd(1, ordering: .sequentiallyConsistent)
        // Before the watcher's first look: pairs with the fence in `notify`.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }

    func stopWatching() {
        watchers.wrappingSubtract(1, ordering: .sequentiallyConsistent)
    }

    /// The number of events since watching began: read it before looking at the device.
    var generation: UInt64 { state.withLock { $0.generation } }

    /// Sleeps until an event has happened since `generation` was read.
    func wait(after generation: UInt64) {
        let sleeper = DispatchSemaphore(value: 0)
        let sleeps = state.withLock { s in
            guard s.generation == generation else { return false }
            s.sleepers.append(sleeper)
            return true
        }
        if sleeps { sleeper.wait() }
    }

    /// Records an event (a slot freed, a count changed). May run under a cluster lock: the
    /// state's mutex is taken only while someone watches, and is a leaf.
    @inline(__always)
    func notify() {
        // The event's stores before the watcher count: pairs with the watcher registering
        // before its look (see the type's comment).
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        guard watchers.load(ordering: .relaxed) > 0 else { return }
        state.withLock { s in
            s.generation &+= 1
            for sleeper in s.sleepers { sleeper.signal() }
            s.sleepers.removeAll()
        }
    }
}
