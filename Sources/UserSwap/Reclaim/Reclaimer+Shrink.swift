/// Reclaim (kernel: `mm/vmscan.c`, anonymous pages): take folios from the tail of the inactive
/// list; a folio referenced since it was last looked at gets a second chance on the active
/// list; the others are swapped out. The active list ages into the inactive one so that the
/// inactive list stays at least as long as the active one.
extension Reclaimer {
    /// Folios isolated per batch (kernel: `SWAP_CLUSTER_MAX`).
    static let reclaimBatch = 32
    /// Folios isolated per batch by the background reclaimer and by an allocation that found no
    /// free frame (direct reclaim): 1/32 of the budget, at least the kernel's 32 and at most 512.
    ///
    /// Large batches make long writes: the batch is sorted by region and page, so its runs of
    /// consecutive slots are one request each now (at most `IORequestTable.maxVectors`) and one
    /// readahead read later. With two threads streaming, 512 gave their readahead 180–209 pages
    /// per read where 256 gave 112–134, and a 4 KiB fill 1,823–1,964 MiB/s where it made
    /// 1,517–1,848 (`device-limits`, four runs each, alternating). Direct reclaim waits for its
    /// batch's write: with 32 pages a fill wrote 128 KiB requests and ran at 1.1–1.3 GiB/s, with
    /// 256 at 1.7–1.8 on a disk that writes 1.8–2.1 GiB/s (`bench usemem`), its p99.9 going from
    /// ~1.0 to ~1.5 ms (one 1 MiB write).
    ///
    /// A small space keeps small batches: a batch that is a large share of memory evicts by
    /// batch, not by use, and holds every folio it isolated away from an explicit swap-out or a
    /// pin until it is done (512 in a 256-page budget isolated the whole inactive list).
    var largeBatch: Int { max(Self.reclaimBatch, min(512, frames.frameCount / 32)) }
    /// Whether the inactive list is short enough that the active one should age into it
    /// (kernel: `inactive_is_low`): the active list may be √(10 × GiB) times the inactive one —
    /// as long below 1 GiB, 3× at 1 GiB, 10× at 10 GiB.
    static func inactiveIsLow(_ lru: LRUVec) -> Bool {
        let inactive = lru.pages(.inactive), active = lru.pages(.active)
        let gib = (inactive + active) >> (30 - SwapPage.shift)
        let ratio = gib > 0 ? Int(Double(10 * gib).squareRoot()) : 1
        return inactive * ratio < active
    }

    /// Reclaims until `target` frames were freed, taking from every group in turn, or until a
    /// round makes no progress. Returns the frames freed. Safe from any thread holding no folio,
    /// page-table or cluster lock.
    @discardableResult
    func shrink(target: Int, batchSize: Int = reclaimBatch) -> Int {
        let all = groups.list
        // Relaxed: fairness only
        let start = Int(UInt(bitPattern: shrinkRotor.wrappingAdd(1, ordering: .relaxed).oldValue) % UInt(all.count))
        var freed = 0
        var progress = true
        while freed < target && progress {
            progress = false
            for k in 0..<all.count where freed < target {
                let n = shrink(all[(start + k) % all.count], target: min(batchSize, target - freed), batchSize: batchSize)
                freed += n
                progress = progress || n > 0
            }
        }
        return freed
    }

    /// Records a failed write-back; an allocation that finds nothing to reclaim reports it (`takeWriteFailure`).
    func noteWriteFailure(_ error: SwapError) {
        writeFailures.add(1, ordering: .relaxed)  // Relaxed: a count; a pass only asks whether it changed
        lastWriteFailure.withLock { $0 = error }
    }

    /// Whether some reclaimer holds folios off the LRU lists right now: an allocation that
    /// found nothing to reclaim may succeed once they are done.
    var reclaimInProgress: Bool {
        groups.list.contains { $0.lru.isolated.load(ordering: .relaxed) > 0 }  // Relaxed: a hint (see `LRUVec.isolated`)
    }

    /// Reclaims up to `target` frames from a group and the groups nested in it, when it hits
    /// its limit (kernel: hierarchical memcg reclaim).
    @discardableResult
    func shrinkSubtree(_ group: MemoryGroup, target: Int) -> Int {
        let members = groups.list.filter { g in
            var a: MemoryGroup? = g
            while let x = a {
                if x === group { return true }
                a = x.parent
            }
            return false
        }
        var freed = 0
        var progress = true
        while freed < target && progress {
            progress = false
            for g in members where freed < target {
                let n = shrink(g, target: min(Self.reclaimBatch, target - freed))
                freed += n
                progress = progress || n > 0
            }
        }
        return freed
    }

