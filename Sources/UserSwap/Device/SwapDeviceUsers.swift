import Dispatch
import Synchronization

/// The threads using a swap device right now, so that swapoff can wait for them before it takes
/// the device away (kernel: `si->users`, a `percpu_ref`, with its completion `si->comp`;
/// `get_swap_device`/`put_swap_device`, `percpu_ref_kill` and `wait_for_completion` in
/// `swapoff`).
///
/// The allocator holds a reference from before its first look at the device until the slots it
/// took are published in the cluster, so a swapoff that found the device empty and killed the
/// references knows that no allocation is still on its way into it.
///
/// One atomic word: the number of references, plus a `dead` bit set by `kill`. The kernel's
/// reference is per-CPU because every swap-in takes one; here only allocations do, a handful of
/// atomic operations each, so one word shared by all threads is cheap enough.
final class SwapDeviceUsers: Sendable {
    private static let dead = 1 << 62
    private let word = Atomic<Int>(0)
    /// Signalled once by the last `put` after a `kill` (kernel: `si->comp`).
    private let drained = DispatchSemaphore(value: 0)

    init() {}

    /// Takes a reference unless the device is being removed (kernel: `percpu_ref_tryget_live`).
    @inline(__always)
    func tryGet() -> Bool {
        // Relaxed: the compare-exchange below orders what matters.
        var value = word.load(ordering: .relaxed)
        while value & Self.dead == 0 {
            let (done, now) = word.weakCompareExchange(expected: value, desired: value + 1, ordering: .acquiring)
            if done { return true }
            value = now
        }
        return false
    }

    /// Drops a reference taken by `tryGet`. Releasing: what the holder did with the device
    /// (a slot taken, the device's in-use count raised) is visible to the swapoff it wakes.
    @inline(__always)
    func put() {
        let now = word.wrappingSubtract(1, ordering: .releasing).newValue
        require(now & (Self.dead - 1) != Self.dead - 1, "swap device reference dropped twice")
        if now == Self.dead { drained.signal() }
    }

    /// Refuses every new reference and sleeps until the last holder has dropped its own (kernel:
    /// `percpu_ref_kill` then `wait_for_completion(&si->comp)`). Then everything the holders did
    /// is visible to the caller.
    func kill() {
        let old = word.wrappingAdd(Self.dead, ordering: .acquiringAndReleasing).oldValue
        require(old & Self.dead == 0, "swap device references killed twice")
        if old != 0 {
            // Only the holders' `put` ends this sleep: a test scheduler must run them.
            yieldPoint(.blocking)
            drained.wait()
        }
    }

    /// Accepts references again after a `kill` (kernel: `percpu_ref_resurrect`), when swapoff
    /// found the device still in use after all.
    func revive() {
        let old = word.wrappingSubtract(Self.dead, ordering: .releasing).oldValue
        require(old == Self.dead, "swap device revived while references were held or alive")
    }
}
