/// Reading runs of consecutive slots into cached folios: one vectored request per run, waited
/// for by the reader or, for asynchronous readahead, by `AsyncReadCompleter`.
extension SwapCache {
    /// Reads locked, cached folios whose slots are consecutive on one device in one vectored
    /// call. On failure every folio of the run leaves the cache again, marked with `.error`,
    /// and its slots keep their data on the device, their shadow and their swap charge.
    func readRun(_ run: [RunFolio]) throws(SwapError) {
        try finishReadRun(run, submitReadRun(run))
    }

    /// Submits the read of a run (see `readRun`) to its device's I/O engine without waiting.
    /// The folios stay locked until `finishReadRun`, which every submitted run must get.
    func submitReadRun(_ run: [RunFolio]) throws(SwapError) -> SubmittedRead {
        let first = run[0].entry
        guard let device = devices.device(for: first) else {
            throw SwapError(.deviceGone, "the device of \(first) was removed")
        }
        let targets = run.map { allocator.readTarget($0.folio) }
        let ticket = targets.map(\.buffer).withUnsafeBufferPointer { b in device.io.submitRead(into: b, atPage: first.offset) }
        return SubmittedRead(device: device, ticket: ticket, bounces: targets.map(\.bounce))
    }

    /// Submits the reads of several runs (see `readRun`) without waiting, those of one device
    /// together (`IOEngine.submitReads`: one `io_uring_enter` for all of them). Returns each
    /// run's submitted read, in order, or the error that kept it from being submitted (its
    /// device is gone). The folios stay locked until `finishReadRun`, which every submitted run
    /// must get.
    func submitReadRuns(_ runs: [[RunFolio]]) -> [Result<SubmittedRead, SwapError>] {
        var results = [Result<SubmittedRead, SwapError>?](repeating: nil, count: runs.count)
        // Runs by device type, in order (a batch rarely spans more than one device).
        var byType: [(type: Int, runs: [Int])] = []
        for (i, run) in runs.enumerated() {
            let type = Int(run[0].entry.type)
            if let k = byType.firstIndex(where: { $0.type == type }) { byType[k].runs.append(i) } else { byType.append((type, [i])) }
        }
        for (_, indices) in byType {
            let first = runs[indices[0]][0].entry
            guard let device = devices.device(for: first) else {
                for i in indices { results[i] = .failure(SwapError(.deviceGone, "the device of \(first) was removed")) }
                continue
            }
            let targets = indices.map { i in runs[i].map { allocator.readTarget($0.folio) } }
            let tickets = device.io.submitReads(
                zip(indices, targets).map { i, t in (buffers: t.map(\.buffer), page: runs[i][0].entry.offset) })
            for ((i, ticket), t) in zip(zip(indices, tickets), targets) {
                results[i] = .success(SubmittedRead(device: device, ticket: ticket, bounces: t.map(\.bounce)))
            }
        }
        return results.map { $0! }
    }

    /// Waits for a submitted run and marks its folios uptodate, or takes them out of the cache
    /// with `.error` if the read failed.
    func finishReadRun(_ run: [RunFolio], _ submitted: SubmittedRead) throws(SwapError) {
        let consumed: Bool
        do {
            consumed = try submitted.device.io.wait(submitted.ticket)
        } catch {
            for (r, bounce) in zip(run, submitted.bounces) { allocator.settleRead(r.folio, bounce: bounce, succeeded: false) }
            stats.count(.readErrors)
            for r in run {
                frames.setFlags(r.folio, .error)
                swapCacheDeleteNewFolio(r.folio, shadow: r.shadow)
            }
            throw error
        }
        for (r, bounce) in zip(run, submitted.bounces) { allocator.settleRead(r.folio, bounce: bounce, succeeded: true) }
        stats.count(.deviceReads)
        stats.count(.swapIns, run.reduce(0) { $0 + frames.pageCount($1.folio) })
        for r in run { frames.setFlags(r.folio, consumed ? [.uptodate, .dirty] : .uptodate) }
    }

    /// Completes an asynchronous readahead run (`AsyncReadCompleter`): waits for its read,
    /// puts its folios on the LRU as read ahead (`trigger` marked as its window's trigger),
    /// `demand` (an async pin's own page) as a swap-in, unlocks and puts them; the unlocks
    /// resume the tasks suspended on them. A failed read leaves the data on the device
    /// (`finishReadRun`): the fault that needs a page reads it again and gets its own error,
    /// and a task suspended on one gets `.ioError` (it sees the folio's `.error`).
    func completeReadahead(_ run: [RunFolio], _ submitted: SubmittedRead, trigger: Folio?, prefetched: Bool, demand: Folio? = nil) {
        var read = 0
        do {
            try finishReadRun(run, submitted)
            read = run.reduce(0) { $0 + frames.pageCount($1.folio) }
        } catch {
            // Counted in `readErrors`; nobody to tell.
        }
        for r in run {
            if frames.flags(r.folio).contains(.uptodate) {
                if r.folio == demand {
                    settleSwapIn(r.folio, shadow: r.shadow)
                    read -= 1
                } else {
                    settleReadahead(r.folio, trigger: r.folio == trigger, prefetched: prefetched, shadow: r.shadow)
                }
            }
            frames.unlock(r.folio)
            allocator.putFolio(r.folio)
        }
        // A page discarded while its read was in flight (its region released, say) left its
        // slot to the cache alone, and the discard could not take the locked folio out: drop
        // it now rather than leave it to reclaim.
        for r in run { reclaimCacheOnly(r.entry) }
        stats.count(.readaheadPages, read)
    }

    /// Puts an uptodate folio of one page read for a fault (an async pin's) on the LRU as any
    /// swap-in: counted in its group's `pswpin`, active if its refault distance says so.
    /// Caller holds the folio lock.
    func settleSwapIn(_ f: Folio, shadow: UInt64?) {
        groups[frames.group(f)].count(.pswpin)
        let activate = shadow.map { workingset.refault(f, shadow: $0) } ?? false
        allocator.lru(f).add(f, to: activate ? .active : .inactive)
    }

    /// Puts an uptodate folio read ahead on the LRU, marked as read ahead (and as its
    /// window's trigger, or as prefetched). Its insert replaced `shadow`, if any: a refault like any other
    /// (kernel: `__swap_cache_prepare_and_add` calls `workingset_refault` for every insert),
    /// so it goes to the active list when its refault distance says so, the inactive one
    /// otherwise. Caller holds the folio lock.
    func settleReadahead(_ f: Folio, trigger: Bool, prefetched: Bool = false, shadow: UInt64?) {
        var marks: FolioFlags = .readahead
        if trigger { marks.insert(.readaheadTrigger) }
        if prefetched { marks.insert(.prefetched) }
        frames.setFlags(f, marks)
        let activate = shadow.map { workingset.refault(f, shadow: $0, demand: false) } ?? false
        allocator.lru(f).add(f, to: activate ? .active : .inactive)
    }
}

/// One folio of a read run: locked, inserted into the swap cache for `entry` by the reader, not
/// read yet; `shadow` is the workingset shadow its insert replaced.
struct RunFolio: Sendable {
    let folio: Folio
    let entry: SwapEntry
    let shadow: UInt64?
}

/// A read run handed to a device's I/O engine.
struct SubmittedRead: Sendable {
    let device: SwapDevice
    let ticket: IOTicket
    /// Per folio of the run: the bounce page its read lands in (`FrameAllocator.readTarget`),
    /// or -1.
    let bounces: [Int32]
}
