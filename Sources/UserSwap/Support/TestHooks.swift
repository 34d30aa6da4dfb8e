#if DEBUG
import Synchronization

/// Switches that exist only so tests can prove they would catch a bug. Compiled in debug builds
/// only (`#if DEBUG`), as is every check of them: release builds carry no planted bug.
final class TestHooks: Sendable {
    /// Record the group's swap charge *after* the folio leaves the swap cache, the order the
    /// kernel's swap-cache synchronization series first had and then fixed: a slot freed by the
    /// delete is then charged and never uncharged.
    let recordSwapAfterDelete = Atomic<Bool>(false)
    /// Runs in reclaim right before a folio is removed from the cache (the folio is locked).
    let beforeRemoveMapping = Mutex<(@Sendable () -> Void)?>(nil, rank: .testHook)
    let hasBeforeRemoveMapping = Atomic<Bool>(false)
    /// Skip the re-check, after sleeping on a cached folio's lock, that it still is the entry's
    /// folio and uptodate: the bug the kernel's "always lock and check the swap cache folio
    /// before use" fixed. The schedule explorer must catch it.
    let skipRecheckAfterLock = Atomic<Bool>(false)
    /// Under the legacy bypass protocols, a racer that finds the has-cache bit taken and no folio
    /// yet reads the entry itself before backing off: the bit then no longer makes the read
    /// exclusive (the double read the kernel's `swapcache_prepare` in the bypass path prevents).
    /// The schedule explorer must catch it.
    let legacyLoserReads = Atomic<Bool>(false)
    /// Swapoff removes a device once it finds it empty, without first waiting for the
    /// allocations still on their way into it (the device's `users` kill and wait, the kernel's
    /// `percpu_ref_kill` and `wait_for_completion` in `swapoff`): an allocation that saw
    /// allocation allowed under its cluster lock then takes a slot on a removed device. The
    /// schedule explorer must catch it.
    let swapOffSkipsUsersWait = Atomic<Bool>(false)
}
#endif
