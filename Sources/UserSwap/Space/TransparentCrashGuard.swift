import CUserSwap
import Synchronization

/// Keeps a crash of the process from hanging on its transparent regions.
///
/// A thread that touches a page of a transparent region that is not mapped sleeps in the
/// kernel (`handle_userfault`) until a handler thread of the region resolves the fault. When
/// the process receives a fatal signal, whatever runs next may read that memory: Swift's
/// backtracer pauses every thread (the handler threads too) and reads the stacks and the
/// memory they point to; a debugger reads it; a handler the application installed may. A read
/// of a page no thread is left to serve would sleep forever, and the process with it.
///
/// So once a process has a transparent region, its handlers of SIGSEGV, SIGBUS (one that no
/// fault of a region served on its faulting thread explains), SIGABRT, SIGILL, SIGFPE and
/// SIGTRAP first unregister every transparent region's ranges from their userfaultfds, then pass
/// the signal on to the handler found before them (Swift's backtracer, when it is enabled), then
/// take the default action (`cus_crash_install`): with its regions unregistered the process
/// must not go on, even where that handler returns to let a fault come again. Unregistering wakes the threads asleep in a
/// fault on the range; from then on the application's view is a plain shared mapping of the
/// region's memfd: a page in memory reads as its bytes, a page swapped out or never touched
/// as zeros (the memfd has a hole there). That is what a crash report or a core dump shows.
///
/// The table is fixed and read with atomics only, since the reader is a signal handler that may
/// have interrupted a thread anywhere (inside malloc, holding any lock): it allocates nothing,
/// takes no lock and makes one system call per range (`ioctl(UFFDIO_UNREGISTER)`,
/// async-signal-safe).
final class TransparentCrashGuard: Sendable {
    static let shared = TransparentCrashGuard()
    static let capacity = 4096

    /// The userfaultfd of each slot's region; -1 for a free slot.
    private let descriptors: _UnsafeAtomicArray<Int>
    /// The application's view and the engine's view, and their length in bytes.
    private let appStarts: _UnsafeAtomicArray<UInt>
    private let engineStarts: _UnsafeAtomicArray<UInt>
    private let lengths: _UnsafeAtomicArray<UInt>
    /// Slots at and above it are free: the handler stops there.
    private let inUse = Atomic<Int>(0)
    private let changing = Mutex<Void>((), rank: .crashGuard)

    private init() {
        descriptors = _UnsafeAtomicArray(count: Self.capacity, initialValue: -1)
        appStarts = _UnsafeAtomicArray(count: Self.capacity, initialValue: 0)
        engineStarts = _UnsafeAtomicArray(count: Self.capacity, initialValue: 0)
        lengths = _UnsafeAtomicArray(count: Self.capacity, initialValue: 0)
        cus_crash_install { TransparentCrashGuard.shared.unregisterAll() }
    }

    /// Has the ranges of `resolver`'s region unregistered on a crash; returns the slot for
    /// `remove`, or nil when the table is full (then a crash may hang, as without the guard).
    func add(_ resolver: TransparentFaultResolver) -> Int? {
        let app = resolver.appRange, engine = resolver.engineRange
        return changing.withLock { (_: inout Void) -> Int? in
            guard let free = (0..<Self.capacity).first(where: { descriptors[$0].pointee.load(ordering: .sequentiallyConsistent) < 0 })
            else { return nil }
            appStarts[free].pointee.store(UInt(bitPattern: app.baseAddress), ordering: .sequentiallyConsistent)
            engineStarts[free].pointee.store(UInt(bitPattern: engine.baseAddress), ordering: .sequentiallyConsistent)
            lengths[free].pointee.store(UInt(app.count), ordering: .sequentiallyConsistent)
            // The descriptor last: a handler that sees it sees the ranges.
            descriptors[free].pointee.store(Int(resolver.uffd.fd), ordering: .sequentiallyConsistent)
            // Relaxed: written only under `changing`, which we hold
            if free >= inUse.load(ordering: .relaxed) { inUse.store(free + 1, ordering: .sequentiallyConsistent) }
            return free
        }
    }

    /// Forgets the slot's region, before its ranges are unregistered and its userfaultfd closed.
    func remove(_ slot: Int) {
        changing.withLock { _ in descriptors[slot].pointee.store(-1, ordering: .sequentiallyConsistent) }
    }

    /// From a fatal signal's handler: unregisters every region's ranges. A region being removed
    /// meanwhile may have its descriptor closed already: the ioctl then fails on a closed
    /// descriptor (or on an unrelated one reusing its number: no userfaultfd, or no such range),
    /// harmlessly.
    func unregisterAll() {
        let count = inUse.load(ordering: .sequentiallyConsistent)
        for slot in 0..<count {
            let fd = descriptors[slot].pointee.load(ordering: .sequentiallyConsistent)
            guard fd >= 0 else { continue }
            let length = UInt64(lengths[slot].pointee.load(ordering: .sequentiallyConsistent))
            _ = cus_uffd_unregister(Int32(fd), UInt64(appStarts[slot].pointee.load(ordering: .sequentiallyConsistent)), length)
            _ = cus_uffd_unregister(Int32(fd), UInt64(engineStarts[slot].pointee.load(ordering: .sequentiallyConsistent)), length)
        }
    }
}
