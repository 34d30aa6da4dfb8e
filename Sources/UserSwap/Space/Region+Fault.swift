/// Access to pages, and the fault path that brings them in (kernel: `handle_pte_fault`,
/// `do_anonymous_page`, `do_swap_page`).
extension Region {
    /// Pins `page` in memory, faulting it in from swap or zero-filling it first if needed.
    /// Pinning a resident page is a few atomic operations: no lock, no syscall.
    public func pin(_ page: Int, for access: PageAccess = .write) throws(SwapError) -> Pin {
        try checkPage(page)
        let frames = engine.frames
        while true {
            let pte = pte(page)
            if pte.isPresent {
                let f = frames.folio(containing: pte.frame)
                // A reference first, then re-read the entry: if swap-out unmapped the page in
                // between, one of us sees the other (both sides are sequentially consistent).
                if frames.tryGet(f) {
                    if self.pte(page) == pte {
                        let flags = frames.flags(f)
                        if access == .write && flags.contains(.swapcache) {
                            // The copy on the device is about to go stale: release it first.
                            releaseSwapForWrite(f)
                        }
                        frames.markFlags(f, access == .write ? [.referenced, .dirty] : .referenced)
                        let bytes = UnsafeMutableRawBufferPointer(start: engine.arena.address(pte.frame), count: SwapPage.size)
                        return Pin(bytes: bytes, page: page, region: self, folio: f)
                    }
                    engine.putFolio(f)
                }
                continue
            }
            if pte.isNone {
                try faultZero(page)
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

    /// Drops a pin's reference.
    @inline(__always)
    func unpin(_ f: Folio) {
        engine.putFolio(f)
    }

    /// First touch of a page: a zeroed folio (kernel: `do_anonymous_page`).
    private func faultZero(_ page: Int) throws(SwapError) {
        let f = try engine.allocateFolio(order: 0, group: group)
        engine.bytes(f).initializeMemory(as: UInt8.self, repeating: 0)
        engine.frames.setFlags(f, [.uptodate, .dirty, .swapbacked])
        let lock = ptl(page)
        lock.lock()
        if pte(page).isNone {
            // The folio's reference becomes the mapping's.
            engine.frames.setOwner(f, owner(page))
            setPTE(page, .present(frame: f.frame))
            lock.unlock()
            // New anonymous pages start on the inactive list (as in the kernel since 5.9): they
            // must be touched again to count as part of the workingset.
            engine.lru(f).add(f, to: .inactive)
            engine.stats.count(.zeroFills)
        } else {
            lock.unlock()
            engine.putFolio(f)
        }
    }

    /// Brings a swapped-out page back and maps it (kernel: `do_swap_page`). Returns without
    /// mapping if the page table changed meanwhile; the caller looks again.
    private func doSwapPage(_ page: Int, _ pte: PageTableEntry) throws(SwapError) {
        let entry = pte.swapEntry
        // Locked, uptodate, matching the entry, with our reference; nil if the entry was freed.
        guard let f = try engine.swapIn(entry, group: group) else { return }
        let frames = engine.frames
        let lock = ptl(page)
        lock.lock()
        guard self.pte(page) == pte else {
            // Someone else mapped it (or discarded it) while we waited: leave it to them. If it
            // was discarded, nothing refers to the slot any more and the folio we read would stay
            // cached for nobody: drop it now.
            lock.unlock()
            engine.freeSwapIfUnused(f)
            frames.unlock(f)
            engine.putFolio(f)
            return
        }
        guard let device = engine.devices.device(for: entry) else { preconditionFailure("\(entry) names a removed device") }
        let sub = entry.offset - frames.entry(f).offset
        frames.setOwner(f, owner(page))
        // Our reference becomes the mapping's.
        setPTE(page, .present(frame: f.frame + UInt32(sub)))
        // The page table no longer refers to the slot; the cache still holds it.
        device.put(entry)
        lock.unlock()
        // Only now, with the page mapped, may the folio leave the cache: a concurrent faulter
        // still finds it there instead of starting a second read (kernel phase II patch 6).
        // Keep it cached while swap has room, so a later swap-out of this clean page needs no
        // write; free the slot when swap is over half full.
        if device.freePages < device.usablePages / 2 {
            engine.freeSwapIfUnused(f)
        }
        frames.unlock(f)
    }

    /// A write to a page whose folio is still in the swap cache: the device copy goes stale, so
    /// the slot is freed (kernel: `folio_free_swap` on a write fault). Caller holds a reference.
    private func releaseSwapForWrite(_ f: Folio) {
        let frames = engine.frames
        frames.lock(f)
        frames.waitWriteback(f)
        if frames.flags(f).contains(.swapcache) { engine.freeSwapIfUnused(f) }
        frames.unlock(f)
    }

    /// The reverse-map word of `page` of this region.
    @inline(__always)
    func owner(_ page: Int) -> UInt64 { UInt64(id) << 40 | UInt64(page) }
}
