import CUserSwap
import Dispatch
import Foundation
import Synchronization

/// The threads that serve a transparent region's userfaultfd (`TransparentRegion.FaultService
/// .handlerThreads`). Each waits on its own epoll instance that watches the descriptor
/// exclusively, so a reported fault wakes one idle thread, which reads it and resolves it itself
/// — with no hand-over between a reader and a worker (a thread wake-up, ~10 µs on a major fault,
/// measured). Faults of different pages proceed in parallel on different threads; faults of the
/// same page meet in the swap cache, as pins do.
final class TransparentFaultHandler: Sendable {
    private let resolver: TransparentFaultResolver
    private let shutdown: FileDescriptor
    private let stopping = Atomic<Bool>(false)
    private let exited = DispatchSemaphore(value: 0)
    private let threadCount: Int

    init(resolver: TransparentFaultResolver, threads: Int) throws(SwapError) {
        self.resolver = resolver
        let efd = cus_eventfd()
        guard efd >= 0 else {
            throw SwapError(.outOfMemory, "cannot create the shutdown eventfd of a fault handler", errno: Errno(rawValue: -efd))
        }
        shutdown = FileDescriptor(adopting: efd)
        threadCount = max(1, threads)
        var instances: [Int32] = []
        for _ in 0..<threadCount {
            let epfd = cus_epoll_pair(resolver.uffd.fd, efd)
            guard epfd >= 0 else {
                for fd in instances { Syscalls.close(fd) }
                throw SwapError(.outOfMemory, "cannot create the epoll instance of a fault handler", errno: Errno(rawValue: -epfd))
            }
            instances.append(epfd)
        }
        for (i, epfd) in instances.enumerated() {
            // Unowned, the exit reported after `serve` returns: `stop()` waits for it, and a
            // thread still holding the handler (its region, the engine) afterwards would
            // release them later, on its own thread.
            let exited = self.exited
            let thread = Thread { [unowned self] in
                self.serve(epoll: epfd)
                exited.signal()
            }
            thread.name = "userswap-fault-\(i)"
            thread.start()
        }
    }

    /// Resolves the faults already reported (and any that come while their threads finish),
    /// then stops every thread and waits for them.
    func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(shutdown.rawValue, $0.baseAddress, 8) }
        for _ in 0..<threadCount { exited.wait() }
    }

    private func serve(epoll epfd: Int32) {
        let fault = UnsafeMutablePointer<cus_uffd_fault>.allocate(capacity: 1)
        defer {
            fault.deallocate()
            Syscalls.close(epfd)
        }
        // The zaps of the engine's view after installs (`FrameWindow.zapFromEngine`), gathered
        // while faults keep coming and done before this thread sleeps: one call for many.
        var zaps = UnmapBatch()
        defer { zaps.flush() }
        var shuttingDown = false
        while true {
            // Once asked to stop, keep serving until the descriptor has been quiet for a grace
            // period: a thread woken from its fault must still run to finish its access (and
            // may fault again); only then is the memory taken away.
            let ready = cus_epoll_wait_pair(epfd, resolver.uffd.fd, !zaps.isEmpty ? 0 : shuttingDown ? 20 : -1)
            if ready == 0 && !zaps.isEmpty {
                // Nothing pending: zap before sleeping.
                zaps.flush()
                continue
            }
            if ready < 0 {
                if ready == -EINTR { continue }
                resolver.noteError(SwapError(.ioError, "waiting on the userfaultfd failed", errno: Errno(rawValue: -ready)))
                return
            }
            if ready & 2 != 0 && !shuttingDown {
                shuttingDown = true
                _ = cus_epoll_remove(epfd, shutdown.rawValue)
            }
            if shuttingDown && ready == 0 { return }
            if ready & 1 != 0 { serveOne(fault, zaps: &zaps) }
        }
    }

    /// Reads one fault (others stay for the other threads) and resolves it; a fault that cannot
    /// be resolved sends SIGBUS to its thread, which is then woken to take it. The faulting
    /// thread's wait is timed from here, the fault's arrival, to its wake.
    private func serveOne(_ buffer: UnsafeMutablePointer<cus_uffd_fault>, zaps: inout UnmapBatch) {
        let arrived = cus_monotonic_ns()
        // Before the read: a discard after this look may be newer than the message.
        let discardClock = resolver.window.readDiscardClock()
        let n: Int
        do {
            n = try resolver.uffd.readFaults(into: buffer, max: 1)
        } catch {
            resolver.noteError(SwapError(error))
            return
        }
        guard n == 1 else { return }
        #if DEBUG
        resolver.messageRead.run()
        #endif
        let raw = buffer.pointee
        let window = resolver.window
        let offset = Int(raw.address) - Int(bitPattern: window.appView)
        guard offset >= 0, offset >> SwapPage.shift < window.pageCount else { return }
        let page = offset >> SwapPage.shift
        let fault = TransparentFaultResolver.Fault(
            page: page, write: raw.flags & UserFaultFD.flagWrite != 0,
            protect: raw.flags & UserFaultFD.flagWriteProtect != 0, discardClock: discardClock)
        let stats = resolver.region.engine.stats
        guard !resolver.resolve(fault, wake: true, zaps: &zaps) else {
            stats.recordFaultWait(since: arrived)
            return
        }
        if raw.thread != 0 { _ = cus_tgkill(raw.thread, SIGBUS) }
        resolver.uffd.wake(window.appAddress(page), length: SwapPage.size)
        stats.recordFaultWait(since: arrived)
    }
}
