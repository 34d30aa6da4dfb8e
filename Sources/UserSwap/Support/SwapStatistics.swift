import CUserSwap
import Synchronization

/// Event counters of a space (the `pswpin`/`pswpout` family of `/proc/vmstat`). Relaxed atomics:
/// each counter is exact once the counted operations have finished; no counter orders memory.
public final class SwapStatistics: Sendable {
    /// What is counted; read one with `statistics[.swapIns]`.
    public enum Counter: Int, CaseIterable, Sendable {
        /// Pages brought back from a device (reads completed).
        case swapIns
        /// Pages written to a device.
        case swapOuts
        /// Read calls to a backend.
        case deviceReads
        /// Write calls to a backend.
        case deviceWrites
        /// Swap-ins satisfied from the swap cache without I/O.
        case cacheHits
        /// A swap-in found the slot taken by another swap-in (`swap_cache_add_folio`'s -EEXIST).
        case raceLosses
        /// A swap-in found its entry freed (`swap_cache_add_folio`'s -ENOENT).
        case noEntries
        /// Legacy protocol: sleeps of a racer that found the has-cache bit but no folio.
        case legacySleeps
        /// Large swap-ins that met a conflicting slot and fell back to order 0.
        case largeFallbacks
        /// Reads from a device that failed (the caller got the error).
        case readErrors
        /// Writes to a device that failed (the page stayed in memory, dirty).
        case writeErrors
        /// Folios removed from the swap cache with a shadow left behind.
        case evictions
        /// Clean folios dropped without a write because their slot still held the data.
        case cleanDrops
        /// Reclaim attempts that failed because someone else held a reference.
        case busyFolios
        /// Pages first touched (zero-filled, no I/O).
        case zeroFills
        /// Swap-ins that replaced a shadow (kernel: `workingset_refault_anon`).
        case refaults
        /// Refaults activated at once because their distance was short.
        case activations
        /// Refaults of pages that were in the workingset when evicted.
        case restores
        /// Folios reclaim looked at.
        case reclaimScanned
        /// Folios reclaim freed.
        case reclaimFreed
        /// Folios reclaim found referenced and activated (second chance).
        case reclaimActivated
        /// Folios reclaim passed over because another thread held their lock.
        case reclaimLocked
        /// Folios reclaim kept because no swap slot could be had for them (every device full
        /// or being swapped off, or their group at its swap limit).
        case reclaimNoSlot
        /// Times a thread reclaimed directly because no frame was free.
        case directReclaims
        /// Wake-ups of the background reclaimer.
        case kswapdWakeups
        /// Times an async pin found no free frame and suspended until the background reclaimer
        /// freed some, instead of reclaiming on its thread (`FrameWaitQueue`).
        case allocationWaits
        /// Large folios split into pages because no run of slots was free.
        case splitFallbacks
        /// Pages read ahead of a fault (or by `prefetch`).
        case readaheadPages
        /// Pages read ahead that a fault then used (counted at the first use of their folio; a
        /// large folio read ahead counts all its pages).
        case readaheadHits
        /// Pages read ahead and dropped again without being used.
        case readaheadWasted
        /// Readahead windows submitted without waiting for them (the next window, on the use of
        /// a window's trigger page, or the rest of a fault's window); a completer finishes them.
        case readaheadAsyncWindows
        /// Transparent regions: faults on pages the engine had in memory (resolved by mapping
        /// them, no I/O), faults on pages it had to bring in or zero-fill, first writes to pages
        /// mapped read-only for dirty tracking, and faults that failed for good (the faulting
        /// thread got SIGBUS).
        case minorFaults
        /// Transparent regions: faults that read a page from a device or zero-filled it.
        case majorFaults
        /// Transparent regions: first writes to pages mapped read-only for dirty tracking.
        case writeProtectFaults
        /// Transparent regions: attempts to resolve a fault again after a transient error (no
        /// free frame yet, a device error that may pass).
        case faultRetries
        /// Transparent regions: faults that failed for good (the faulting thread got SIGBUS).
        case faultErrors
        /// Transparent regions: fault messages a handler thread answered with a wake alone, since
        /// their page was discarded after they were read: their thread had gone on meanwhile
        /// (see `TransparentFaultResolver.resolveOnce`).
        case lateFaults
        /// Transparent regions: faults whose wait was timed (every fault a handler thread read or
        /// a faulting thread's SIGBUS handler took; `faultWaitTimes` says how).
        case faultWaits
        /// Transparent regions: the wall time program threads waited in those faults, in
        /// nanoseconds.
        case faultWaitNanoseconds
        /// Transparent regions served on the faulting thread: faults its SIGBUS handler took,
        /// resolved there or handed to a thread of the engine (`SignalFaultHandoff`). The
        /// `handoffs…` counters below say how many went to a thread, and why; each such
        /// fault costs its thread a sleep and a worker a wake-up.
        case signalFaults
        /// Faults handed over because no frame was free and the handler may not reclaim.
        case handoffsNoFrame
        /// Faults handed over because the region's memory group was at its limit.
        case handoffsGroupLimit
        /// Faults handed over because the page's device cannot be read in a signal handler
        /// (a compressed or remote tier, a test device).
        case handoffsDevice
        /// Faults handed over after a read or a map that failed (the thread retries and reports).
        case handoffsError
        /// Faults handed over for anything else: a page that kept changing under the handler,
        /// a large folio in the swap cache, a legacy swap-in protocol.
        case handoffsOther
        /// Readahead windows a handler decided on and handed to a thread (nobody waits for them).
        case handoffsReadahead
        /// Hand-overs, of faults or readahead, that woke a sleeping worker.
        case handoffWakeups
        /// The wall time faulting threads waited for the workers that took their faults over,
        /// in nanoseconds (part of `faultWaitNanoseconds`).
        case handoffWaitNanoseconds
        /// Transparent pages unmapped from the application by reclaim to see whether they are
        /// used (the next touch is a minor fault).
        case deactivations
        /// Transparent pages reclaim found mapped and left mapped, their use counts high enough
        /// that their use need not be checked again yet (`Reclaimer.trackedUseCount`): no unmap,
        /// no minor fault.
        case trackingSkips
        /// Read requests submitted to an I/O engine.
        case ioReads
        /// Write requests submitted to an I/O engine.
        case ioWrites
        /// Hand-offs of requests to an I/O engine's driver: one `io_uring_enter`, or one push
        /// onto the thread pool's queues. A batch of reads (`Region.prefetch(pages:)`, a
        /// readahead window) is one; a request the caller transferred itself is none.
        case ioSubmissions
        /// Writes that waited in an engine's queue because `maxWritesInFlight` were running.
        case ioWritesThrottled
        /// Requests the caller transferred itself because every request slot was in use.
        case ioInline
        /// Slots that only the swap cache held, freed for an allocation that found none free
        /// (kernel: `__try_to_reclaim_swap` from the allocator).
        case slotReclaims
        /// Slots that only the swap cache held, freed by the background slot reclaimer while
        /// swap was over half full (kernel: `swap_reclaim_work`).
        case backgroundSlotReclaims
        /// Passes of the background slot reclaimer over a device's full clusters.
        case slotReclaimPasses
        /// Folios whose slots only the swap cache held that a background pass found busy (locked
        /// or under writeback) and came back to once they were let go.
        case slotReclaimBusy
    }