    /// Reclaims up to `target` frames from one group's own LRU lists.
    @discardableResult
    func shrink(_ group: MemoryGroup, target: Int, batchSize: Int = reclaimBatch) -> Int {
        let lru = group.lru
        var freed = 0
        var idlePasses = 0
        // Before giving up, look at every folio of both lists at least once (a pass that only
        // hands out second chances frees nothing but clears referenced bits): the kernel likewise
        // scans the whole list at its last priority before declaring out of memory.
        let patience = (lru.pages(.inactive) + lru.pages(.active)) / Self.reclaimBatch + 3
        var batch: [Folio] = []
        batch.reserveCapacity(batchSize)
        var ranks: [UInt64] = []
        var victims: [Folio] = []
        // The application-view unmaps of access tracking (`deactivateInWindow`), one call per
        // batch rather than one per page.
        var unmaps = UnmapBatch()
        // The previous batch's write-back, still in flight while this batch is scanned and
        // unmapped: the device writes one batch while the CPU prepares the next (kernel: kswapd
        // does not wait for the writeback it starts).
        var inFlight: Writeback?
        var failed = false
        while freed < target && idlePasses < patience && !failed {
            if Self.inactiveIsLow(lru) { shrinkActive(lru, max: batchSize) }
            batch.removeAll(keepingCapacity: true)
            lru.isolate(from: .inactive, max: batchSize, into: &batch)
            let isolatedCount = batch.count
            var back = LRUPutBack()
            if policy == .frequency && !batch.isEmpty {
                rankByUse(
                    &batch, group: group, all: idlePasses > 0, kept: &back.inactive, scratch: &ranks, victims: &victims,
                    unmaps: &unmaps)
                // The victims the look found mapped leave the application's view here, in one
                // gathered flush with the rest, before their swap-outs unmap them one `madvise`
                // (and one flush) each.
                unmaps.flush()
            }
            if isolatedCount == 0 {
                // Only active folios left (or none): age them and try again.
                if lru.pages(.active) == 0 { break }
                shrinkActive(lru, max: batchSize)
                idlePasses += 1
                continue
            }
            var freedNow = 0
            let failuresBefore = writeFailures.load(ordering: .relaxed)  // Relaxed: a count, compared below
            var writes: [Folio] = []
            var noSlots = false
            // In region and page order, so that a region's neighbouring pages take consecutive
            // slots: the LRU interleaves the pages of threads (and regions) that fault side by
            // side, and slots handed out in LRU order would scatter every sequential stream
            // over the device, one page per read for its readahead.
            batch.sort { frames.owner($0) < frames.owner($1) }
            for f in batch {
                freedNow += shrinkFolio(f, ranked: policy == .frequency, writes: &writes, back: &back, noSlots: &noSlots, unmaps: &unmaps)
            }
            unmaps.flush()
            back.flush(lru, allocator: allocator)
            // Relaxed: `isolated` is only a hint for allocators deciding whether to wait
            // (`reclaimInProgress`); the folios under write-back stay counted until they finish.
            lru.isolated.subtract(isolatedCount - writes.count, ordering: .relaxed)
            let submitted = submitWrites(writes)
            if let previous = inFlight {
                let written = finishWrites(previous, lru: lru)
                group.count(.pgsteal, written)
                freed += written
            }
            inFlight = submitted
            // A device that fails writes fails the next ones too: stop this pass rather than
            // retrying every dirty folio of the list against it.
            if writeFailures.load(ordering: .relaxed) != failuresBefore { failed = true }  // Relaxed: a heuristic to stop early
            // Pages under write-back count as progress: they are freed when it ends.
            let progress = freedNow + submitted.pages
            group.count(.pgscan, isolatedCount)
            group.count(.pgsteal, freedNow)
            // Nothing on the inactive tail could go (pinned, busy): age the active list too, or a
            // group whose inactive list is all pinned would never reclaim its active pages.
            if progress == 0 { shrinkActive(lru, max: batchSize) }
            freed += freedNow
            idlePasses = progress == 0 ? idlePasses + 1 : 0
            if freed + submitted.pages >= target { break }
            // No slot free on any device that takes pages, and a whole batch freed nothing:
            // the batches behind it would fail the same way, each folio after a scan of every
            // slot, and an allocation waiting for this pass would hang (kernel:
            // `can_reclaim_anon_pages` skips the anonymous lists when no swap is free). Stop;
            // the allocation reports swap full.
            if progress == 0 && devices.exhausted != nil { break }
        }
        if let last = inFlight {
            let written = finishWrites(last, lru: lru)
            group.count(.pgsteal, written)
            freed += written
        }
        stats.count(.reclaimFreed, freed)
        return freed
    }

