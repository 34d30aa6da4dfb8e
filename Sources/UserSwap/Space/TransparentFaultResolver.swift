import Glibc
import Synchronization

/// Resolves the faults of one transparent region, whoever serves them: the handler threads of
/// its userfaultfd (`TransparentFaultHandler`) or the faulting thread itself, from its SIGBUS
/// handler (`SignalFaultRouter`).
///
/// Resolution runs the region's fault path (the pin), then maps the page of the region's memfd
/// into the application's view (a minor-fault "continue": no copy). A page read but not yet
/// written is mapped read-only under uffd write protection when the kernel offers it, so that
/// the first store is seen and the folio marked dirty; without it every page the application
/// maps counts as dirty.
final class TransparentFaultResolver: Sendable {
    let uffd: UserFaultFD
    let region: Region
    let window: FrameWindow
    /// Cleared for good if the kernel refuses a write-protected continue.
    private let writeProtectUsable: Atomic<Bool>
    /// The last fault that could not be resolved (its thread got SIGBUS).
    let lastError = Mutex<SwapError?>(nil, rank: .lastError)
    /// Readahead that faults resolved on their own threads handed to the engine's threads
    /// (`SignalFaultHandoff`) and that has not finished yet: what `waitForReadahead` waits for.
    let readaheadsInFlight = Atomic<Int>(0)
    #if DEBUG
    /// Runs on a handler thread after it read a fault message, before it resolves it (a test
    /// holds a message there).
    let messageRead = TestHook()
    #endif

    /// One fault: a page not mapped (`write` when a store made it), or a store to a page mapped
    /// read-only under write protection.
    struct Fault {
        let page: Int
        let write: Bool
        let protect: Bool
        /// For a fault message a handler thread read: the window's discard clock just before
        /// the read (`FrameWindow.readDiscardClock`). Nil where the faulting thread itself waits
        /// for the resolution (its SIGBUS handler, `prefault`).
        var discardClock: UInt64? = nil
    }

    init(region: Region, window: FrameWindow, uffd: UserFaultFD) throws(SwapError) {
        self.region = region
        self.window = window
        self.uffd = uffd
        writeProtectUsable = Atomic(uffd.supportsWriteProtect)
        var modes: UserFaultFD.Modes = [.missing, .minor]
        if uffd.supportsWriteProtect { modes.insert(.writeProtect) }
        do {
            try uffd.register(appRange, modes: modes)
        } catch {
            throw SwapError(error)
        }
        // The engine's view too, for write protection that is never set on it: the kernel does
        // no fault-around in a range registered with userfaultfd (`uffd_disable_fault_around`),
        // so an engine read of one page (a write-out, a pin) maps that page alone there, rather
        // than its 15 neighbours too, pages the application maps (each counted twice in RSS).
        // Without write protection the engine's reads map neighbours: RSS only, not data.
        if uffd.supportsWriteProtect { try? uffd.register(engineRange, modes: [.writeProtect]) }
    }

