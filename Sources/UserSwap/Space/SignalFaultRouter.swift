import CUserSwap
import Glibc
import Synchronization

/// Routes the faults of transparent regions served on the faulting thread
/// (`TransparentRegion.FaultService.faultingThread`) to their resolvers.
///
/// Such a region's userfaultfd is opened with `UFFD_FEATURE_SIGBUS`: instead of queueing a
/// message and putting the thread to sleep until a handler thread resolves the fault, the
/// kernel raises SIGBUS on the faulting thread. The process's SIGBUS handler (C shim,
/// `cus_sigbus_install`) calls `resolve(address:write:)`, which finds the region by address,
/// resolves the fault there — the same pin and continue as a handler thread — and returns; the
/// access is then re-executed. A major fault thus costs the thread its own read, as in the
/// kernel, not three thread switches (fault → handler, read, handler → thread).
///
/// The table is fixed and read with atomics only, since the reader runs in a signal handler.
/// A slot counts the handlers inside it; removing a region sleeps on that count (a futex, which
/// a handler may wake: `futex(2)` is a system call, safe in a signal handler) until none is.
///
/// The handler may have interrupted its thread anywhere, inside malloc or holding a stream's
/// lock: it resolves what it can without allocating or taking a lock that code outside the
/// engine may hold (`Region.pinInSignal`), and hands the rest to the threads of `handoff`.
final class SignalFaultRouter: Sendable {
    static let shared = SignalFaultRouter()
    static let capacity = 1024

    /// The application view's first and past-the-end address; start 0 for a free slot.
    private let starts: _UnsafeAtomicArray<UInt>
    private let ends: _UnsafeAtomicArray<UInt>
    /// The resolver, retained while the slot holds it (`Unmanaged` bits).
    private let resolvers: _UnsafeAtomicArray<UInt>
    /// The handlers (and hand-over workers) inside each slot; `remove` sleeps on it.
    private let users: _UnsafeAtomicArray<UInt32>
    /// Slots at and above it are free: lookups stop there.
    private let inUse = Atomic<Int>(0)
    private let changing = Mutex<Void>((), rank: .signalRouter)
    /// The threads that take over what a handler cannot do.
    private let handoff = SignalFaultHandoff(threads: 2)

    private init() {
        starts = _UnsafeAtomicArray(count: Self.capacity, initialValue: 0)
        ends = _UnsafeAtomicArray(count: Self.capacity, initialValue: 0)
        resolvers = _UnsafeAtomicArray(count: Self.capacity, initialValue: 0)
        users = _UnsafeAtomicArray(count: Self.capacity, initialValue: 0)
        cus_sigbus_install { address, write in
            SignalFaultRouter.shared.resolve(address: address, write: write) ? 1 : 0
        }
    }

    /// Routes the faults on `resolver`'s application view to it; returns the slot for `remove`.
    func add(_ resolver: TransparentFaultResolver) throws(SwapError) -> Int {
        let range = resolver.appRange
        let start = UInt(bitPattern: range.baseAddress), end = start + UInt(range.count)
        let slot = changing.withLock { (_: inout Void) -> Int? in
            guard
                let free = (0..<Self.capacity).first(where: {
                    starts[$0].pointee.load(ordering: .sequentiallyConsistent) == 0
                        && resolvers[$0].pointee.load(ordering: .sequentiallyConsistent) == 0
                })
            else { return nil }
            resolvers[free].pointee.store(UInt(bitPattern: Unmanaged.passRetained(resolver).toOpaque()), ordering: .sequentiallyConsistent)
            ends[free].pointee.store(end, ordering: .sequentiallyConsistent)
            starts[free].pointee.store(start, ordering: .sequentiallyConsistent)
            // Relaxed: written only under `changing`, which we hold
            if free >= inUse.load(ordering: .relaxed) { inUse.store(free + 1, ordering: .sequentiallyConsistent) }
            return free
        }
        guard let slot else {
            throw SwapError(.outOfMemory, "at most \(Self.capacity) transparent regions served on their faulting threads exist at once")
        }
        return slot
    }

    /// Stops routing to the slot's resolver, waits for the handlers inside it, and drops it.
    /// After this a fault on the range is not ours (the region must be unregistered first or
    /// not touched again).
    func remove(_ slot: Int) {
        starts[slot].pointee.store(0, ordering: .sequentiallyConsistent)
        // Sleep until the last user leaves: it sees the start cleared and wakes us (`leave`).
        // Sequentially consistent, with `leave`: either our look sees its count gone, or its
        // look sees our store. A count that moved before we sleep fails the wait at once.
        while true {
            let count = users[slot].pointee.load(ordering: .sequentiallyConsistent)
            if count == 0 { break }
            _ = cus_futex_wait(rawUsers(slot), count, -1)
        }
        changing.withLock { _ in
            let bits = resolvers[slot].pointee.exchange(0, ordering: .sequentiallyConsistent)
            if let opaque = UnsafeRawPointer(bitPattern: bits) {
                Unmanaged<TransparentFaultResolver>.fromOpaque(opaque).release()
            }
        }
    }

