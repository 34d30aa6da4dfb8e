/// The fault path of a transparent region served on the faulting thread, which runs inside
/// that thread's SIGBUS handler (`SignalFaultRouter`). The handler may have interrupted the
/// thread anywhere — inside malloc, holding the allocator's lock; inside `printf`, holding a
/// stream's lock — so this path allocates no memory and builds no error: it takes only the
/// engine's own locks (page table, folio, frame pool, LRU, swap cluster), reads the page with
/// one `pread` or copy, and reports what it cannot do instead of doing it. That is:
///
/// - a page in memory (a minor fault), a page in the swap cache (a readahead hit), a first
///   touch, and a swap-in from a device whose reads are signal-safe
///   (`SwapBackend.readsInSignalHandler`: a swap file, memory, sealed or not) — done here;
/// - a readahead window to read after a miss, or the next window after a trigger's hit —
///   returned, for a thread of the engine to submit (`SignalFaultRouter` hands it over);
/// - anything else — no frame free without reclaiming, a group at its limit, a compressed or
///   remote device, a legacy swap-in protocol, a read error — `nil`: the fault goes to a thread
///   of the engine, which resolves it as a handler thread would (reclaim, errors and all)
///   while the faulting thread waits on a futex. The reason (`SignalFaultHandoff.Reason`) is
///   counted in the space's statistics (`handoffsNoFrame` …).
extension Region {
    /// `pin(_:for:marksReferenced: false)` in a signal handler: the folio mapping `page`,
    /// with a reference for the caller (who puts it), or nil when the fault needs a thread of
    /// the engine (see above), `handoff` then saying why. `readahead` says what to read ahead
    /// once the page is mapped.
    func pinInSignal(
        _ page: Int, for access: PageAccess, readahead: inout ReadaheadPlan, handoff: inout SignalFaultHandoff.Reason
    ) -> Folio? {
        assert(page >= 0 && page < pageCount && folioOrder == 0)
        let frames = engine.frames
        // A bounded number of rounds: each one that does not return changed the page (mapped
        // it, or lost a race); a page that keeps changing goes to a thread.
        for _ in 0..<8 {
            let pte = pte(page)
            if pte.isPresent {
                let f = frames.folio(containing: pte.frame)
                guard frames.tryGet(f) else { continue }
                // Re-read the entry and the folio (see `pin`): swap-out or a split may have
                // come in between.
                guard self.pte(page) == pte && frames.folio(containing: pte.frame) == f else {
                    engine.allocator.putFolio(f)
                    continue
                }
                if access == .write {
                    if frames.flags(f).contains(.swapcache) { releaseSwapForWrite(f) }
                    frames.markFlags(f, .dirty)
                }
                return f
            }
            if pte.isNone {
                guard let f = engine.allocator.allocateFolioWithoutReclaim(order: 0, group: group) else {
                    handoff = frameShortage()
                    return nil
                }
                mapZeroFolio(f, at: page)
                continue
            }
            if let reason = swapInInSignal(page, pte, readahead: &readahead) {
                handoff = reason
                return nil
            }
        }
        handoff = .other
        return nil
    }

    /// Why an allocation without reclaim for this region just failed: its group at its limit,
    /// or no frame free. A look, racing with other charges and frees (it only sorts a
    /// statistic); allocates nothing and takes no lock.
    private func frameShortage() -> SignalFaultHandoff.Reason {
        engine.allocator.groups[group].memoryRoom() == 0 ? .groupLimit : .noFrame
    }

    /// `doSwapPage` in a signal handler, for a 4 KiB folio under the swap-cache protocol: finds
    /// the folio cached for the entry (waiting on its lock if its read is in flight) or reads
    /// the page into a free frame, and maps it. Nil when the caller should look at the page
    /// again (mapped, or changed meanwhile); otherwise why the fault needs a thread.
    private func swapInInSignal(_ page: Int, _ pte: PageTableEntry, readahead: inout ReadaheadPlan) -> SignalFaultHandoff.Reason? {
        guard case .swapCache = engine.sync else { return .other }
        let entry = pte.swapEntry
        guard let device = engine.devices.device(for: entry) else { return .other }
        guard device.backend.readsInSignalHandler else { return .device }
        let cache = engine.cache
        let frames = engine.frames
        let f: Folio
        let outcome: SwapCacheAllocation
        do {
            outcome = try cache.swapCacheAllocFolio(
                entry, group: group, placement: placement(page),
                claim: { claimEntry($0, page: page, entry: entry) }, mayReclaim: false)
        } catch {
            // Without reclaim the insert builds no error: this is the allocator's, out of line.
            return .other
        }
        switch outcome {
        case .allocated(let new, let shadow):
            // The read is the fault's own: on the calling thread, never through a pool (one
            // `pread`, or a copy, then decryption in place).
            do {
                let consumed = try engine.allocator.fill(new) { (buffer) throws(SwapError) in
                    try device.backend.readConsuming(into: buffer, atPage: entry.offset)
                }
                if consumed { frames.setFlags(new, .dirty) }
            } catch {
                // The error's message was built by the backend; the thread that takes the fault
                // over reads again and reports it.
                frames.setFlags(new, .error)
                cache.swapCacheDeleteNewFolio(new, shadow: shadow)
                frames.unlock(new)
                engine.allocator.putFolio(new)
                engine.stats.count(.readErrors)
                return .error
            }
            engine.stats.count(.deviceReads)
            engine.stats.count(.swapIns)
            frames.setFlags(new, .uptodate)
            engine.groups[group].count(.pswpin)
            let activate = shadow.map { engine.workingset.refault(new, shadow: $0) } ?? false
            engine.allocator.lru(new).add(new, to: activate ? .active : .inactive)
            f = new
        case .cached(let cached):
            // A readahead hit, or a racer's read: wait for it on the folio lock.
            guard frames.pageCount(cached) == 1 else {
                engine.allocator.putFolio(cached)
                return .other
            }
            frames.lock(cached)
            guard frames.matches(cached, entry), frames.flags(cached).contains(.uptodate) else {
                // Gone from the cache meanwhile (a failed read among them): look again, or let
                // a thread report the error.
                let failed = frames.flags(cached).contains(.error)
                frames.unlock(cached)
                engine.allocator.putFolio(cached)
                return failed ? .error : nil
            }
            f = cached
        case .noEntry:
            return nil
        case .noMemory:
            return frameShortage()
        case .fallback:
            return .other
        }
        let before = frames.clearFlags(f, FolioFlags.readaheadMarks)
        guard mapCachedFolio(f, at: page, pte, device: device) else { return nil }
        if cache.shouldFreeSwap(afterSwapIn: f, device: device) { cache.freeSwapIfUnused(f) }
        frames.unlock(f)
        // The policy of `readAhead(.mapped)`, decided here (it allocates nothing), read by a
        // thread of the engine (`readAhead(.planned)`). The legacy protocols read a page before
        // inserting it, which a signal handler cannot wait for: no readahead.
        readahead = engine.sync.readsBeforeInsert ? .none : readaheadPlan(mapped: page, folioPages: 1, flags: before)
        return nil
    }
}
