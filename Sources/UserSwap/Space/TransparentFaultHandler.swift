import CUserSwap
import Dispatch
import Foundation
import Synchronization

/// The threads that serve a transparent region's userfaultfd. Each waits on its own epoll
/// instance that watches the descriptor exclusively, so a reported fault wakes one idle thread,
/// which reads it and resolves it itself — with no hand-over between a reader and a worker (a
/// thread wake-up, ~10 µs on a major fault, measured). Faults of different pages proceed in
/// parallel on different threads; faults of the same page meet in the swap cache, as pins do.
///
/// Resolution runs the region's fault path (the pin), then maps the page of the region's memfd
/// into the application's view (a minor-fault "continue": no copy). A page read but not yet
/// written is mapped read-only under uffd write protection when the kernel offers it, so that
/// the first store is seen and the folio marked dirty; without it every page the application
/// maps counts as dirty.
final class TransparentFaultHandler: Sendable {
    let uffd: UserFaultFD
    private let region: Region
    private let window: FrameWindow
    private let shutdown: FileDescriptor
    private let stopping = Atomic<Bool>(false)
    private let exited = DispatchSemaphore(value: 0)
    private let threadCount: Int
    /// Cleared for good if the kernel refuses a write-protected continue.
    private let writeProtectUsable: Atomic<Bool>
    /// The last fault that could not be resolved (its thread got SIGBUS).
    let lastError = Mutex<SwapError?>(nil)

    struct PageFault: Sendable {
        let page: Int
        let flags: UInt64
        let thread: Int32
    }

