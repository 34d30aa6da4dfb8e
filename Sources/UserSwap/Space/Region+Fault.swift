import Glibc

/// Access to pages, and the fault path that brings them in (kernel: `handle_pte_fault`,
/// `do_anonymous_page`, `do_swap_page`).
extension Region {
    /// Pins `page` in memory, faulting it in from swap or zero-filling it first if needed.
    /// Pinning a resident page is a few atomic operations: no lock, no syscall.
    public func pin(_ page: Int, for access: PageAccess = .write) throws(SwapError) -> Pin {
        try pin(page, for: access, marksReferenced: true)
    }

    /// `pin(_:for:)`; a transparent region's fault handler passes `marksReferenced: false`, since
    /// for those pages the application's mapping is the reference bit (see
    /// `Reclaimer.deactivateInWindow`), and counting the fault too would give every page two
    /// second chances. It passes `touchesBytes: false` too: it maps the page into the
    /// application's view and never reads the pin's bytes, which leaves the engine's view
    /// unmapped (see `FrameWindow.zapFromEngine`).
    func pin(_ page: Int, for access: PageAccess, marksReferenced: Bool, touchesBytes: Bool = true) throws(SwapError) -> Pin {
        let pin = try pin(page, for: access, marksReferenced: marksReferenced, touchesBytes: touchesBytes, unlessDiscardedAfter: nil)
        switch consume pin {
        case .some(let pin): return pin
        case .none: preconditionFailure("a pin without a discard clock declined page \(page)")
        }
    }

    /// `pin(_:for:marksReferenced:touchesBytes:)`, except that a page discarded after the
    /// discard clock read `clock` (`FrameWindow.discarded(_:after:)`) is not zero-filled: nil
    /// then, with nothing mapped. For a transparent region's fault handler, whose fault message
    /// may be older than the discard (see `TransparentFaultResolver.resolveOnce`).
    func pin(
        _ page: Int, for access: PageAccess, marksReferenced: Bool, touchesBytes: Bool, unlessDiscardedAfter clock: UInt64?
    ) throws(SwapError) -> Pin? {
        try checkPage(page)
        let frames = engine.frames
        while true {
            let pte = pte(page)
            if pte.isPresent {
                let f = frames.folio(containing: pte.frame)
                // A reference first, then re-read the entry: if swap-out unmapped the page in
                // between, one of us sees the other (both sides are sequentially consistent).
                if frames.tryGet(f) {
                    // Re-check the folio too: a large folio may have been split in between.
                    if self.pte(page) == pte && frames.folio(containing: pte.frame) == f {
                        let flags = frames.flags(f)
                        if access == .write && flags.contains(.swapcache) {
                            // The copy on the device is about to go stale: release it first.
                            releaseSwapForWrite(f)
                        }
                        let used: FolioFlags = marksReferenced ? .referenced : []
                        frames.markFlags(f, access == .write ? used.union(.dirty) : used)
                        if marksReferenced { frames.noteUse(f) }
                        let start = window?.engineAddress(page, accessing: touchesBytes) ?? engine.allocator.arena.address(pte.frame)
                        let bytes = UnsafeMutableRawBufferPointer(start: start, count: SwapPage.size)
                        return Pin(bytes: bytes, page: page, engine: engine, folio: f)
                    }
                    engine.allocator.putFolio(f)
                }
                continue
            }
            if pte.isNone {
                guard try faultZero(page, unlessDiscardedAfter: clock) else { return nil }
            } else {
                try doSwapPage(page, pte)
            }
        }
    }

