import CUserSwap
import Glibc

/// What one attempt at bringing an entry into the swap cache produced.
enum SwapCacheAllocation {
    /// A folio was already cached: a reference is held, the folio is not locked.
    case cached(Folio)
    /// Our new folio went in: it is locked and in the cache; the caller must read it.
    case allocated(Folio, shadow: UInt64?)
    /// The entry was freed (or its device is gone): nothing to swap in.
    case noEntry
    /// A large folio met a conflicting slot: retry with order 0 (kernel: mTHP swap-in fallback).
    case fallback
    /// `mayReclaim: false` and no frame free (or the group at its limit): nothing was
    /// reclaimed and no error built.
    case noMemory
}

/// The swap-in synchronizer (kernel: `__swap_cache_prepare_and_add`, `swap_cache_alloc_folio`,
/// `swap_read_folio`).
extension SwapCache {
    /// Finds the folio cached for `entry` or inserts a new one, according to the space's
    /// protocol. Under the swap-cache protocol the loop never sleeps: a racer that loses the
    /// insert finds the winner's folio and the caller waits on its lock; a lost race against a
    /// folio that left the cache in between just tries again. Under the legacy protocols a
    /// racer that finds the has-cache bit but no folio sleeps and tries again: until the next
    /// tick (`legacy`), until woken or the next tick (`legacy-wq`), or a whole tick
    /// (`legacy-bypass`).
    ///
    /// `placement` puts the new folio's bytes in a transparent region's window; the folio claims
    /// its window page only once it is sure to be the one that reads (after the insert, or with
    /// the has-cache bit), so a racer that loses never touches the page. `claim` does that under
    /// the page's page-table lock and refuses when the page no longer refers to `entry`: the
    /// caller read its page-table entry without a lock, and meanwhile the page may have been
    /// discarded and the slot given to another page, whose data must not land in this page —
    /// and, in any region, whose swap must not stay cached in a folio charged to the caller's
    /// group (the slot's page would later go out through it, its swap charged to that group).
    /// A refused folio leaves the cache unread, the slot's shadow and charge put back. Without
    /// a claim the folio must not be placed in a window. Not escaping: the closure's context
    /// stays on the caller's stack (a swap-in allocates no memory for it).
    ///
    /// `mayReclaim: false` returns `.noMemory` instead of reclaiming when no frame is free
    /// (`allocateFolioWithoutReclaim`). `ownArriving`: pages of new folios the caller holds
    /// unread (a batch being built), which an allocation out of memory must not wait for.
    /// `queuesForFrames` (an async pin) returns `.noMemory` when no frame is free and the
    /// caller's task is to wait in `FrameAllocator.frameWaiters` (`allocateFolioOrQueue`).
    func swapCacheAllocFolio(
        _ entry: SwapEntry, order: Int = 0, group: Int = 0,
        placement: FramePlacement = .arena,
        claim: (Folio) -> Bool = { _ in true }, mayReclaim: Bool = true, ownArriving: Int = 0,
        queuesForFrames: Bool = false
    ) throws(SwapError) -> SwapCacheAllocation {
        let entry = entry.alignedDown(order: order)
        while true {
            // A large folio never adopts a cached one: the cached folio may be a smaller one
            // covering only part of the range.
            if order == 0, let f = swapCacheGetFolio(entry) {
                stats.count(.cacheHits)
                return .cached(f)
            }
            yieldPoint(.swapInMissed)
            let f: Folio
            if queuesForFrames {
                guard let free = try allocator.allocateFolioOrQueue(order: order, group: group) else { return .noMemory }
                f = free
            } else if mayReclaim {
                f = try allocator.allocateFolio(order: order, group: group, ownArriving: ownArriving)
            } else {
                guard let free = allocator.allocateFolioWithoutReclaim(order: order, group: group) else { return .noMemory }
                f = free
            }
            allocator.place(f, placement)
            frames.lock(f)
            frames.setFlags(f, .swapbacked)
            frames.markArriving(f)
            let result: SwapCacheAddResult
            switch sync {
            case .swapCache:
                result = swapCacheAddFolio(f, entry, alloc: false)
            case .hasCacheBit(let tick):
                switch swapcachePrepare(entry, count: 1 << order) {
                case .added:
                    // The bit is ours. Before swap-cache synchronization the folio then goes into the cache
                    // at once, locked, and is read there: racers sleep on its lock. Only until
                    // the insert (where the kernel charged the folio) do they find no folio.
                    yieldPoint(.swapInPrepared)
                    result = swapCacheAddFolio(f, entry, alloc: true)
                    require(result != .exists && result != .noEntry, "legacy insert failed after prepare")
                case .exists:
                    if let cached = loseHasCacheRace(f, entry, order: order) { return cached }
                    // Someone holds the bit but its folio is not in yet: we cannot know who, so
                    // sleep until the next tick and retry (the long tail swap-cache synchronization removes).
                    yieldPoint(.swapInRetry)
                    Self.sleepUntil(Self.nextTick(tick))
                    continue
                case .noEntry:
                    result = .noEntry
                }
            case .hasCacheBitWaitQueue(let tick), .hasCacheBitBypass(let tick):
                switch swapcachePrepare(entry, count: 1 << order) {
                case .added:
                    // The bit is ours. As the kernel did for synchronous devices before swap-cache synchronization
                    // (the swap-cache bypass), read into the private folio first and insert it
                    // only afterwards: during the read, racers see the bit and no folio.
                    yieldPoint(.swapInPrepared)
                    guard claimWindowPage(f, claim) else {
                        discardNewFolio(f)
                        swapcacheClear(entry, count: 1 << order)
                        stats.count(.noEntries)
                        return .noEntry
                    }
                    do {
                        try readFolio(f, from: entry)
                    } catch {
                        discardNewFolio(f)
                        swapcacheClear(entry, count: 1 << order)
                        throw error
                    }
                    // Nobody else can insert while we hold the bit, so the insert cannot fail.
                    result = swapCacheAddFolio(f, entry, alloc: true)
                    require(result != .exists && result != .noEntry, "legacy insert failed after prepare")
                    // The racers asleep on `swapcache_wq` can find the folio now.
                    swapcacheWaitQueue.wake()
                case .exists:
                    #if DEBUG
                    if testHooks.legacyLoserReads.load(ordering: .relaxed) {  // Relaxed: a test switch, set before the test's threads start
                        // The planted bug: a read the bit was meant to make someone else's.
                        try? readFolio(f, from: entry)
                    }
                    #endif
                    if case .hasCacheBitWaitQueue = sync {
                        swapcacheWaitQueue.startWatching()
                        let generation = swapcacheWaitQueue.generation
                        // Looked at after starting to watch: an insert or clear from now on
                        // wakes us.
                        if let cached = loseHasCacheRace(f, entry, order: order) {
                            swapcacheWaitQueue.stopWatching()
                            return cached
                        }
                        // Asleep on `swapcache_wq` until the holder inserts its folio or gives
                        // the bit up, one tick at most (kernel 6.12: `add_wait_queue`,
                        // `schedule_timeout_uninterruptible(1)`).
                        yieldPoint(.swapInRetry)
                        swapcacheWaitQueue.wait(after: generation, deadline: Self.nextTick(tick))
                        swapcacheWaitQueue.stopWatching()
                    } else {
                        if let cached = loseHasCacheRace(f, entry, order: order) { return cached }
                        // Nothing wakes us: sleep a whole tick and retry.
                        yieldPoint(.swapInRetry)
                        sleep(tick)
                    }
                    continue
                case .noEntry:
                    result = .noEntry
                }
            }
            switch result {
            case .added(let shadow):
                guard claimWindowPage(f, claim) else {
                    // Not this page's entry any more: out of the cache again, unread (a racer
                    // asleep on the lock sees it gone and looks again), the swap charge back.
                    swapCacheDeleteNewFolio(f, shadow: shadow)
                    discardNewFolio(f)
                    stats.count(.noEntries)
                    return .noEntry
                }
                yieldPoint(.swapInAdded)
                return .allocated(f, shadow: shadow)
            case .exists:
                discardNewFolio(f)
                stats.count(.raceLosses)
                yieldPoint(.swapInLostRace)
                if order > 0 {
                    stats.count(.largeFallbacks)
                    return .fallback
                }
                // Look the winner up; if it already left the cache, we try again.
                continue
            case .noEntry:
                discardNewFolio(f)
                stats.count(.noEntries)
                return .noEntry
            }
        }
    }