    init(region: Region, window: FrameWindow, threads: Int) throws(SwapError) {
        self.region = region
        self.window = window
        uffd = try UserFaultFD()
        let efd = cus_eventfd()
        guard efd >= 0 else {
            throw SwapError(.outOfMemory, "cannot create the shutdown eventfd of a fault handler", errno: Errno(rawValue: -efd))
        }
        shutdown = FileDescriptor(adopting: efd)
        writeProtectUsable = Atomic(uffd.supportsWriteProtect)
        var modes: UserFaultFD.Modes = [.missing, .minor]
        if uffd.supportsWriteProtect { modes.insert(.writeProtect) }
        try uffd.register(UnsafeMutableRawBufferPointer(start: window.appView, count: window.pageCount << SwapPage.shift), modes: modes)
        threadCount = max(1, threads)
        var instances: [Int32] = []
        for _ in 0..<threadCount {
            let epfd = cus_epoll_pair(uffd.fd, efd)
            guard epfd >= 0 else {
                for fd in instances { Syscalls.close(fd) }
                throw SwapError(.outOfMemory, "cannot create the epoll instance of a fault handler", errno: Errno(rawValue: -epfd))
            }
            instances.append(epfd)
        }
        for (i, epfd) in instances.enumerated() {
            let thread = Thread { [self] in serve(epoll: epfd) }
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
        uffd.unregister(UnsafeMutableRawBufferPointer(start: window.appView, count: window.pageCount << SwapPage.shift))
    }

    private func serve(epoll epfd: Int32) {
        let fault = UnsafeMutablePointer<cus_uffd_fault>.allocate(capacity: 1)
        defer {
            fault.deallocate()
            Syscalls.close(epfd)
            exited.signal()
        }
        var shuttingDown = false
        while true {
            // Once asked to stop, keep serving until the descriptor has been quiet for a grace
            // period: a thread woken from its fault must still run to finish its access (and
            // may fault again); only then is the memory taken away.
            let ready = cus_epoll_wait_pair(epfd, uffd.fd, shuttingDown ? 20 : -1)
            if ready < 0 {
                if ready == -EINTR { continue }
                noteError(SwapError(.ioError, "waiting on the userfaultfd failed", errno: Errno(rawValue: -ready)))
                return
            }
            if ready & 2 != 0 && !shuttingDown {
                shuttingDown = true
                _ = cus_epoll_remove(epfd, shutdown.rawValue)
            }
            if shuttingDown && ready == 0 { return }
            if ready & 1 != 0 { serveOne(fault) }
        }
    }

    /// Reads one fault (others stay for the other threads) and resolves it.
    private func serveOne(_ buffer: UnsafeMutablePointer<cus_uffd_fault>) {
        let n: Int
        do {
            n = try uffd.readFaults(into: buffer, max: 1)
        } catch {
            noteError(error)
            return
        }
        guard n == 1 else { return }
        let raw = buffer.pointee
        let offset = Int(raw.address) - Int(bitPattern: window.appView)
        guard offset >= 0, offset >> SwapPage.shift < window.pageCount else { return }
        let fault = PageFault(page: offset >> SwapPage.shift, flags: raw.flags, thread: raw.thread)
        region.engine.stats.count(region.pte(fault.page).isPresent ? .minorFaults : .majorFaults)
        handle(fault)
    }

    /// Resolves one fault; retries with a growing pause what may pass (no memory right now, a
    /// device error), and sends SIGBUS to the faulting thread when it does not — the kernel's
    /// answer to memory that cannot be read, rather than a hang or wrong data.
    private func handle(_ fault: PageFault) {
        var attempt = 0
        while true {
            do {
                try resolve(fault)
                return
            } catch {
                attempt += 1
                if attempt < 6 {
                    region.engine.stats.count(.faultRetries)
                    usleep(UInt32(1000 << attempt))
                    continue
                }
                region.engine.stats.count(.faultErrors)
                noteError(error)
                if fault.thread != 0 { _ = cus_tgkill(fault.thread, SIGBUS) }
                uffd.wake(window.appAddress(fault.page), length: SwapPage.size)
                return
            }
        }
    }

    private func resolve(_ fault: PageFault) throws(SwapError) {
        while try !resolveOnce(fault) {}
    }

    /// One attempt; false when it must be repeated (the kernel refused write-protected continue).
    private func resolveOnce(_ fault: PageFault) throws(SwapError) -> Bool {
        let address = window.appAddress(fault.page)
        let protectFault = fault.flags & UserFaultFD.flagWriteProtect != 0
        let write = fault.flags & UserFaultFD.flagWrite != 0 || protectFault
        let tracking = writeProtectUsable.load(ordering: .relaxed)
        let outcome: UserFaultFD.Resolution
        do {
            // The pin keeps the folio in memory while it is mapped; it is dropped before the
            // faulting thread is woken, so the thread never finds its page busy because of us.
            // (A binding rather than a loop over `Pin`: a noncopyable value in a loop body that
            // returns early was not destroyed by Swift 6.3, leaking its reference.)
            let pin = try region.pin(fault.page, for: write || !tracking ? .write : .read, marksReferenced: false)
            if protectFault {
                region.engine.stats.count(.writeProtectFaults)
                // The folio is dirty now (the pin for writing): let the store through.
                outcome = uffd.writeProtect(address, length: SwapPage.size, false, wake: false)
            } else {
                let readOnly = tracking && !region.engine.frames.flags(pin.folio).contains(.dirty)
                let r = uffd.resolveMinor(at: address, length: SwapPage.size, writeProtect: readOnly, wake: false)
                if case .failed(let e) = r, e == .invalidArgument && readOnly {
                    // A kernel without write-protected continue: track dirtiness by mapping
                    // every page writable.
                    writeProtectUsable.store(false, ordering: .relaxed)
                    return false
                }
                outcome = r
            }
            window.markInstalled(fault.page)
            withExtendedLifetime(pin) {}
        }
        // Mapped by another handler, or the mapping changing: the thread just tries again.
        uffd.wake(address, length: SwapPage.size)
        if case .failed(let e) = outcome, !protectFault {
            throw SwapError(.ioError, "cannot map page \(fault.page) of a transparent region", errno: e)
        }
        return true
    }

    private func noteError(_ error: SwapError) {
        lastError.withLock { $0 = error }
    }
}
