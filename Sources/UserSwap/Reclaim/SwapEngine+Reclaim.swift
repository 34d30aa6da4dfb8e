/// Reclaim (kernel: `mm/vmscan.c`, anonymous pages): take folios from the tail of the inactive
/// list; a folio referenced since it was last looked at gets a second chance on the active
/// list; the others are swapped out. The active list ages into the inactive one so that the
/// inactive list stays at least as long as the active one.
extension SwapEngine {
    /// Folios isolated per batch (kernel: `SWAP_CLUSTER_MAX`).
    static let reclaimBatch = 32

    /// Reclaims until `target` frames were freed or a pass makes no progress. Returns the
    /// frames freed. Safe from any thread holding no folio, page-table or cluster lock.
    @discardableResult
    func shrink(target: Int) -> Int {
        var freed = 0
        var idlePasses = 0
        var batch: [Folio] = []
        batch.reserveCapacity(Self.reclaimBatch)
        while freed < target && idlePasses < 3 {
            if lru.pages(.inactive) < lru.pages(.active) { shrinkActive() }
            batch.removeAll(keepingCapacity: true)
            lru.isolate(from: .inactive, max: Self.reclaimBatch, into: &batch)
            if batch.isEmpty {
                // Only active folios left (or none): age them and try again.
                if lru.pages(.active) == 0 { break }
                shrinkActive()
                idlePasses += 1
                continue
            }
            var freedNow = 0
            for f in batch { freedNow += shrinkFolio(f) }
            freed += freedNow
            idlePasses = freedNow == 0 ? idlePasses + 1 : 0
        }
        stats.count(.reclaimFreed, freed)
        return freed
    }

    /// Moves the oldest active folios to the inactive list, clearing their referenced bit, so
    /// that they must be touched again to earn another activation (kernel:
    /// `shrink_active_list`; anonymous pages are deactivated whether referenced or not).
    func shrinkActive() {
        var batch: [Folio] = []
        lru.isolate(from: .active, max: Self.reclaimBatch, into: &batch)
        for f in batch {
            frames.clearFlags(f, .referenced)
            lru.add(f, to: .inactive)
            putFolio(f)
        }
    }

    /// Tries to free one isolated folio (caller's isolation reference). Returns the frames freed.
    private func shrinkFolio(_ f: Folio) -> Int {
        stats.count(.reclaimScanned)
        let flags = frames.clearFlags(f, .referenced)
        if flags.contains(.referenced) {
            // Second chance: touched since reclaim last saw it.
            stats.count(.reclaimActivated)
            return putBack(f, to: .active)
        }
        guard frames.tryLock(f) else { return putBack(f, to: .inactive) }
        let nr = frames.pageCount(f)
        let owner = frames.owner(f)
        var removed = false
        if owner != 0, let region = region(Int(owner >> 40)) {
            let page = Int(owner & (1 << 40 - 1))
            let pte = page < region.pageCount ? region.pte(page) : .none
            if pte.isPresent && frames.folio(containing: pte.frame) == f {
                removed = (try? region.shrinkLocked(page, pte, f)) ?? false
            } else {
                removed = shrinkUnmapped(f)
            }
            // Unlock before the region reference goes: dropping the last one runs its deinit,
            // which locks folios.
            withExtendedLifetime(region) { frames.unlock(f) }
        } else {
            removed = shrinkUnmapped(f)
            frames.unlock(f)
        }
        if removed {
            freeFolio(f)
            return nr
        }
        return putBack(f, to: .inactive)
    }

    /// A folio no page maps: if it is in the swap cache, write it if needed and drop it.
    /// Caller holds the folio lock and one reference.
    private func shrinkUnmapped(_ f: Folio) -> Bool {
        let flags = frames.flags(f)
        guard flags.contains(.swapcache), !flags.contains(.writeback),
              let device = devices.device(for: frames.entry(f)) else { return false }
        if flags.contains(.dirty) {
            do { try writeback(f, device: device) } catch { return false }
        }
        return removeMapping(f, device: device, shadow: workingsetEviction(f))
    }

    /// Returns a folio reclaim could not free to `list` (unless it is only alive because of us
    /// and someone else's reference, e.g. a pin on a discarded page: then it just goes).
    private func putBack(_ f: Folio, to list: LRUVec.List) -> Int {
        if frames.owner(f) != 0 || frames.flags(f).contains(.swapcache) {
            lru.add(f, to: list)
        }
        putFolio(f)
        return 0
    }
}
