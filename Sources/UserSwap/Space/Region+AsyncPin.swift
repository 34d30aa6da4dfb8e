/// Access from Swift concurrency that suspends instead of blocking: `try await pin(_:for:)`
/// returns at once when the page is resident and otherwise suspends the task until its read
/// completes, so a thousand tasks on a cooperative pool of two threads keep a thousand reads in
/// flight where the blocking `pin` keeps two.
///
/// The swap-cache protocol is the blocking one's: the first task that inserts the entry's folio
/// submits its read (`readAhead(.suspendingFault)`: the page and the run of consecutive slots
/// after it, through the same `readIntoCache` as readahead, the rest of the window once the
/// page is mapped), without waiting; the device's I/O engine does the transfer (io_uring, or
/// the thread pool) and `AsyncReadCompleter` completes it. Every task that needs the folio —
/// the reader and its racers — suspends on it (`FrameTable.waitAsync`: a hashed waiter list,
/// not a futex), and the completer's unlock resumes them. A resumed task looks again: it finds
/// the folio cached and maps it, or, if reclaim took it meanwhile, goes round again (reading
/// again, asynchronously again). Nothing on this path sleeps on a lock held across I/O.
///
/// Frames: when none is free for the page (a swap-in's or a first touch's), the task does not
/// reclaim on its thread — reclaim writes pages out and waits — nor retry in a loop: it joins
/// `FrameAllocator.frameWaiters` in order of arrival, wakes the background reclaimer and
/// suspends until the reclaimer has freed frames for it (kernel: `throttle_direct_reclaim`).
/// A task that arrives while others wait queues behind them.
///
/// What still runs on the calling thread: the first touch of a page (zero-filled, no I/O);
/// reclaim for a memory group at its limit, and any reclaim in a space without a background
/// reclaimer (`backgroundReclaim: false`: nobody would resume the task); a device whose
/// I/O engine is synchronous (`.memory`, a backend that is not a swap file unless
/// `ioEngine: .threadPool` is asked for) reads in the caller; the legacy swap-in protocols
/// (`SwapInSync` other than `.swapCache`) take the blocking path; a large-folio region brings
/// its pages in one by one. See the DocC article *Blocking or async access*.
extension Region {
    /// Pins `page` in memory as `pin(_:for:)` does, suspending the task — never blocking its
    /// thread — while the page is read from its device or while another task's read of it, or
    /// the write-back of a page about to be written, is in flight.
    ///
    /// The pin may be held across `await`; while it lives the page cannot be reclaimed, and it
    /// counts against the space's `asyncPinLimit`: a task whose page is in memory while that
    /// many async pins are held throws `.pinLimit` (tasks suspended for their page hold none).
    /// A task cancelled while suspended throws `.cancelled`, having changed nothing (a read it
    /// started completes into the swap cache, where a later access finds it). A resident page
    /// is pinned even if the task is cancelled.
    public func pin(_ page: Int, for access: PageAccess = .write) async throws(SwapError) -> Pin {
        try checkPage(page)
        return try await pinSuspending(page, for: access)
    }

    /// Runs `body` on `page`'s bytes while it is pinned (`pin(_:for:)`, async), and releases
    /// the pin when `body` returns. `body` may itself suspend.
    public func withPage<R>(
        _ page: Int, for access: PageAccess = .write, _ body: (UnsafeMutableRawBufferPointer) async throws -> R
    ) async throws -> R {
        let pin = try await pin(page, for: access)
        return try await body(pin.bytes)
    }

    /// What stands between an async pin and its page, found by `tryPin`.
    enum AsyncBlocker {
        /// Nothing: look again now (the page table changed, a folio was just mapped or read).
        case none
        /// The folio is locked (a read in flight) or under writeback: wait for `bit` to clear.
        /// The caller holds a reference to it; `entry` is the swap entry the task wants from it
        /// (nil for a resident page), so that a failed read is reported.
        case folio(Folio, FolioFlags, entry: SwapEntry?)
        /// The page must be read, and as many async reads as the space allows are in flight:
        /// wait for a slot (`AsyncReadGate`).
        case readSlot
        /// No frame is free for the page, or other tasks wait for frames already: wait for the
        /// background reclaimer (`FrameWaitQueue`).
        case frames
    }

    /// An async pin's turn at free frames, kept across the rounds of its loop.
    struct FrameTurn {
        /// Its place among the tasks waiting for frames, from its first wait on.
        var ticket: FrameWaitQueue.Ticket?
        /// Resumed by the reclaimer: it may take a frame though others wait (they came later).
        var resumed = false
        /// Waits after which no frame was free and none could come (see `allocationWaitWasFruitless`).
        var fruitless = 0
    }

    /// The loop of an async pin: tries, and suspends on whatever blocks it, until pinned.
    private func pinSuspending(_ page: Int, for access: PageAccess) async throws(SwapError) -> Pin {
        var windowRest: Range<Int>?
        var blocker = AsyncBlocker.none
        // A slot of the read gate, held from before this task's read is submitted until it
        // has waited for that read.
        var readSlot = false
        var turn = FrameTurn()
        defer { if readSlot { engine.asyncReads.release() } }
        while true {
            if let pin = try tryPin(page, for: access, windowRest: &windowRest, readSlot: &readSlot, turn: &turn, blocker: &blocker) {
                return pin
            }
            if case .readSlot = blocker {
                blocker = .none
                try await engine.asyncReads.acquire()
                readSlot = true
                continue
            }
            if case .frames = blocker {
                blocker = .none
                try await waitForFrames(&turn)
                continue
            }
            guard case .folio(let f, let bit, let entry) = blocker else { continue }
            blocker = .none
            defer {
                // The read this task submitted (or found) has completed: its frames are on the
                // LRU again, and the slot goes to the next task in line.
                if readSlot && entry != nil {
                    engine.asyncReads.release()
                    readSlot = false
                }
            }
            do {
                try await engine.frames.waitAsync(f, untilClear: bit)
            } catch {
                engine.allocator.putFolio(f)
                throw error
            }
            // A read that failed took its folio out of the cache, marked (the data is still on
            // the device): the pin fails as a blocking one waiting for that read does.
            let failed = entry.map { e in engine.frames.flags(f).contains(.error) && !engine.frames.matches(f, e) } ?? false
            engine.allocator.putFolio(f)
            if failed, let entry {
                throw SwapError(.ioError, "reading \(entry) failed; the page is still on the device and a later access retries")
            }
        }
    }

