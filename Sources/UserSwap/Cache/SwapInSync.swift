import Glibc

/// How concurrent swap-ins of the same entry find each other: swap-cache synchronization, or one of the
/// three the kernel used before it, kept to measure against (see docs/KERNEL-FIDELITY.md).
public enum SwapInSync: Sendable, Equatable, CustomStringConvertible {
    /// Swap-cache synchronization: the swap cache is the synchronization layer. Whoever installs a folio
    /// in the slot first reads it; everyone else finds that folio and sleeps on its lock.
    case swapCache
    /// `legacy`: the kernel just before swap-cache synchronization, where no swap-in bypasses the swap cache. A
    /// has-cache bit in the slot is taken first, in its own critical section (kernel:
    /// `swapcache_prepare` setting `SWAP_HAS_CACHE`), then the locked folio is inserted and read,
    /// and racers that find the folio sleep on its lock, as with the swap cache. Only between
    /// the bit and the insert (where the kernel charged the folio to its memory cgroup) does a
    /// racer find the bit without a folio; it cannot tell who holds it and sleeps until the next
    /// `tick` (kernel: `schedule_timeout_uninterruptible(1)`, at most one jiffy).
    case hasCacheBit(tick: Duration)
    /// `legacy-wq`: the kernel from 6.12 (01626a1823024) to just before swap-cache synchronization for synchronous
    /// devices (zram, pmem): the swap-cache bypass of `legacy-bypass`, but a racer that finds
    /// the bit without a folio waits on `swapcache_wq`, woken when the holder inserts its folio
    /// or gives the bit up (`swapcache_clear`), and at the next `tick` at the latest.
    case hasCacheBitWaitQueue(tick: Duration)
    /// `legacy-bypass`: the kernel before 6.12 for synchronous devices: the bit is taken, the
    /// page read into a private folio, and only then is the folio inserted; during the whole
    /// read racers find the bit and no folio, and each sleeps `retryAfter` (a full 4 ms sleep,
    /// where the kernel's one-tick timeout sleeps at most 4 ms at HZ=250) with nothing to wake it.
    case hasCacheBitBypass(retryAfter: Duration)

    /// One jiffy at HZ=250, the kernel this models (`CONFIG_HZ=250`).
    public static let kernelTick = Duration.milliseconds(4)
    /// The kernel just before swap-cache synchronization (`hasCacheBit`) with the kernel's tick.
    public static let legacy = SwapInSync.hasCacheBit(tick: kernelTick)
    /// The 6.12 bypass with `swapcache_wq` (`hasCacheBitWaitQueue`) with the kernel's tick.
    public static let legacyWaitQueue = SwapInSync.hasCacheBitWaitQueue(tick: kernelTick)
    /// The pre-6.12 bypass (`hasCacheBitBypass`) with the kernel's tick.
    public static let legacyBypass = SwapInSync.hasCacheBitBypass(retryAfter: kernelTick)

    public var description: String {
        switch self {
        case .swapCache: "swapcache"
        case .hasCacheBit: "legacy"
        case .hasCacheBitWaitQueue: "legacy-wq"
        case .hasCacheBitBypass: "legacy-bypass"
        }
    }

    /// A has-cache bit pins slots (every protocol but the swap cache's).
    var usesHasCacheBit: Bool { self != .swapCache }

    /// The page is read into a private folio before the folio is inserted (the bypass paths):
    /// nothing can be read ahead asynchronously, and a folio found in the cache is uptodate.
    var readsBeforeInsert: Bool {
        switch self {
        case .hasCacheBitWaitQueue, .hasCacheBitBypass: true
        case .swapCache, .hasCacheBit: false
        }
    }
}