    /// Reads `f` (locked, in the cache for its entry) from its device, unless it already is
    /// uptodate (the legacy protocol reads before inserting). On success the folio is uptodate; on
    /// failure it is taken out of the cache again, marked with `.error`, and the slots keep their
    /// counts and get back `shadow` (the one the insert replaced) and their swap charge, so the
    /// data stays on the device, accounted, for a later attempt. The folio stays locked either
    /// way; the caller unlocks.
    func swapReadFolio(_ f: Folio, shadow: UInt64?) throws(SwapError) {
        assert(frames.isLocked(f))
        if frames.flags(f).contains(.uptodate) { return }
        yieldPoint(.swapInBeforeRead)
        do {
            try readFolio(f, from: frames.entry(f))
        } catch {
            frames.setFlags(f, .error)
            swapCacheDeleteNewFolio(f, shadow: shadow)
            throw error
        }
    }

    /// Reads the slots at `entry` into the locked folio `f` and marks it uptodate.
    private func readFolio(_ f: Folio, from entry: SwapEntry) throws(SwapError) {
        guard let device = devices.device(for: entry) else {
            throw SwapError(.deviceGone, "the device of \(entry) was removed")
        }
        do {
            let consumed = try allocator.fill(f) { (buffer) throws(SwapError) in try device.io.read(into: buffer, atPage: entry.offset) }
            // The backend no longer holds the data: the folio is its only copy.
            if consumed { frames.setFlags(f, .dirty) }
        } catch {
            stats.count(.readErrors)
            throw error
        }
        stats.count(.deviceReads)
        stats.count(.swapIns, frames.pageCount(f))
        frames.setFlags(f, .uptodate)
    }