    /// Moves the oldest unreferenced active folios to the inactive list; a folio used since its
    /// last look has its referenced bit cleared and goes round the active list again. (The
    /// kernel deactivates anonymous folios whether referenced or not; on Zipf workloads that
    /// loses to plain second chance, while this keeps hot pages active — see `ReclaimPolicyTests`.)
    /// `max` is the caller's batch: aging as many as a batch takes keeps the inactive list from
    /// running short, where a window read ahead would be reclaimed before its use.
    func shrinkActive(_ lru: LRUVec, max: Int = reclaimBatch) {
        var batch: [Folio] = []
        lru.isolate(from: .active, max: max, into: &batch)
        var back = LRUPutBack()
        var unmaps = UnmapBatch()
        defer { unmaps.flush() }
        for f in batch {
            if frames.clearFlags(f, .referenced).contains(.referenced) || deactivateInWindow(f, unmaps: &unmaps) {
                // Used since it was activated: another trip around the active list.
                back.active.append(f)
                continue
            }
            // Deactivated folios were part of the workingset: their shadows will say so, and a
            // refault of one counts as a restore (kernel: `folio_set_workingset` here).
            frames.setFlags(f, .workingset)
            back.inactive.append(f)
        }
        back.flush(lru, allocator: allocator)
        lru.isolated.subtract(batch.count, ordering: .relaxed)  // Relaxed: a hint (see `LRUVec.isolated`)
    }

    /// Tries to free one isolated folio (caller's isolation reference). Returns the frames freed.
    /// A dirty folio ready to be written is appended to `writes` instead, under writeback and
    /// unlocked, still holding the isolation reference: `submitWrites`/`finishWrites` finish it.
    /// A folio that stays goes to `back`, for the caller to return to the lists in one go.
    /// `ranked`: the `.frequency` policy chose it already (`rankByUse`); no second chance.
    /// `noSlots`: set once a swap-out of this batch found no slot on any device; the batch's
    /// later folios that would need a new slot then stay, without a scan of every slot each.
    /// `unmaps` gathers the unmaps of access tracking, for the caller to flush.
    private func shrinkFolio(
        _ f: Folio, ranked: Bool, writes: inout [Folio], back: inout LRUPutBack, noSlots: inout Bool,
        unmaps: inout UnmapBatch
    ) -> Int {
        stats.count(.reclaimScanned)
        if !ranked, frames.clearFlags(f, .referenced).contains(.referenced) || deactivateInWindow(f, unmaps: &unmaps) {
            // Second chance: touched since reclaim last saw it. With one list (plain second
            // chance, the clock algorithm) it goes round again; otherwise it is activated.
            stats.count(.reclaimActivated)
            return putBack(f, to: policy == .secondChance ? .inactive : .active, &back)
        }
        guard frames.tryLock(f) else {
            stats.count(.reclaimLocked)
            return putBack(f, to: .inactive, &back)
        }
        if noSlots && !frames.flags(f).contains(.swapcache) {
            // Needs a slot, and the last look found none: swap is still full.
            frames.unlock(f)
            return putBack(f, to: .inactive, &back)
        }
        let owner = frames.owner(f)
        var removed = false
        var needsWrite = false
        if let region = reverseMap.mapping(owner) {
            do {
                let outcome = try pageout(lockedFolio: f, mappedBy: region, deferringWrite: true)
                removed = outcome == .removed
                needsWrite = outcome == .needsWrite
            } catch  where error.code != .swapFull {
                // The device failed a write: the folio stays dirty in memory. Remember why, so
                // that reclaim stops hammering the device and an allocation that finds nothing
                // else to free reports the device's error.
                noteWriteFailure(error)
            } catch {
                // No slot: the group's swap limit (other groups' folios may still go), or no
                // device has a free slot left (nobody's can).
                stats.count(.reclaimNoSlot)
                if devices.exhausted != nil { noSlots = true }
            }
            if !removed && !needsWrite && frames.owner(f).isNone { (removed, needsWrite) = shrinkUnmapped(f) }
            if needsWrite { startDeferredWrite(f) }
            // Unlock before the region reference goes: dropping the last one runs its deinit,
            // which locks folios.
            withExtendedLifetime(region) { frames.unlock(f) }
        } else {
            (removed, needsWrite) = shrinkUnmapped(f)
            if needsWrite { startDeferredWrite(f) }
            frames.unlock(f)
        }
        if needsWrite {
            writes.append(f)
            return 0
        }
        if removed {
            // Counted now, not before the pageout: a pageout that split the folio freed only
            // its first page.
            let freed = frames.pageCount(f)
            allocator.freeFolio(f)
            return freed
        }
        return putBack(f, to: .inactive, &back)
    }

