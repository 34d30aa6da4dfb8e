import CUserSwap
import Foundation
import Synchronization

/// The work a SIGBUS handler cannot do itself, handed to threads of the engine: the faults that
/// need reclaim, an error, or a device whose reads are not signal-safe (the handler waits for
/// their resolution), and the readahead a fault decided on (nobody waits for it). See
/// `Region.pinInSignal` for what stays in the handler.
///
/// The hand-over allocates nothing and takes no lock: a fixed table of requests, each claimed
/// by a compare-and-exchange on its state, and futexes to sleep on (`futex(2)` is a system
/// call, safe in a signal handler). `threads` workers scan the table when woken.
///
/// A request names its resolver's router slot and address (`SignalFaultRouter`), and the
/// worker enters the slot as a handler does (its user count), so a region being removed waits
/// for the work on it, and work queued for a region removed meanwhile is dropped.
final class SignalFaultHandoff {
    /// Requests at most in the table at once; beyond it, readahead is dropped and a fault
    /// waits for a free request (the workers free them as they go).
    static let capacity = 256

    /// A request's state: free, being filled by its submitter, ready for a worker, taken.
    private enum State: UInt32 {
        case free = 0, filling, ready, taken
    }

    /// Why a fault went from a SIGBUS handler to a thread of the engine, each counted in the
    /// space's statistics (`handoffsNoFrame` …).
    enum Reason: Sendable, Equatable {
        /// No frame free, and the handler may not reclaim.
        case noFrame
        /// The region's memory group at its limit (reclaiming it is a thread's work).
        case groupLimit
        /// The page's device cannot be read in a signal handler.
        case device
        /// A read or a map failed: a thread retries, and reports the error if it stays.
        case error
        /// A page that kept changing, a large folio in the swap cache, a legacy protocol.
        case other

        var counter: SwapStatistics.Counter {
            switch self {
            case .noFrame: .handoffsNoFrame
            case .groupLimit: .handoffsGroupLimit
            case .device: .handoffsDevice
            case .error: .handoffsError
            case .other: .handoffsOther
            }
        }
    }

    /// What a request asks.
    enum Work: Sendable {
        /// Resolve the fault as a handler thread would; the submitter waits.
        case resolve(TransparentFaultResolver.Fault)
        /// Read ahead, nobody waits.
        case readahead(Region.ReadaheadPlan)
    }

    private let states: _UnsafeAtomicArray<UInt32>
    /// The router slot and resolver (`Unmanaged` bits, not retained) of each request.
    private let slots: _UnsafeAtomicArray<Int>
    private let resolvers: _UnsafeAtomicArray<UInt>
    /// Each request's work, written by its submitter while `.filling`, read by a worker while
    /// `.taken` (the state's release and acquire order them).
    private let works: UnsafeMutablePointer<Work?>
    /// For a fault: 0 while unresolved, then 1 resolved or 2 not (the submitter sleeps on it).
    private let results: _UnsafeAtomicArray<UInt32>
    /// Bumped for every request made ready; idle workers sleep on it.
    private let work: _UnsafeAtomicArray<UInt32>
    private let sleepers = Atomic<Int>(0)

    /// Starts `threads` workers.
    init(threads: Int) {
        states = _UnsafeAtomicArray(count: Self.capacity, initialValue: State.free.rawValue)
        slots = _UnsafeAtomicArray(count: Self.capacity, initialValue: 0)
        resolvers = _UnsafeAtomicArray(count: Self.capacity, initialValue: 0)
        results = _UnsafeAtomicArray(count: Self.capacity, initialValue: 0)
        work = _UnsafeAtomicArray(count: 1, initialValue: 0)
        works = .allocate(capacity: Self.capacity)
        works.initialize(repeating: nil, count: Self.capacity)
        for i in 0..<threads {
            // The router lives as long as the process: so do its workers.
            let thread = Thread { [self] in serve() }
            thread.name = "userswap-signal-\(i)"
            thread.start()
        }
    }

    /// From a SIGBUS handler: has a worker resolve `fault` with the resolver in router slot
    /// `slot` (whose user count the caller holds), and waits. Returns whether it was resolved;
    /// `stats` counts a worker woken for it (`handoffWakeups`).
    func resolve(_ fault: TransparentFaultResolver.Fault, slot: Int, resolver: UInt, stats: SwapStatistics) -> Bool {
        var request: Int?
        while request == nil {
            request = submit(.resolve(fault), slot: slot, resolver: resolver, stats: stats)
            // Every request taken: the workers free them within moments. A yield on purpose: the
            // table fills only with `capacity` hand-overs in flight at once, and a sleep here
            // would cost every request's free a check for sleepers.
            if request == nil { sched_yield() }
        }
        let r = request!
        let word = UnsafeMutableRawPointer(results[r]).assumingMemoryBound(to: UInt32.self)
        while results[r].pointee.load(ordering: .acquiring) == 0 { _ = cus_futex_wait(word, 0, -1) }
        let resolved = results[r].pointee.load(ordering: .acquiring) == 1
        states[r].pointee.store(State.free.rawValue, ordering: .releasing)
        return resolved
    }

