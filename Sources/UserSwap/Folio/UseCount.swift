/// How often a folio has been used lately, for the `.frequency` reclaim policy: the number of
/// pins (the access that brings a page in included; for a transparent region's page, the number
/// of times reclaim found it mapped again since it last looked, up to `Reclaimer.trackedUseCount`), halved every `FrameAllocator.useHalfLife(_:)` evictions of its group so that a page that was
/// hot long ago loses its protection. The count survives eviction in the page's shadow
/// (`Shadow.uses`): a page that keeps coming back keeps its rank, which a one-bit referenced
/// flag forgets at every eviction.
///
/// One 32-bit word per frame: the count (0…15) in the low byte, and above it the low 24 bits of
/// the epoch (the group's eviction clock ÷ half-life) at which the count was last brought up to
/// date. Counts decay lazily: reading one at a later epoch halves it once per epoch gone by.
struct UseCount: Equatable, Sendable {
    /// The largest count: four halvings take any count to zero. Sixteen levels rank pages as well
    /// as exact counts do on Zipf workloads (simulated: 15.3 % misses either way), and a page
    /// that saturates costs its pins a load, no store.
    static let maxCount = 15
    static let epochMask: UInt32 = 0xff_ffff

    var raw: UInt32

    @inline(__always) init(raw: UInt32) { self.raw = raw }

    @inline(__always) init(count: Int, epoch: UInt64) {
        raw = (UInt32(truncatingIfNeeded: epoch) & Self.epochMask) << 8 | UInt32(min(count, Self.maxCount))
    }

    /// The count as of `epoch`: halved once for each epoch since it was stored.
    @inline(__always) func count(at epoch: UInt64) -> Int {
        let elapsed = (UInt32(truncatingIfNeeded: epoch) &- (raw >> 8)) & Self.epochMask
        return elapsed >= 4 ? 0 : Int(raw & 0xff) >> Int(elapsed)
    }
}