    var appRange: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: window.appView, count: window.pageCount << SwapPage.shift)
    }

    var engineRange: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: window.engineView, count: window.pageCount << SwapPage.shift)
    }

    /// Resolves `fault`; retries with a growing pause what may pass (no memory right now, a
    /// device error). False when it does not pass (the error is kept in `lastError`): the
    /// caller sends the faulting thread SIGBUS — the kernel's answer to memory that cannot be
    /// read, rather than a hang or wrong data. With `wake` false, the threads waiting on the
    /// page sleep on (handler threads wake them once the pin is dropped).
    func resolve(_ fault: Fault, wake: Bool) -> Bool {
        var zaps = UnmapBatch()
        defer { zaps.flush() }
        return resolve(fault, wake: wake, zaps: &zaps)
    }

    /// `resolve(_:wake:)`, leaving the zap of the page's entry in the engine's view (see
    /// `FrameWindow.zapFromEngine`) in `zaps`, for the caller to flush with others.
    func resolve(_ fault: Fault, wake: Bool, zaps: inout UnmapBatch) -> Bool {
        region.engine.stats.count(region.pte(fault.page).isPresent ? .minorFaults : .majorFaults)
        do {
            try resolveRetrying(fault, wake: wake, zaps: &zaps)
            return true
        } catch {
            region.engine.stats.count(.faultErrors)
            noteError(error)
            return false
        }
    }

    /// `resolve` without the counting: throws the error of the last attempt. A device error is
    /// tried 6 times over ~60 ms; no memory, for about a second (pauses growing to 50 ms): pages
    /// pinned, read or written right now are free again within moments, and the alternative is
    /// a signal that usually ends the process.
    func resolveRetrying(_ fault: Fault, wake: Bool, zaps: inout UnmapBatch) throws(SwapError) {
        var attempt = 0
        while true {
            do {
                while try !resolveOnce(fault, wake: wake, zaps: &zaps) {}
                return
            } catch {
                attempt += 1
                guard attempt < (error.code == .outOfMemory ? 25 : 6) else { throw error }
                region.engine.stats.count(.faultRetries)
                // A backoff on purpose: memory or the device was short; reclaim or the device
                // recovers in its own time, and no one event says when.
                usleep(UInt32(min(1000 << attempt, 50_000)))
            }
        }
    }

    /// One attempt; false when it must be repeated (the kernel refused write-protected continue).
    private func resolveOnce(_ fault: Fault, wake: Bool, zaps: inout UnmapBatch) throws(SwapError) -> Bool {
        let address = window.appAddress(fault.page)
        let write = fault.write || fault.protect
        // Relaxed: a one-way switch; a stale true costs one refused attempt, handled below
        let tracking = writeProtectUsable.load(ordering: .relaxed)
        let outcome: UserFaultFD.Resolution
        do {
            // The pin keeps the folio in memory while it is mapped; it is dropped before the
            // faulting thread goes on, so the thread never finds its page busy because of us.
            // (A binding rather than a loop over `Pin`: a noncopyable value in a loop body that
            // returns early was not destroyed by Swift 6.3, leaking its reference.)
            // A message may be older than its thread's wait: a signal interrupts the wait (the
            // kernel then drops the thread's messages no handler has read, not this one), and
            // the thread touches the page again, which another message brings in, and goes on.
            // If it then discarded the page, zero-filling it now would give the region a page
            // nobody touched (a frame, and resident where the application left it untouched).
            // So a page discarded since the message was read gets a wake alone: a thread still
            // waiting for it faults again, and that message fills it. (Told by the discard, not
            // by any change: a page swapped out meanwhile is still the application's.)
            guard
                let pin = try region.pin(
                    fault.page, for: write || !tracking ? .write : .read, marksReferenced: false, touchesBytes: false,
                    unlessDiscardedAfter: fault.discardClock)
            else {
                region.engine.stats.count(.lateFaults)
                if wake { uffd.wake(address, length: SwapPage.size) }
                return true
            }
            if fault.protect {
                region.engine.stats.count(.writeProtectFaults)
                // The folio is dirty now (the pin for writing): let the store through.
                outcome = uffd.writeProtect(address, length: SwapPage.size, false, wake: false)
            } else {
                let readOnly = tracking && !region.engine.frames.flags(pin.folio).contains(.dirty)
                let r = uffd.resolveMinor(at: address, length: SwapPage.size, writeProtect: readOnly, wake: false)
                if case .failed(let e) = r, e == .invalidArgument && readOnly {
                    // A kernel without write-protected continue: track dirtiness by mapping
                    // every page writable.
                    writeProtectUsable.store(false, ordering: .relaxed)  // Relaxed: a one-way switch that orders nothing else
                    return false
                }
                if r == .alreadyMapped && write && tracking {
                    // Mapped already, maybe read-only: a store on the faulting thread's route,
                    // which cannot tell a write-protect fault from a missing one by the view's
                    // state alone (an unmap may be pending). The folio is dirty now: let it in.
                    region.engine.stats.count(.writeProtectFaults)
                    outcome = uffd.writeProtect(address, length: SwapPage.size, false, wake: false)
                } else {
                    outcome = r
                }
            }
            window.markInstalled(fault.page)
            // The application's view maps the page now: the engine's need not (RSS counts it once).
            window.zapFromEngine(fault.page, into: &zaps)
            withExtendedLifetime(pin) {}
        }
        // Mapped by another handler, or the mapping changing: the thread just tries again.
        if wake { uffd.wake(address, length: SwapPage.size) }
        if case .failed(let e) = outcome, !fault.protect {
            throw SwapError(.ioError, "cannot map page \(fault.page) of a transparent region", errno: e)
        }
        return true
    }

    /// `resolve(fault, wake: false)` in the faulting thread's SIGBUS handler, allocating
    /// nothing and taking no lock that code outside the engine may hold: false when the fault
    /// needs a thread of the engine (nothing counted then: that thread's `resolve` counts it),
    /// `handoff` then saying why. `readahead` is what to read ahead now that the page is
    /// mapped, for a thread too.
    func resolveInSignal(_ fault: Fault, readahead: inout Region.ReadaheadPlan, handoff: inout SignalFaultHandoff.Reason) -> Bool {
        let address = window.appAddress(fault.page)
        // Relaxed: a one-way switch; a stale true costs a refused continue, then a thread
        let tracking = writeProtectUsable.load(ordering: .relaxed)
        let minor = region.pte(fault.page).isPresent
        let access: PageAccess = fault.write || !tracking ? .write : .read
        guard let f = region.pinInSignal(fault.page, for: access, readahead: &readahead, handoff: &handoff) else { return false }
        // The reference keeps the folio in memory while it is mapped, as the pin in
        // `resolveOnce` does.
        defer { region.engine.allocator.putFolio(f) }
        let readOnly = tracking && !region.engine.frames.flags(f).contains(.dirty)
        var outcome = uffd.resolveMinor(at: address, length: SwapPage.size, writeProtect: readOnly, wake: false)
        if case .failed = outcome {
            // A kernel without write-protected continue, or a failure to report: `resolveOnce`
            // on a thread deals with both.
            handoff = .error
            return false
        }
        if outcome == .alreadyMapped && fault.write && tracking {
            region.engine.stats.count(.writeProtectFaults)
            outcome = uffd.writeProtect(address, length: SwapPage.size, false, wake: false)
            if case .failed = outcome {
                handoff = .error
                return false
            }
        }
        window.markInstalled(fault.page)
        window.zapFromEngineInSignal(fault.page)
        region.engine.stats.count(minor ? .minorFaults : .majorFaults)
        return true
    }

    /// Sleeps until the readahead handed off for this region's faults has run, so that a
    /// caller that wants a quiet space (a test comparing the engine's state with a model) sees
    /// none still to come.
    func waitForReadahead() {
        // Polls: a wait for callers that want a quiet space, never on a fault's path, so the
        // workers that count down pay no wake-up for it.
        while readaheadsInFlight.load(ordering: .acquiring) > 0 { usleep(50) }
    }

    func noteError(_ error: SwapError) {
        lastError.withLock { $0 = error }
    }
}