    private let counters = _UnsafeAtomicArray<UInt64>(count: Counter.allCases.count, initialValue: 0)
    /// Faults per wait bucket (`FaultWaitTimes.bucket(of:)`).
    private let faultWaitBuckets = _UnsafeAtomicArray<UInt64>(count: FaultWaitTimes.bucketCount, initialValue: 0)
    private let engines = Mutex<[IOEngineInfo]>([], rank: .registry)

    init() {}

    @inline(__always)
    func count(_ c: Counter, _ n: Int = 1) {
        counters[c.rawValue].pointee.wrappingAdd(UInt64(n), ordering: .relaxed)  // Relaxed: a statistic
    }

    /// Counts a fault whose wait began at `start` (`cus_monotonic_ns` time) and ends now, when
    /// its thread has been woken. Allocates nothing and takes no lock: the SIGBUS handler of a
    /// region served on its faulting thread calls it.
    @inline(__always)
    func recordFaultWait(since start: UInt64) {
        let now = cus_monotonic_ns()
        let waited = now > start ? now - start : 0
        count(.faultWaits)
        counters[Counter.faultWaitNanoseconds.rawValue].pointee.wrappingAdd(waited, ordering: .relaxed)  // Relaxed: a statistic
        faultWaitBuckets[FaultWaitTimes.bucket(of: waited)].pointee.wrappingAdd(1, ordering: .relaxed)  // Relaxed: a statistic
    }

    /// How long program threads have waited in the faults of transparent regions so far.
    public var faultWaitTimes: FaultWaitTimes {
        FaultWaitTimes(
            count: self[.faultWaits], nanoseconds: self[.faultWaitNanoseconds],
            // Relaxed: a statistic; a fault counted meanwhile may be in the count but not a bucket yet
            buckets: (0..<FaultWaitTimes.bucketCount).map { Int(faultWaitBuckets[$0].pointee.load(ordering: .relaxed)) })
    }

    /// The count of `c` so far.
    public subscript(_ c: Counter) -> Int { Int(counters[c.rawValue].pointee.load(ordering: .relaxed)) }  // Relaxed: a statistic

    /// The I/O engine of each device added to the space, in the order they were added: which
    /// engine and why (`io_uring`, or the thread pool with the error that ruled io_uring out).
    public var ioEngines: [IOEngineInfo] { engines.withLock { $0 } }

    /// The engine of the first device, for reports.
    public var ioEngine: IOEngineInfo? { ioEngines.first }

    func noteEngine(_ info: IOEngineInfo) { engines.withLock { $0.append(info) } }

    /// Every counter by name.
    public var snapshot: [String: Int] {
        Dictionary(uniqueKeysWithValues: Counter.allCases.map { ("\($0)", self[$0]) })
    }
}