    /// One attempt that never sleeps: returns the pin (counted), or nil with `blocker` saying
    /// what to wait for (`.none`: look again at once). Throws the errors a blocking pin throws.
    private func tryPin(
        _ page: Int, for access: PageAccess, windowRest: inout Range<Int>?, readSlot: inout Bool,
        turn: inout FrameTurn, blocker: inout AsyncBlocker
    ) throws(SwapError) -> Pin? {
        let frames = engine.frames
        let pte = pte(page)
        if pte.isPresent {
            let f = frames.folio(containing: pte.frame)
            // As in the blocking pin: a reference, then the entry re-read (see `pin`).
            guard frames.tryGet(f) else { return nil }
            guard self.pte(page) == pte && frames.folio(containing: pte.frame) == f else {
                engine.allocator.putFolio(f)
                return nil
            }
            if access == .write && frames.flags(f).contains(.swapcache) {
                // The device copy is about to go stale (`releaseSwapForWrite`), without
                // sleeping: a folio locked or under writeback is waited for, holding our
                // reference.
                guard frames.tryLock(f) else {
                    blocker = .folio(f, .locked, entry: nil)
                    return nil
                }
                if frames.flags(f).contains(.writeback) {
                    frames.unlock(f)
                    blocker = .folio(f, .writeback, entry: nil)
                    return nil
                }
                if frames.flags(f).contains(.swapcache) { engine.cache.freeSwapIfUnused(f) }
                frames.unlock(f)
            }
            // Counted once held: tasks waiting for their page hold nothing reclaim needs.
            do { try engine.asyncPins.take() } catch {
                engine.allocator.putFolio(f)
                throw error
            }
            frames.markFlags(f, access == .write ? [.referenced, .dirty] : .referenced)
            frames.noteUse(f)
            let start = window?.engineAddress(page) ?? engine.allocator.arena.address(pte.frame)
            let bytes = UnsafeMutableRawBufferPointer(start: start, count: SwapPage.size)
            return Pin(bytes: bytes, page: page, engine: engine, folio: f, counted: true)
        }
        if pte.isNone {
            // Frames go to the tasks waiting for them first, in order.
            guard turn.resumed || engine.allocator.frameWaiters.isEmpty, try faultZeroOrQueue(page) else {
                blocker = .frames
                return nil
            }
            turn = FrameTurn()
            return nil
        }
        guard case .swapCache = engine.sync else {
            // The legacy protocols read before inserting, or sleep for the has-cache bit: the
            // blocking path (they exist to measure the kernels that had them).
            _ = try pin(page, for: access, marksReferenced: true)
            return nil
        }
        let entry = pte.swapEntry
        if let f = engine.cache.swapCacheGetFolio(entry) {
            // Cached: its read may still be in flight (ours, a racer's, readahead's).
            guard frames.tryLock(f) else {
                blocker = .folio(f, .locked, entry: entry)
                return nil
            }
            // Unlocks and puts it if it left the cache; throws if its read failed.
            guard try engine.cache.recheck(lockedFolio: f, entry) else { return nil }
            engine.stats.count(.cacheHits)
            mapSwapped(f, at: page, pte, windowRest: windowRest)
            windowRest = nil
            return nil
        }
        // Not cached: insert a folio and submit its read (with the run after it), then look
        // again: the folio is there, locked until the read completes. Only with a slot of the
        // read gate, taken in order of arrival.
        if !readSlot {
            guard engine.asyncReads.tryAcquire() else {
                blocker = .readSlot
                return nil
            }
            readSlot = true
        }
        guard turn.resumed || engine.allocator.frameWaiters.isEmpty else {
            blocker = .frames
            return nil
        }
        let read = try readAhead(.suspendingFault(page: page, entry: entry))
        if read.waitsForFrames {
            blocker = .frames
            return nil
        }
        turn = FrameTurn()
        windowRest = read.rest
        return nil
    }

    /// Waits in `FrameAllocator.frameWaiters` until the background reclaimer resumes this task,
    /// in its place (taken at its first wait). Throws the allocation's error when the last
    /// three waits found no frame free and nothing that could free one (everything pinned,
    /// swap full), and `.cancelled` when the task is cancelled while it waits.
    private func waitForFrames(_ turn: inout FrameTurn) async throws(SwapError) {
        let allocator = engine.allocator
        if turn.resumed {
            if allocator.allocationWaitWasFruitless() {
                turn.fruitless += 1
                if turn.fruitless >= 3 { throw allocator.allocationFailure() }
            } else {
                turn.fruitless = 0
            }
        }
        let ticket = turn.ticket ?? allocator.frameWaiters.ticket()
        turn.ticket = ticket
        try await allocator.frameWaiters.wait(ticket) { allocator.wakeBackgroundReclaim() }
        turn.resumed = true
    }
}
