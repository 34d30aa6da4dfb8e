import Glibc

/// A device's I/O engine: how page transfers reach its backend. Requests are read or
/// write runs of pages at a device page; each is submitted on its own, many may be in flight,
/// and the submitter waits for its own request only. Reads go first: write-backs are limited to
/// `maxWritesInFlight` at once and the rest wait in the engine's queue, so a fault's read never
/// queues behind a batch of write-backs (in the device or in the engine).
///
/// Three drivers, chosen when the device is added (`IOEngineChoice`): io_uring for a swap file,
/// a thread pool over the backend's calls, or the calling thread itself. The choice and its
/// reason are `info`.
///
/// Request slots are preallocated; when all are in use, the caller transfers by itself (counted
/// as `ioInline`), so a submission never waits for a slot.
package final class IOEngine: Sendable {
    private enum Driver: Sendable {
        case inline
        case pool(IOThreadPool)
        case ring(IOUringDriver)
    }

    public let info: IOEngineInfo
    public let options: IOEngineOptions
    let backend: any SwapBackend
    private let driver: Driver
    private let table: IORequestTable?
    private let stats: SwapStatistics?

    /// An engine for `backend`. With `.automatic`, a `FileBackend` gets io_uring when the kernel
    /// allows it and the thread pool otherwise (the reason says which error ruled io_uring out);
    /// other backends get the calling thread.
    public convenience init(
        backend: any SwapBackend, choice: IOEngineChoice = .automatic,
        options: IOEngineOptions = IOEngineOptions()
    ) {
        self.init(backend: backend, choice: choice, options: options, stats: nil)
    }

    init(backend: any SwapBackend, choice: IOEngineChoice, options: IOEngineOptions, stats: SwapStatistics?) {
        // A space checks its options first (`SwapSpace.init` throws); an engine made on its own
        // traps, as its initializer cannot throw.
        do throws(SwapError) { try options.validate() } catch { trap(error.message) }
        self.backend = backend
        self.options = options
        self.stats = stats
        let file = backend as? FileBackend
        var kind: IOEngineKind
        var reason: String
        switch choice {
        case .synchronous:
            (kind, reason) = (.synchronous, "asked for")
        case .threadPool:
            (kind, reason) = (.threadPool, "asked for")
        case .ioUring:
            (kind, reason) = file == nil ? (.threadPool, "io_uring asked for, but the backend is not a swap file") : (.ioUring, "asked for")
        case .automatic:
            if file != nil {
                (kind, reason) = (.ioUring, "automatic: swap file")
            } else if let tier = backend as? any FileBackedTransfers, tier.isFileBacked {
                // The tier seals in memory, then writes with pwrite: on pool workers, so that a
                // write-back neither blocks reclaim nor waits behind a fault's read.
                (kind, reason) = (.threadPool, "automatic: sealed swap file")
            } else {
                (kind, reason) = (.synchronous, "automatic: the backend is not a swap file")
            }
        }
        var ringDriver: IOUringDriver?
        var table: IORequestTable? = kind == .synchronous ? nil : IORequestTable(count: options.slots)
        if kind == .ioUring, let file, let t = table {
            do {
                ringDriver = try IOUringDriver(file: file, table: t, options: options, stats: stats)
            } catch {
                kind = .threadPool
                reason = "io_uring setup failed: \(error.name) (\(error.message))"
            }
        }
        if kind == .synchronous { table = nil }
        self.table = table
        info = IOEngineInfo(kind: kind, reason: reason)
        if let ringDriver {
            driver = .ring(ringDriver)
        } else if kind == .threadPool, let table {
            driver = .pool(IOThreadPool(backend: backend, table: table, options: options, stats: stats))
        } else {
            driver = .inline
        }
    }

    /// Stops the engine's threads once every request is done: when the device goes, nobody can
    /// submit any more.
    private func stop() {
        switch driver {
        case .inline: break
        case .pool(let p): p.shutdown()
        case .ring: break
        }
    }

    deinit { stop() }

    // MARK: Submission

    /// Submits a read of consecutive device pages from `page` into `buffers` (each whole pages).
    public func submitRead(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, atPage page: Int) -> IOTicket {
        stats?.count(.ioReads)
        return submit(write: false, buffers, page)
    }

    /// Submits a write of `buffers` to consecutive device pages from `page`. The buffers must
    /// stay untouched until the ticket is waited for.
    public func submitWrite(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, atPage page: Int) -> IOTicket {
        stats?.count(.ioWrites)
        // Sound: the same layout; a write only reads through these pointers.
        let mutable =
            UnsafeRawPointer(buffers.baseAddress).map {
                UnsafeBufferPointer(start: $0.assumingMemoryBound(to: UnsafeMutableRawBufferPointer.self), count: buffers.count)
            } ?? UnsafeBufferPointer(start: nil, count: 0)
        return submit(write: true, mutable, page)
    }

    @inline(__always)
    private func submit(write: Bool, _ buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, _ page: Int) -> IOTicket {
        guard let table, !buffers.isEmpty, buffers.count <= IORequestTable.maxVectors, let slot = table.acquire() else {
            return inlineTransfer(write: write, buffers, page)
        }
        table.fill(slot, write: write, page: page, buffers: buffers)
        stats?.count(.ioSubmissions)
        switch driver {
        case .inline: trap("an inline engine has no request table")
        case .pool(let p): p.submit(slot)
        case .ring(let r): r.submit(slot)
        }
        return IOTicket(slot: slot)
    }

    /// Submits several reads at once, each of consecutive device pages from its `page` into its
    /// `buffers`, and returns their tickets in the same order: one hand-off to the driver for
    /// all of them (io_uring: one `io_uring_enter`; the thread pool: one push onto its queue),
    /// where `submitRead` per request is one each. A request that gets no free slot is
    /// transferred by the caller, as in `submitRead`.
    public func submitReads(_ requests: [(buffers: [UnsafeMutableRawBufferPointer], page: Int)]) -> [IOTicket] {
        stats?.count(.ioReads, requests.count)
        var tickets: [IOTicket] = []
        tickets.reserveCapacity(requests.count)
        var slots: [Int] = []
        slots.reserveCapacity(requests.count)
        // Fill every slot first (a request without one is done here, now), then hand them over.
        var inline: [Int] = []
        for (i, r) in requests.enumerated() {
            guard let table, !r.buffers.isEmpty, r.buffers.count <= IORequestTable.maxVectors, let slot = table.acquire() else {
                tickets.append(IOTicket(slot: -1))
                inline.append(i)
                continue
            }
            r.buffers.withUnsafeBufferPointer { table.fill(slot, write: false, page: r.page, buffers: $0) }
            slots.append(slot)
            tickets.append(IOTicket(slot: slot))
        }
        if !slots.isEmpty {
            stats?.count(.ioSubmissions)
            switch driver {
            case .inline: trap("an inline engine has no request table")
            case .pool(let p): p.submit(slots)
            case .ring(let r): r.submit(slots)
            }
        }
        // After the hand-off, so that the device works on the others meanwhile.
        for i in inline {
            tickets[i] = requests[i].buffers.withUnsafeBufferPointer { inlineTransfer(write: false, $0, requests[i].page) }
        }
        return tickets
    }

    /// The transfer done by the caller: the synchronous engine, or no free slot.
    private func inlineTransfer(write: Bool, _ buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, _ page: Int) -> IOTicket {
        guard !buffers.isEmpty else { return IOTicket(slot: -1) }
        if table != nil { stats?.count(.ioInline) }
        do throws(SwapError) {
            if write {
                // Sound: the same layout; a write only reads through these pointers.
                let raw = UnsafeRawPointer(buffers.baseAddress!).assumingMemoryBound(to: UnsafeRawBufferPointer.self)
                if buffers.count == 1 {
                    try backend.write(raw.pointee, atPage: page)
                } else {
                    try backend.write(UnsafeBufferPointer(start: raw, count: buffers.count), atPage: page)
                }
                return IOTicket(slot: -1)
            }
            let consumed =
                buffers.count == 1
                ? try backend.readConsuming(into: buffers[0], atPage: page)
                : try backend.readConsuming(into: buffers, atPage: page)
            return IOTicket(slot: -1, consumed: consumed)
        } catch {
            return IOTicket(slot: -1, error: error)
        }
    }

    // MARK: Completion

    /// Waits for `ticket`'s request (only its own) and returns whether a read consumed the
    /// backend's copy; throws the transfer's error. Every ticket must be waited for once.
    @discardableResult
    public func wait(_ ticket: IOTicket) throws(SwapError) -> Bool {
        guard ticket.slot >= 0, let table else {
            if let e = ticket.error { throw e }
            return ticket.consumed
        }
        if case .ring(let ring) = driver { ring.wait(ticket.slot) } else { table.wait(ticket.slot) }
        let r = table.request(ticket.slot)
        let error = r.pointee.error
        let consumed = r.pointee.consumed
        table.release(ticket.slot)
        if let error { throw error }
        return consumed
    }

    /// Whether `ticket`'s request is done (a wait would not sleep).
    public func isDone(_ ticket: IOTicket) -> Bool {
        guard ticket.slot >= 0, let table else { return true }
        return table.isDone(ticket.slot)
    }

    // MARK: Submit and wait

    /// Reads `buffer` from `page` and waits. Returns whether the backend gave up its copy.
    public func read(into buffer: UnsafeMutableRawBufferPointer, atPage page: Int) throws(SwapError) -> Bool {
        if table == nil || options.readsInCaller { return try backend.readConsuming(into: buffer, atPage: page) }
        var one = buffer
        return try withUnsafePointer(to: &one) { p throws(SwapError) in
            try wait(submitRead(into: UnsafeBufferPointer(start: p, count: 1), atPage: page))
        }
    }

    /// The vectored form.
    public func read(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, atPage page: Int) throws(SwapError) -> Bool {
        if table == nil || options.readsInCaller { return try backend.readConsuming(into: buffers, atPage: page) }
        return try wait(submitRead(into: buffers, atPage: page))
    }

    /// Writes `buffers` from `page` and waits.
    public func write(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, atPage page: Int) throws(SwapError) {
        if table == nil { return try backend.write(buffers, atPage: page) }
        try wait(submitWrite(buffers, atPage: page))
    }
}

/// A submitted request: wait for it with `IOEngine.wait` (exactly once).
package struct IOTicket: Sendable {
    /// The request slot, or -1 for a transfer the caller already did.
    let slot: Int
    let consumed: Bool
    let error: SwapError?

    init(slot: Int, consumed: Bool = false, error: SwapError? = nil) {
        self.slot = slot
        self.consumed = consumed
        self.error = error
    }
}