    /// Brings `entry` into memory and returns its folio locked, uptodate, matching `entry`, with
    /// a reference for the caller; nil if the entry was freed meanwhile (the caller re-checks its
    /// page table). Exactly one racer reads; the others sleep on the folio lock.
    func swapIn(
        _ entry: SwapEntry, group: Int = 0, placement: FramePlacement = .arena,
        claim: (Folio) -> Bool = { _ in true }
    ) throws(SwapError) -> Folio? {
        while true {
            switch try swapCacheAllocFolio(entry, order: 0, group: group, placement: placement, claim: claim) {
            case .allocated(let f, let shadow):
                do {
                    try swapReadFolio(f, shadow: shadow)
                } catch {
                    frames.unlock(f)
                    allocator.putFolio(f)
                    throw error
                }
                // On the LRU from now on, so reclaim sees it even if nobody maps it; straight to
                // the active list if it was evicted only a short refault distance ago.
                groups[group].count(.pswpin)
                let activate = shadow.map { workingset.refault(f, shadow: $0) } ?? false
                allocator.lru(f).add(f, to: activate ? .active : .inactive)
                return f
            case .cached(let f):
                yieldPoint(.swapInFoundCached)
                lockCached(f)
                yieldPoint(.swapInLocked)
                #if DEBUG
                if testHooks.skipRecheckAfterLock.load(ordering: .relaxed) {  // Relaxed: a test switch, set before the test's threads start
                    // The planted bug: trust the folio found before sleeping on its lock.
                    return f
                }
                #endif
                guard try recheck(lockedFolio: f, entry) else { continue }
                return f
            case .noEntry, .fallback, .noMemory:
                return nil
            }
        }
    }

