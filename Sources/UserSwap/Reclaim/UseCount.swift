/// How often a folio has been used lately, for the `.frequency` reclaim policy: the number of
/// pins (the access that brings a page in included; for a transparent region's page, the number
/// of times reclaim found it mapped again since it last looked), halved every `SwapEngine.useHalfLife(_:)` evictions of its group so that a page that was
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

extension SwapEngine {
    /// Evictions of `group` between two halvings of its use counts: four times the pages it may
    /// hold. Simulated on Zipf (θ = 0.99, 4× over): one budget's worth forgets too fast
    /// (17.1 % misses), four gives 15.3 %, eight 15.2 %, never 15.2 % — but a workload whose hot
    /// set moves needs the decay.
    @inline(__always) func useHalfLife(_ group: MemoryGroup) -> UInt64 {
        UInt64(4 * max(1, min(group.memoryLimitPageCount, frames.frameCount)))
    }

    /// The current use epoch of `group`. Relaxed: an epoch early or late moves one halving.
    @inline(__always) func useEpoch(_ group: MemoryGroup) -> UInt64 {
        group.nonresidentAge.load(ordering: .relaxed) / useHalfLife(group)
    }

    /// A folio just allocated: no use counted yet, or its shadow's count aged by the evictions
    /// since (see `workingsetRefault`).
    @inline(__always) func startUses(_ f: Folio, group: MemoryGroup, count: Int = 0) {
        frames.setUses(f, UseCount(count: count, epoch: useEpoch(group)))
    }

    /// Splits an isolated batch (oldest first) for the `.frequency` policy: brings counts up to
    /// date (and counts a use for a transparent page mapped since the last look), then keeps the most used three quarters
    /// in `kept` (they go back to the head of the list, their referenced bits cleared) and leaves
    /// the rest in `batch`, least used first, ties oldest first: those are swapped out, with any
    /// folio whose count decayed to zero, or the whole batch when all counts are equal.
    /// `scratch` and `victims` are the caller's buffers (no allocation per batch).
    /// `all`: after a pass that freed nothing (its victims pinned or busy), every folio of the
    /// batch is a victim, so that a few pinned, least used folios cannot make a group look full.
    func rankByUse(
        _ batch: inout [Folio], group: MemoryGroup, all: Bool, kept: inout [Folio],
        scratch: inout [UInt64], victims: inout [Folio]
    ) {
        let epoch = useEpoch(group)
        scratch.removeAll(keepingCapacity: true)
        for (i, f) in batch.enumerated() {
            var count = frames.uses(f).count(at: epoch)
            // Pins count their own uses (`FrameTable.noteUse`); a transparent region's pages are
            // used through the application's mapping, seen only as "mapped since the last look".
            frames.clearFlags(f, .referenced)
            if deactivateInWindow(f) { count = min(count + 1, UseCount.maxCount) }
            frames.setUses(f, UseCount(count: count, epoch: epoch))
            scratch.append(UInt64(count) << 32 | UInt64(i))
        }
        scratch.sort()
        let quota = all ? batch.count : max(1, batch.count / Self.evictedShareOfBatch)
        victims.removeAll(keepingCapacity: true)
        // A batch whose folios are all used alike (a fill, a stream: every page used once) has
        // nothing to rank: it goes whole and in order, as under plain second chance, rather than
        // being scattered over the list and its writes over the device. (Taking every tie of the
        // quota's last instead loses a third of the gain on Zipf, where most cold pages tie at 1.)
        let uniform = scratch.first! >> 32 == scratch.last! >> 32
        for (rank, key) in scratch.enumerated() {
            let f = batch[Int(key & 0xffff_ffff)]
            if uniform || rank < quota || key >> 32 == 0 { victims.append(f) } else { kept.append(f) }
        }
        stats.count(.reclaimScanned, batch.count - victims.count)
        stats.count(.reclaimActivated, batch.count - victims.count)
        swap(&batch, &victims)
    }

    /// The `.frequency` policy swaps out the least used 1 in this many folios of each batch it
    /// looks at. Simulated on Zipf (θ = 0.99, 4× over, 4 M accesses): 1 in 4 gives 15.3 %
    /// misses, 1 in 8 14.9 %, against 18.4 % for plain second chance. Every folio looked at and
    /// kept costs reclaim time (1 in 8 halved a memory device's zipf throughput, 2.47 M to
    /// 1.0 M ops/s) and a transparent region a minor fault later, so 4 it is.
    static let evictedShareOfBatch = 4
}