    /// A transparent region's page that the application maps may have been used without the
    /// engine seeing it: unmap it from the application and count it as referenced (its next
    /// touch is a minor fault that marks it). Explicit folios have no such mapping. The unmap
    /// is gathered in `unmaps` (see `FrameWindow.deactivate`).
    @inline(__always)
    func deactivateInWindow(_ f: Folio, unmaps: inout UnmapBatch) -> Bool {
        let placement = frames.placement(f)
        guard !placement.isArena, windows[placement.windowSlot].deactivate(placement.page, into: &unmaps) else { return false }
        stats.count(.deactivations)
        return true
    }

    /// Whether `f` is a transparent region's page that the application's view maps (as far as
    /// the last install or unmap says), without changing that.
    @inline(__always)
    func isMappedInWindow(_ f: Folio) -> Bool {
        let placement = frames.placement(f)
        return !placement.isArena && windows[placement.windowSlot].isInstalled(placement.page)
    }

    /// A transparent region's page just written out: its write mapped it in the engine's view.
    /// Unmap it there (in `unmaps`), whether it stays or goes: a page that stays may be mapped
    /// by the application already (faulted back while its write waited), and would count twice
    /// in RSS; a page that goes is punched out next, and a punch that finds no page-table entry
    /// costs no TLB flush, so the batch takes the flushes of many punches in one. Caller holds
    /// the isolation reference.
    func zapWrittenFromEngine(_ f: Folio, unmaps: inout UnmapBatch) {
        let placement = frames.placement(f)
        guard !placement.isArena else { return }
        windows[placement.windowSlot].zapFromEngineAfterIO(placement.page, into: &unmaps)
    }

    /// A folio no page maps: if it is in the swap cache, drop it, or report that it needs a
    /// write first. Caller holds the folio lock and one reference.
    private func shrinkUnmapped(_ f: Folio) -> (removed: Bool, needsWrite: Bool) {
        let flags = frames.flags(f)
        guard flags.contains(.swapcache), !flags.contains(.writeback),
            let device = devices.device(for: frames.entry(f))
        else { return (false, false) }
        if flags.contains(.dirty) { return (false, true) }
        if removeMapping(f, device: device) { return (true, false) }
        cache.freeSwapIfUnused(f)
        return (false, false)
    }

    /// Marks a locked, dirty, cached folio under writeback, for a batched write.
    private func startDeferredWrite(_ f: Folio) {
        frames.clearFlags(f, .dirty)
        frames.startWriteback(f)
    }

    /// Dirty folios of one batch whose writes are in flight: each still under writeback and
    /// isolated (its isolation reference held) until `finishWrites`.
    struct Writeback {
        var sorted: [Folio] = []
        var runs: [(run: ArraySlice<Folio>, device: SwapDevice, ticket: IOTicket)] = []
        var pages = 0
    }