    /// Locks `f`, found in the cache (caller's reference, no lock held). Its lock may be a read's
    /// in flight: an asynchronous run's (readahead, a prefetch) still queued for the completer
    /// is completed here, so the wait is for the read itself.
    func lockCached(_ f: Folio) {
        if frames.tryLock(f) { return }
        asyncReads.complete(runOf: f)
        frames.lock(f)
    }

    /// Re-checks `f`, found cached for `entry` and then locked by the caller (with its
    /// reference): while the caller slept on the lock, a racer may have taken it out of the
    /// cache, or its read may have failed (kernel: "always lock and check the swap cache folio
    /// before use"). True: still the entry's folio — with `pages`, a folio of that many pages
    /// starting at `entry` — and uptodate. False: it left the cache; now unlocked and put, and
    /// the caller looks again. Throws the read's error when the read failed (the data is still
    /// on the device).
    func recheck(lockedFolio f: Folio, _ entry: SwapEntry, pages: Int? = nil) throws(SwapError) -> Bool {
        assert(frames.isLocked(f))
        guard frames.matches(f, entry), pages.map({ frames.entry(f) == entry && frames.pageCount(f) == $0 }) ?? true else {
            let failed = frames.flags(f).contains(.error)
            frames.unlock(f)
            allocator.putFolio(f)
            if failed {
                let what = pages == nil ? "the page is" : "the pages are"
                throw SwapError(.ioError, "reading \(entry) failed; \(what) still on the device and a later access retries")
            }
            return false
        }
        guard frames.flags(f).contains(.uptodate) else {
            trap("\(f) in the swap cache, unlocked, but not uptodate")
        }
        return true
    }

    /// Claims the new folio for the caller's page through `claim` (which also claims a placed
    /// folio's window page).
    @inline(__always)
    private func claimWindowPage(_ f: Folio, _ claim: (Folio) -> Bool) -> Bool { claim(f) }

    /// Undoes the allocation of a folio that lost the race to get into the cache.
    private func discardNewFolio(_ f: Folio) {
        frames.clearFlags(f, .swapbacked)
        frames.unlock(f)
        allocator.putFolio(f)
    }

    /// A has-cache-bit racer that found the bit taken: gives up its new folio and returns what
    /// the caller returns at once — the winner's folio if it is already cached, a fallback for a
    /// large folio — or nil when the caller must wait for the bit's holder (counted as a legacy
    /// sleep).
    private func loseHasCacheRace(_ f: Folio, _ entry: SwapEntry, order: Int) -> SwapCacheAllocation? {
        discardNewFolio(f)
        stats.count(.raceLosses)
        if order > 0 {
            stats.count(.largeFallbacks)
            return .fallback
        }
        if let cached = swapCacheGetFolio(entry) {
            stats.count(.cacheHits)
            return .cached(cached)
        }
        stats.count(.legacySleeps)
        return nil
    }

    /// The next boundary of a clock ticking every `tick` (`cus_monotonic_ns` time): a one-jiffy
    /// timeout ends there, so it sleeps at most one tick.
    static func nextTick(_ tick: Duration) -> UInt64 {
        let ns = UInt64(tick.components.seconds) * 1_000_000_000 + UInt64(tick.components.attoseconds / 1_000_000_000)
        let now = cus_monotonic_ns()
        return ns == 0 ? now : (now / ns + 1) * ns
    }

    /// Sleeps until the `cus_monotonic_ns` time `deadline`.
    static func sleepUntil(_ deadline: UInt64) {
        let now = cus_monotonic_ns()
        guard deadline > now else { return }
        let d = deadline - now
        var request = timespec(tv_sec: Int(d / 1_000_000_000), tv_nsec: Int(d % 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 { request = remaining }
    }

    private func sleep(_ d: Duration) {
        var request = timespec(tv_sec: Int(d.components.seconds), tv_nsec: Int(d.components.attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 { request = remaining }
    }
}
