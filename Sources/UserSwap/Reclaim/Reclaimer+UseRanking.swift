/// Ranking an isolated batch by use, for the `.frequency` policy.
extension Reclaimer {
    /// Splits an isolated batch (oldest first) for the `.frequency` policy: brings counts up to
    /// date (and counts a use for a transparent page mapped since the last look), then keeps the most used three quarters
    /// in `kept` (they go back to the head of the list, their referenced bits cleared) and leaves
    /// the rest in `batch`, least used first, ties oldest first: those are swapped out, with any
    /// folio whose count decayed to zero, or the whole batch when all counts are equal.
    /// `scratch` and `victims` are the caller's buffers (no allocation per batch); `unmaps`
    /// gathers the unmaps of access tracking, for the caller to flush.
    /// `all`: after a pass that freed nothing (its victims pinned or busy), every folio of the
    /// batch is a victim, so that a few pinned, least used folios cannot make a group look full.
    func rankByUse(
        _ batch: inout [Folio], group: MemoryGroup, all: Bool, kept: inout [Folio],
        scratch: inout [UInt64], victims: inout [Folio], unmaps: inout UnmapBatch
    ) {
        let epoch = allocator.useEpoch(group)
        scratch.removeAll(keepingCapacity: true)
        for (i, f) in batch.enumerated() {
            var count = frames.uses(f).count(at: epoch)
            // Pins count their own uses (`FrameTable.noteUse`); a transparent region's pages are
            // used through the application's mapping, seen only as "mapped since the last look".
            frames.clearFlags(f, .referenced)
            if count >= Self.trackedUseCount && isMappedInWindow(f) {
                // Used at many recent looks and mapped still: ranked by its count as it stands,
                // and left mapped, so its next touch costs no minor fault. Its count is not
                // raised, so it halves with the epochs until it falls below the mark; then
                // reclaim looks again, and a page no longer used shows it then.
                stats.count(.trackingSkips)
            } else if deactivateInWindow(f, unmaps: &unmaps) {
                count = min(count + 1, UseCount.maxCount)
            }
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

    /// A transparent page whose use count is at least this, found mapped, is not unmapped to
    /// see whether it is used again (see `rankByUse`). Checking costs the application a minor
    /// fault on a page it is using (an unmap, and a TLB shootdown) where the kernel reads an
    /// accessed bit for free; a page mapped at this many looks within a few half-lives is among
    /// the last a batch evicts anyway. Its count then sits between half the mark and the mark,
    /// checked about mark ÷ 2 times per half-life (16 trips round the list) instead of at every
    /// trip.
    static let trackedUseCount = 4
}