    /// Submits the folios `shrinkFolio` set aside — sorted by slot, consecutive slots of one
    /// device in one vectored call (kernel: the swap writeback plug merges them into one bio) —
    /// all at once, to the device's I/O engine (many in flight, behind any fault's read).
    private func submitWrites(_ writes: [Folio]) -> Writeback {
        var w = Writeback()
        guard !writes.isEmpty else { return w }
        w.sorted = writes.sorted { frames.entry($0).raw < frames.entry($1).raw }
        let sorted = w.sorted
        var start = 0
        while start < sorted.count {
            var end = start + 1
            while end < sorted.count && end - start < IORequestTable.maxVectors {
                let previous = frames.entry(sorted[end - 1])
                guard frames.entry(sorted[end]) == previous.advanced(by: frames.pageCount(sorted[end - 1])) else { break }
                end += 1
            }
            if let s = submitRun(sorted[start..<end]) { w.runs.append(s) }
            start = end
        }
        w.pages = sorted.reduce(0) { $0 + frames.pageCount($1) }
        return w
    }

    /// Waits for a batch's writes, then removes each written folio from the cache and frees it.
    /// A failed write leaves its folios dirty in memory. Drops the folios' isolation. Returns
    /// the frames freed.
    private func finishWrites(_ w: Writeback, lru: LRUVec) -> Int {
        guard !w.sorted.isEmpty else { return 0 }
        for s in w.runs { finishRun(s.run, device: s.device, ticket: s.ticket) }
        var unmaps = UnmapBatch()
        for f in w.sorted { zapWrittenFromEngine(f, unmaps: &unmaps) }
        unmaps.flush()
        var freed = 0
        var back = LRUPutBack()
        for f in w.sorted {
            frames.endWriteback(f)
            frames.lock(f)
            let nr = frames.pageCount(f)
            var removed = false
            if let device = devices.device(for: frames.entry(f)), !frames.flags(f).contains(.dirty) {
                removed = removeMapping(f, device: device)
                if !removed { cache.freeSwapIfUnused(f) }
            }
            frames.unlock(f)
            if removed {
                allocator.freeFolio(f)
                freed += nr
            } else {
                _ = putBack(f, to: .inactive, &back)
            }
        }
        back.flush(lru, allocator: allocator)
        // Relaxed: a hint, as above.
        lru.isolated.subtract(w.sorted.count, ordering: .relaxed)
        return freed
    }

    /// Submits one vectored write of folios whose slots follow each other on one device; nil
    /// when the device is gone.
    private func submitRun(_ run: ArraySlice<Folio>) -> (run: ArraySlice<Folio>, device: SwapDevice, ticket: IOTicket)? {
        let first = frames.entry(run[run.startIndex])
        guard let device = devices.device(for: first) else { return nil }
        let buffers = run.map { UnsafeRawBufferPointer(allocator.bytes($0)) }
        let ticket = buffers.withUnsafeBufferPointer { b in device.io.submitWrite(b, atPage: first.offset) }
        return (run, device, ticket)
    }

    /// Waits for a run's write; a failed one leaves its folios dirty.
    private func finishRun(_ run: ArraySlice<Folio>, device: SwapDevice, ticket: IOTicket) {
        do {
            try device.io.wait(ticket)
            stats.count(.deviceWrites)
            stats.count(.swapOuts, run.reduce(0) { $0 + frames.pageCount($1) })
        } catch {
            for f in run { frames.setFlags(f, .dirty) }
            stats.count(.writeErrors)
            noteWriteFailure(error)
        }
    }

    /// Returns a folio reclaim could not free to `list` through `back` (unless it is only alive
    /// because of us and someone else's reference, e.g. a pin on a discarded page: then it just
    /// goes).
    private func putBack(_ f: Folio, to list: LRUVec.List, _ back: inout LRUPutBack) -> Int {
        if !frames.owner(f).isNone || frames.flags(f).contains(.swapcache) {
            if list == .active { back.active.append(f) } else { back.inactive.append(f) }
        } else {
            allocator.putFolio(f)
        }
        return 0
    }
}

/// Isolated folios that reclaim returns to the LRU lists, each list's in one acquisition of its
/// lock (kernel: the `folio_batch` of `lru_add`), with their isolation references dropped after
/// (the caller keeps the `isolated` count).
struct LRUPutBack {
    var active: [Folio] = []
    var inactive: [Folio] = []

    mutating func flush(_ lru: LRUVec, allocator: FrameAllocator) {
        lru.add(active, to: .active)
        lru.add(inactive, to: .inactive)
        for f in active { allocator.putFolio(f) }
        for f in inactive { allocator.putFolio(f) }
        active.removeAll(keepingCapacity: true)
        inactive.removeAll(keepingCapacity: true)
    }
}