    /// Runs `body` on `page`'s bytes while it is pinned.
    public func withPage<R, E: Error>(
        _ page: Int, for access: PageAccess = .write, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws -> R {
        let pin = try pin(page, for: access)
        return try body(pin.bytes)
    }

    /// First touch of a page: a zeroed folio (kernel: `do_anonymous_page`), of the region's
    /// folio size when the whole aligned block is untouched and memory has a free run of frames,
    /// one page otherwise. False, with nothing mapped, when the page was discarded after the
    /// discard clock read `clock` (see `pin(_:for:marksReferenced:touchesBytes:unlessDiscardedAfter:)`).
    @discardableResult
    func faultZero(_ page: Int, unlessDiscardedAfter clock: UInt64? = nil) throws(SwapError) -> Bool {
        // Checked again under the page-table lock; this look only saves an allocation.
        if let clock, let window, discardedAfter(page, clock, in: window) { return false }
        if folioOrder > 0, faultZeroLarge(page, mayReclaim: true) { return true }
        return mapZeroFolio(try engine.allocator.allocateFolio(order: 0, group: group), at: page, unlessDiscardedAfter: clock)
    }

    /// `window.discarded(page, after: clock)`, under the page's page-table lock.
    private func discardedAfter(_ page: Int, _ clock: UInt64, in window: FrameWindow) -> Bool {
        let lock = ptl(page)
        lock.lock()
        defer { lock.unlock() }
        return window.discarded(page, after: clock)
    }

    /// `faultZero` for an async pin, which must not reclaim on its task's thread: returns false,
    /// having mapped nothing, when no frame is free (`FrameAllocator.allocateFolioOrQueue`);
    /// the task then waits for frames. A large folio is tried only from free frames.
    func faultZeroOrQueue(_ page: Int) throws(SwapError) -> Bool {
        if folioOrder > 0, faultZeroLarge(page, mayReclaim: false) { return true }
        guard let f = try engine.allocator.allocateFolioOrQueue(order: 0, group: group) else { return false }
        mapZeroFolio(f, at: page)
        return true
    }

    /// Maps the new single-page folio `f` (the caller's reference, which this consumes) zeroed
    /// at `page` if the page is still untouched; else drops it. Allocates nothing. False when it
    /// dropped it because the page was discarded after the discard clock read `clock`.
    @discardableResult
    func mapZeroFolio(_ f: Folio, at page: Int, unlessDiscardedAfter clock: UInt64? = nil) -> Bool {
        engine.allocator.place(f, placement(page))
        // A window page is zeroed only by the folio that wins the page (under the lock below).
        if window == nil { engine.allocator.bytes(f).initializeMemory(as: UInt8.self, repeating: 0) }
        engine.frames.setFlags(f, [.uptodate, .dirty, .swapbacked])
        // A window page may still belong to a folio reading into it: a swap-in of the page's old
        // entry, racing the discard that made the page untouched. Take the page while holding
        // that folio's lock, so its read is over and cannot land on our zeroes afterwards.
        var previous: Folio?
        defer {
            if let previous {
                // A copy of a discarded page left in the cache for nobody: it must not outlive
                // its window page's new owner there.
                if engine.frames.flags(previous).contains(.swapcache) { engine.cache.freeSwapIfUnused(previous) }
                engine.frames.unlock(previous)
                engine.allocator.putFolio(previous)
            }
        }
        let lock = ptl(page)
        while true {
            lock.lock()
            guard pte(page).isNone else {
                lock.unlock()
                engine.allocator.putFolio(f)
                return true
            }
            if let window {
                if let clock, window.discarded(page, after: clock) {
                    // Under the lock that the discard held: no discard can come between this
                    // look and the mapping below.
                    lock.unlock()
                    engine.allocator.putFolio(f)
                    return false
                }
                let current = window.owner(page)
                if current != 0 && (current == FrameWindow.releasing || current - 1 != previous?.frame) {
                    lock.unlock()
                    if let p = previous {
                        engine.frames.unlock(p)
                        engine.allocator.putFolio(p)
                        previous = nil
                    }
                    if current == FrameWindow.releasing {
                        // Being punched out: sleep until the release gives the page back.
                        window.waitWhileReleasing(page)
                    } else if engine.frames.tryGet(Folio(frame: current - 1)) {
                        let o = Folio(frame: current - 1)
                        engine.frames.lock(o)
                        previous = o
                    } else {
                        // Its last reference just went, and its free has yet to start the release
                        // (then we sleep above). A yield on purpose: the free announces nothing
                        // before its release, and a mark there would cost every free a check.
                        sched_yield()
                    }
                    continue
                }
                engine.allocator.claimPlacement(f)
                // A page free when claimed is a hole of the memfd (its last owner punched it
                // out): the memfd gives it zeroed without mapping it in the engine's view, which
                // would count it twice in RSS once the application maps it. A previous owner's
                // page still holds its data: zero it.
                if current != 0 || !window.allocateZeroed(page) {
                    engine.allocator.bytes(f).initializeMemory(as: UInt8.self, repeating: 0)
                }
            }
            // The mapping takes a reference of its own; ours keeps the folio until it is on
            // the LRU: once the lock drops, a discard may unmap and put it at any moment.
            engine.frames.get(f)
            engine.frames.setOwner(f, owner(page))
            setPTE(page, .present(frame: f.frame))
            lock.unlock()
            yieldPoint(.faultZeroMapped)
            // New anonymous pages start on the inactive list (as in the kernel since 5.9): they
            // must be touched again to count as part of the workingset.
            engine.allocator.lru(f).add(f, to: .inactive)
            engine.allocator.putFolio(f)
            engine.stats.count(.zeroFills)
            return true
        }
    }

    private func faultZeroLarge(_ page: Int, mayReclaim: Bool) -> Bool {
        let nr = 1 << folioOrder
        let base = folioBase(page, order: folioOrder)
        guard base + nr <= pageCount, (0..<nr).allSatisfy({ pte(base + $0).isNone }),
            let f = largeZeroFolio(mayReclaim: mayReclaim)
        else { return false }
        engine.allocator.bytes(f).initializeMemory(as: UInt8.self, repeating: 0)
        engine.frames.setFlags(f, [.uptodate, .dirty, .swapbacked])
        // One reference per mapped page, and ours until the folio is on the LRU (a discard
        // may unmap it as soon as the lock drops).
        guard mapBlock(f, at: base, references: UInt32(nr), ifEvery: { _ in .none }) else {
            engine.allocator.putFolio(f)
            return false
        }
        engine.allocator.lru(f).add(f, to: .inactive)
        engine.allocator.putFolio(f)
        engine.stats.count(.zeroFills, nr)
        return true
    }

    /// A folio of the region's order for a zero fill: reclaiming for it if `mayReclaim`, else
    /// only from free frames.
    private func largeZeroFolio(mayReclaim: Bool) -> Folio? {
        guard mayReclaim else { return engine.allocator.allocateFolioWithoutReclaim(order: folioOrder, group: group) }
        return try? engine.allocator.allocateFolio(order: folioOrder, group: group)
    }

    /// Brings a swapped-out page back and maps it (kernel: `do_swap_page`). Returns without
    /// mapping if the page table changed meanwhile; the caller looks again.
    private func doSwapPage(_ page: Int, _ pte: PageTableEntry) throws(SwapError) {
        if folioOrder > 0, try swapInLarge(page) { return }
        let entry = pte.swapEntry
        // A miss with a readahead window reads the page together with the run that follows it.
        let windowRest = try readAhead(.fault(page: page, entry: entry)).rest
        // Locked, uptodate, matching the entry, with our reference; nil if the entry was freed.
        guard
            let f = try engine.cache.swapIn(
                entry, group: group, placement: placement(page), claim: { claimEntry($0, page: page, entry: entry) })
        else {
            return
        }
        mapSwapped(f, at: page, pte, windowRest: windowRest)
    }

    /// Maps `f`, the locked, uptodate swap-cache folio of `pte`'s entry on `device`, at `page`
    /// under the page-table lock, the caller's reference becoming the mapping's; the slot's
    /// page-table reference goes, the cache's stays. False, with `f` unlocked and put, if the
    /// page table changed meanwhile. Allocates nothing: the signal-context fault uses it too.
    func mapCachedFolio(_ f: Folio, at page: Int, _ pte: PageTableEntry, device: SwapDevice) -> Bool {
        let frames = engine.frames
        let entry = pte.swapEntry
        let lock = ptl(page)
        lock.lock()
        guard self.pte(page) == pte else {
            // Someone else mapped it (or discarded it) while we waited: leave it to them. If it
            // was discarded, nothing refers to the slot any more and the folio we read would stay
            // cached for nobody: drop it now. If another faulter mapped this very folio, keep
            // the clean cached copy: a later swap-out then needs no write.
            let now = self.pte(page)
            lock.unlock()
            if !now.isPresent || frames.folio(containing: now.frame) != f { engine.cache.freeSwapIfUnused(f) }
            frames.unlock(f)
            engine.allocator.putFolio(f)
            return false
        }
        let sub = entry.offset - frames.entry(f).offset
        // The reverse map names the folio's first page (a large folio comes back page by page
        // when its block was not swapped in whole).
        frames.setOwner(f, owner(page - sub))
        setPTE(page, .present(frame: f.frame + UInt32(sub)))
        // The page table no longer refers to the slot; the cache still holds it.
        device.put(entry)
        lock.unlock()
        return true
    }

    /// Maps `f`, the locked, uptodate swap-cache folio of `pte`'s entry (with the caller's
    /// reference, which this consumes), at `page`, unless the page table changed meanwhile,
    /// and unlocks it; then readahead: the rest of the fault's window (`windowRest`), or the
    /// next window if the folio was read ahead (the second half of `do_swap_page`).
    func mapSwapped(_ f: Folio, at page: Int, _ pte: PageTableEntry, windowRest: Range<Int>?) {
        let entry = pte.swapEntry
        yieldPoint(.faultBeforeMap)
        let frames = engine.frames
        let before = frames.clearFlags(f, FolioFlags.readaheadMarks)
        let device = engine.devices.device(mappedBy: entry)
        guard mapCachedFolio(f, at: page, pte, device: device) else { return }
        yieldPoint(.faultMapped)
        // Only now, with the page mapped, may the folio leave the cache: a concurrent faulter
        // still finds it there instead of starting a second read (kernel phase II patch 6).
        // Keep it cached while swap has room, so a later swap-out of this clean page needs no
        // write; free the slot when swap, or the group's swap, is over half full.
        if engine.cache.shouldFreeSwap(afterSwapIn: f, device: device) { engine.cache.freeSwapIfUnused(f) }
        frames.unlock(f)
        // A hit counts (a trigger's submits the next window); a miss reads the rest of its window.
        _ = try? readAhead(.mapped(page: page, folioPages: frames.pageCount(f), flags: before, rest: windowRest))
    }

    /// Swaps in the whole aligned block holding `page` as one large folio, when its pages went
    /// out as one run of slots and nobody races for part of it (kernel: mTHP swap-in through
    /// `swapin_folio`): from the cache when a folio of the block's size is there (read ahead,
    /// say), else by one read, followed by readahead of the next blocks. Returns false to fall
    /// back to single pages.
    private func swapInLarge(_ page: Int) throws(SwapError) -> Bool {
        let nr = 1 << folioOrder
        let base = folioBase(page, order: folioOrder)
        let frames = engine.frames
        // Whether we already looked for a racer's folio after losing the insert.
        var lookedAgain = false
        while true {
            guard let entry = largeSwapRun(at: base) else { return false }
            if let cached = engine.cache.swapCacheGetFolio(entry) {
                switch try mapCachedBlock(cached, base: base, entry: entry) {
                case .mapped: return true
                case .fallback: return false
                case .retry: continue
                }
            }
            let f: Folio, shadow: UInt64?
            let allocation: SwapCacheAllocation
            do {
                allocation = try engine.cache.swapCacheAllocFolio(
                    entry, order: folioOrder, group: group, claim: { claimEntry($0, page: base, entry: entry, pages: nr) })
            } catch  where error.code == .outOfMemory {
                // No free run of frames for the block (memory fragmented, or its group near its
                // limit): the page comes back alone, as the kernel falls back to order 0 when
                // a large folio cannot be allocated.
                engine.stats.count(.largeFallbacks)
                return false
            }
            switch allocation {
            case .allocated(let new, let s):
                (f, shadow) = (new, s)
            case .fallback where !lookedAgain:
                // Some slot of the block holds a folio: a racer's whole block (another fault, a
                // readahead) maps at once; anything smaller falls back on the next pass.
                lookedAgain = true
                continue
            default:
                return false
            }
            do {
                try engine.cache.swapReadFolio(f, shadow: shadow)
            } catch {
                frames.unlock(f)
                engine.allocator.putFolio(f)
                throw error
            }
            engine.groups[group].count(.pswpin, nr)
            let activate = shadow.map { engine.workingset.refault(f, shadow: $0) } ?? false
            engine.allocator.lru(f).add(f, to: activate ? .active : .inactive)
            let device = engine.devices.device(mappedBy: entry)
            // Our reference becomes one of the mapping's.
            guard mapSwappedBlock(f, at: base, entry: entry, device: device) else {
                // Part of the block changed while we read: the pages fault in one by one and find
                // this folio in the cache.
                engine.cache.freeSwapIfUnused(f)
                frames.unlock(f)
                engine.allocator.putFolio(f)
                return false
            }
            if engine.cache.shouldFreeSwap(afterSwapIn: f, device: device) { engine.cache.freeSwapIfUnused(f) }
            frames.unlock(f)
            // A miss: the blocks after this one, without waiting.
            _ = try? readAhead(.mapped(page: base, folioPages: nr, block: true, flags: []))
            return true
        }
    }

    /// What `mapCachedBlock` did.
    private enum CachedBlockOutcome {
        /// The whole block is mapped.
        case mapped
        /// The folio does not cover the block as one, or the block changed: single pages.
        case fallback
        /// The folio left the cache while we waited for it: look again.
        case retry
    }

    /// Maps the whole block at `base` from `f`, found cached for its first entry `entry` (with
    /// our reference, which this consumes), when `f` is a folio of the block's size for exactly
    /// its run: one fault for the block (kernel: `do_swap_page` mapping a large folio from the
    /// swap cache). A folio read ahead counts a hit for all its pages, and its trigger submits
    /// the next window.
    private func mapCachedBlock(_ f: Folio, base: Int, entry: SwapEntry) throws(SwapError) -> CachedBlockOutcome {
        let nr = 1 << folioOrder
        let frames = engine.frames
        // A smaller folio (the block came back page by page) cannot map the block whole.
        guard frames.pageCount(f) == nr, frames.entry(f) == entry else {
            engine.allocator.putFolio(f)
            return .fallback
        }
        // Its read may still be in flight (async readahead): wait for it on the folio lock.
        engine.cache.lockCached(f)
        guard try engine.cache.recheck(lockedFolio: f, entry, pages: nr) else { return .retry }
        engine.stats.count(.cacheHits)
        let device = engine.devices.device(mappedBy: entry)
        // Our reference becomes one of the mapping's.
        guard mapSwappedBlock(f, at: base, entry: entry, device: device) else {
            // A page of the block was mapped (by a racer, page by page) or discarded meanwhile:
            // the rest fault in one by one and find the folio in the cache. Its readahead mark
            // stays for them.
            frames.unlock(f)
            engine.allocator.putFolio(f)
            return .fallback
        }
        let before = frames.clearFlags(f, FolioFlags.readaheadMarks)
        if engine.cache.shouldFreeSwap(afterSwapIn: f, device: device) { engine.cache.freeSwapIfUnused(f) }
        frames.unlock(f)
        // A block read ahead counts a hit for all its pages; its trigger's, the next window.
        if before.contains(.readahead) { _ = try? readAhead(.mapped(page: base, folioPages: nr, block: true, flags: before)) }
        return .mapped
    }

    /// A write to a page whose folio is still in the swap cache: the device copy goes stale, so
    /// the slot is freed (kernel: `folio_free_swap` on a write fault). Caller holds a reference.
    func releaseSwapForWrite(_ f: Folio) {
        let frames = engine.frames
        frames.lock(f)
        frames.waitWriteback(f)
        if frames.flags(f).contains(.swapcache) { engine.cache.freeSwapIfUnused(f) }
        frames.unlock(f)
    }

    /// Lets the new folio `f` for `entry` (the `nr` pages from `page` on) be read for this
    /// region, under the page-table lock, only while the pages still refer to `entry`; a
    /// transparent region's folio takes its window page there (see
    /// `SwapCache.swapCacheAllocFolio`, whose `claim` calls it from a closure that does not
    /// escape: no allocation per swap-in).
    func claimEntry(_ f: Folio, page: Int, entry: SwapEntry, pages nr: Int = 1) -> Bool {
        let lock = ptl(page)
        lock.lock()
        defer { lock.unlock() }
        for i in 0..<nr where pte(page + i) != .swap(entry.advanced(by: i)) { return false }
        if window != nil { engine.allocator.claimPlacement(f) }
        return true
    }

    /// Maps every page of the block of `f` at `base` (page `base + i` to frame `f.frame + i`)
    /// under the block's page-table lock, if each page still holds `expected(i)`: takes
    /// `references` on the folio for the mappings, names `base` in its reverse-map key, and
    /// runs `underLock` before the lock drops. Returns false, changing nothing, if a page
    /// changed. The block lies under one page-table lock (at most 512 pages, aligned).
    private func mapBlock(
        _ f: Folio, at base: Int, references: UInt32, ifEvery expected: (Int) -> PageTableEntry,
        underLock: () -> Void = {}
    ) -> Bool {
        let frames = engine.frames
        let nr = frames.pageCount(f)
        assert(base % nr == 0 && nr <= Self.pagesPerPTL, "block of \(nr) pages at \(base) spans page-table locks")
        let lock = ptl(base)
        lock.lock()
        defer { lock.unlock() }
        guard (0..<nr).allSatisfy({ pte(base + $0) == expected($0) }) else { return false }
        frames.get(f, references)
        frames.setOwner(f, owner(base))
        for i in 0..<nr { setPTE(base + i, .present(frame: f.frame + UInt32(i))) }
        underLock()
        return true
    }

    /// `mapBlock` for a large folio swapped in for the run at `entry`: maps the block if every
    /// page still refers to its slot, the caller's reference becoming one of the mappings', and
    /// drops the page table's references to the slots under the lock (the cache still holds
    /// them).
    private func mapSwappedBlock(_ f: Folio, at base: Int, entry: SwapEntry, device: SwapDevice) -> Bool {
        let nr = engine.frames.pageCount(f)
        return mapBlock(f, at: base, references: UInt32(nr - 1), ifEvery: { .swap(entry.advanced(by: $0)) }) {
            device.put(entry, count: nr)
        }
    }

    /// The reverse-map word of `page` of this region.
    @inline(__always)
    func owner(_ page: Int) -> ReverseMapKey { ReverseMapKey(region: id, page: page) }
}