    /// From the SIGBUS handler: resolves a fault at `address` if a region of ours holds it.
    /// `write` is 1 for a store, 0 for a load, -1 when unknown. False when the fault is not ours
    /// or cannot be resolved (the handler then lets the signal take its course).
    /// The thread's wait in the fault is timed from here to the return.
    func resolve(address: UnsafeMutableRawPointer?, write: Int32) -> Bool {
        let arrived = cus_monotonic_ns()
        let a = UInt(bitPattern: address)
        guard a != 0 else { return false }
        let count = inUse.load(ordering: .sequentiallyConsistent)
        for slot in 0..<count {
            let start = starts[slot].pointee.load(ordering: .acquiring)
            guard start != 0, a >= start, a < ends[slot].pointee.load(ordering: .acquiring) else { continue }
            enter(slot)
            defer { leave(slot) }
            guard starts[slot].pointee.load(ordering: .sequentiallyConsistent) == start,
                let opaque = UnsafeRawPointer(bitPattern: resolvers[slot].pointee.load(ordering: .sequentiallyConsistent))
            else { return false }
            let resolver = Unmanaged<TransparentFaultResolver>.fromOpaque(opaque).takeUnretainedValue()
            let page = Int((a - start) >> UInt(SwapPage.shift))
            // A store maps the page writable, or lifts the write protection of a page mapped
            // already (`resolveOnce`). Where the architecture does not say, a fault on a page
            // the view maps can only be a store.
            let store = write == 1 || (write < 0 && resolver.window.isInstalled(page))
            let fault = TransparentFaultResolver.Fault(page: page, write: store, protect: false)
            let bits = UInt(bitPattern: opaque)
            var readahead = Region.ReadaheadPlan.none
            var reason = SignalFaultHandoff.Reason.other
            let stats = resolver.region.engine.stats
            stats.count(.signalFaults)
            let resolved: Bool
            if resolver.resolveInSignal(fault, readahead: &readahead, handoff: &reason) {
                if readahead != .none {
                    // Relaxed: only counts; the thread that waits for it is this one, later
                    resolver.readaheadsInFlight.add(1, ordering: .relaxed)
                    if !handoff.readAhead(readahead, slot: slot, resolver: bits, stats: stats) {
                        resolver.readaheadsInFlight.subtract(1, ordering: .relaxed)  // Relaxed: as above
                    }
                }
                resolved = true
            } else {
                stats.count(reason.counter)
                let handedOver = cus_monotonic_ns()
                resolved = handoff.resolve(fault, slot: slot, resolver: bits, stats: stats)
                let now = cus_monotonic_ns()
                stats.count(.handoffWaitNanoseconds, now > handedOver ? Int(now - handedOver) : 0)
            }
            stats.recordFaultWait(since: arrived)
            return resolved
        }
        return false
    }

    /// Runs `body` with the resolver in `slot` if it is still the one whose `Unmanaged` bits
    /// are `bits`, counted as a user of the slot meanwhile (a removal waits for it).
    func withResolver(slot: Int, bits: UInt, _ body: (TransparentFaultResolver) -> Void) {
        enter(slot)
        defer { leave(slot) }
        guard starts[slot].pointee.load(ordering: .sequentiallyConsistent) != 0,
            resolvers[slot].pointee.load(ordering: .sequentiallyConsistent) == bits,
            let opaque = UnsafeRawPointer(bitPattern: bits)
        else { return }
        body(Unmanaged<TransparentFaultResolver>.fromOpaque(opaque).takeUnretainedValue())
    }

    /// Counts a user into `slot`, before it looks at the slot's start.
    @inline(__always)
    private func enter(_ slot: Int) {
        users[slot].pointee.add(1, ordering: .sequentiallyConsistent)
    }

    /// Counts a user out of `slot`; the last one out of a slot being removed wakes `remove`.
    /// Allocates nothing and takes no lock (a signal handler calls it).
    @inline(__always)
    private func leave(_ slot: Int) {
        guard users[slot].pointee.subtract(1, ordering: .sequentiallyConsistent).newValue == 0,
            starts[slot].pointee.load(ordering: .sequentiallyConsistent) == 0
        else { return }
        _ = cus_futex_wake(rawUsers(slot), Int32.max)
    }

    private func rawUsers(_ slot: Int) -> UnsafeMutablePointer<UInt32> {
        // Sound: Atomic<UInt32> has a UInt32's layout; the kernel only compares and sleeps.
        UnsafeMutableRawPointer(users[slot]).assumingMemoryBound(to: UInt32.self)
    }
}
