/// How concurrent swap-ins of the same entry find each other.
public enum SwapInSync: Sendable, Equatable, CustomStringConvertible {
    /// The seed's protocol: the swap cache is the synchronization layer. Whoever installs a folio
    /// in the slot first reads it; everyone else finds that folio and sleeps on its lock.
    case swapCache
    /// The protocol before the seed, kept to measure against: a has-cache bit in the slot is
    /// taken first (kernel: `swapcache_prepare` setting `SWAP_HAS_CACHE`), the page is read into a
    /// private folio, and only then is the folio inserted into the cache — the kernel's path for
    /// synchronous devices (zram, pmem) before the seed. A racer that finds the bit set but no
    /// folio cannot tell who holds it, so it sleeps `retryAfter` (one tick: 4 ms at HZ=250) and
    /// tries again.
    case legacyHasCacheBit(retryAfter: Duration = .milliseconds(4))

    public static let legacy = SwapInSync.legacyHasCacheBit()

    public var description: String {
        switch self {
        case .swapCache: "swapcache"
        case .legacyHasCacheBit: "legacy"
        }
    }
}