    /// From a SIGBUS handler: has a worker read ahead for the resolver in router slot `slot`;
    /// does not wait. Dropped when every request is taken (readahead is best effort): then
    /// false. The worker counts it off the resolver's `readaheadsInFlight` once it has run.
    /// `stats` counts the hand-over (`handoffsReadahead`) and a worker woken for it.
    func readAhead(_ readahead: Region.ReadaheadPlan, slot: Int, resolver: UInt, stats: SwapStatistics) -> Bool {
        guard submit(.readahead(readahead), slot: slot, resolver: resolver, stats: stats) != nil else { return false }
        stats.count(.handoffsReadahead)
        return true
    }

    /// Claims a free request, fills it and wakes a worker if one sleeps (counted in `stats`);
    /// nil when none is free.
    private func submit(_ w: Work, slot: Int, resolver: UInt, stats: SwapStatistics) -> Int? {
        for r in 0..<Self.capacity {
            guard
                states[r].pointee.compareExchange(
                    expected: State.free.rawValue, desired: State.filling.rawValue, ordering: .acquiring
                ).exchanged
            else { continue }
            slots[r].pointee.store(slot, ordering: .relaxed)  // Relaxed: published by the state's release below
            resolvers[r].pointee.store(resolver, ordering: .relaxed)  // Relaxed: as above
            results[r].pointee.store(0, ordering: .relaxed)  // Relaxed: as above
            // Sound: the request is ours while `.filling`; the payload is a few words, no
            // reference counted (a `Fault` or a readahead range).
            (works + r).pointee = w
            states[r].pointee.store(State.ready.rawValue, ordering: .releasing)
            work[0].pointee.wrappingAdd(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 && cus_futex_wake(rawWork, 1) > 0 {
                stats.count(.handoffWakeups)
            }
            return r
        }
        return nil
    }

    /// A worker: takes ready requests until none is left, then sleeps until the next.
    private func serve() {
        while true {
            let seen = work[0].pointee.load(ordering: .sequentiallyConsistent)
            var found = false
            for r in 0..<Self.capacity {
                guard
                    states[r].pointee.compareExchange(
                        expected: State.ready.rawValue, desired: State.taken.rawValue, ordering: .acquiring
                    ).exchanged
                else { continue }
                found = true
                run(r)
            }
            if found { continue }
            sleepers.add(1, ordering: .sequentiallyConsistent)
            if work[0].pointee.load(ordering: .sequentiallyConsistent) == seen { _ = cus_futex_wait(rawWork, seen, -1) }
            sleepers.subtract(1, ordering: .sequentiallyConsistent)
        }
    }

    /// Runs request `r` (taken by this worker) and completes it.
    private func run(_ r: Int) {
        let slot = slots[r].pointee.load(ordering: .relaxed)  // Relaxed: the state's acquire ordered it
        let resolver = resolvers[r].pointee.load(ordering: .relaxed)  // Relaxed: as above
        guard let w = (works + r).pointee else { trap("signal hand-over request \(r) taken without work") }
        (works + r).pointee = nil
        switch w {
        case .resolve(let fault):
            // The submitter holds the slot's user count while it waits: the resolver is alive.
            let target = Unmanaged<TransparentFaultResolver>.fromOpaque(UnsafeRawPointer(bitPattern: resolver)!).takeUnretainedValue()
            let resolved = target.resolve(fault, wake: false)
            results[r].pointee.store(resolved ? 1 : 2, ordering: .releasing)
            _ = cus_futex_wake(UnsafeMutableRawPointer(results[r]).assumingMemoryBound(to: UInt32.self), 1)
        case .readahead(let readahead):
            states[r].pointee.store(State.free.rawValue, ordering: .releasing)
            // A region removed meanwhile is not counted down: nobody waits on it any more.
            SignalFaultRouter.shared.withResolver(slot: slot, bits: resolver) {
                _ = try? $0.region.readAhead(.planned(readahead))
                $0.readaheadsInFlight.subtract(1, ordering: .releasing)
            }
        }
    }

    private var rawWork: UnsafeMutablePointer<UInt32> {
        // Sound: Atomic<UInt32> has a UInt32's layout; the kernel only compares and sleeps.
        UnsafeMutableRawPointer(work[0]).assumingMemoryBound(to: UInt32.self)
    }
}

// `works` entries are written only by the request's owner of the moment (its submitter while
// `.filling`, its worker while `.taken`), ordered by the state's release and acquire; the rest
// are atomics.
extension SignalFaultHandoff: @unchecked Sendable {}
