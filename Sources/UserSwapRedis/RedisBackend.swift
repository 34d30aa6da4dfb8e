import CHiredis
import Synchronization
import UserSwap

/// Far memory: a swap backend that keeps each page as a value in a Redis server.
///
/// ```swift
/// let redis = try RedisBackend(pageCount: 1 + 16 * 512, configuration: .init(port: 6390))
/// let space = try SwapSpace(.init(memory: 16 << 20, devices: [.backend(redis)]))
/// ```
///
/// - Keys and values: `RedisPageFormat` (one hash tag per swap cluster; the page plus a trailer
///   with device instance, offset and checksum, checked on every read).
/// - A one-page transfer is one GET or SET; a vectored one is one MGET or MSET per key group
///   (512 pages), all groups pipelined in one round trip.
/// - Freed slots: the engine reports each through `invalidate(page:)`; their keys are UNLINKed
///   in batches by a deleter thread (`RedisDeletionQueue`), ordered before any later write of
///   the same page.
/// - Threads: a pool of up to `maxConnections` hiredis connections, one per thread at a time.
/// - Failures: every command is bounded by `commandTimeout`; a refused or reset connection is
///   retried on a fresh one with backoff; once the server is found not answering, calls fail at
///   once for `failFastWindow` (then one tries again); what remains becomes a `SwapError` naming
///   the server:
///   `deviceGone` when the server does not answer, `diskFull` when it is out of memory,
///   `permissionDenied` when AUTH fails, `ioError` when a value is missing, of the wrong size,
///   stale or corrupt. A read never returns anything but the bytes this device wrote.
///
/// The process ignores SIGPIPE from the first backend on (hiredis writes to sockets with
/// `write`, and a server that goes away would otherwise kill the process), unless the program
/// installed a handler of its own.
public final class RedisBackend: SwapBackend {
    /// Pages in the device, header included. Page 0 is never transferred.
    public let pageCount: Int
    /// The configuration it was made with.
    public let configuration: Configuration
    /// The namespace every key of this device starts with (`{<namespace>/…`).
    public let namespace: String
    /// `127.0.0.1:6379`.
    public var server: String { endpoint.name }

    let format: RedisPageFormat
    let endpoint: RedisEndpoint
    let pool: _RedisConnectionPool
    let deletions: RedisDeletionQueue

    // Statistics (`RedisBackend+Statistics.swift`); relaxed, read after the transfers they
    // count have returned.
    let pagesRead = Atomic<Int>(0)
    let readCalls = Atomic<Int>(0)
    let pagesWritten = Atomic<Int>(0)
    let writeCalls = Atomic<Int>(0)
    let failedCalls = Atomic<Int>(0)

    /// Connects to the server (one PING), so that a wrong address fails here rather than at the
    /// first swap-out, and refuses a server that would evict our keys.
    public init(pageCount: Int, configuration: Configuration = .init()) throws(SwapError) {
        guard pageCount >= 1 else {
            throw SwapError(.invalidArgument, "a Redis device of \(pageCount) pages has no room for its header page")
        }
        try configuration.validate()
        _RedisSystem.ignoreBrokenPipes()
        self.pageCount = pageCount
        self.configuration = configuration
        namespace = configuration.namespace ?? Configuration.uniqueNamespace()
        endpoint = configuration.endpoint
        format = RedisPageFormat(namespace: namespace, instance: UInt64.random(in: 1...UInt64.max))
        pool = _RedisConnectionPool(
            endpoint: endpoint, capacity: configuration.maxConnections,
            retries: configuration.retries, backoff: configuration.retryBackoff,
            failFastWindow: configuration.failFastWindow)
        deletions = RedisDeletionQueue(gatherDelay: configuration.deleteGatherDelay)

        try checkServer()
        let pool = self.pool, format = self.format
        deletions.start { pages throws(RedisFailure) in try Self.unlink(pages, pool: pool, format: format) }
    }

    deinit {
        // Sends the deletions still pending, so a space that freed its slots leaves nothing
        // behind; bounded by one command's retries and timeout.
        deletions.stop(timeout: configuration.commandTimeout * 2 + configuration.connectTimeout)
    }

    // MARK: Transfers

    public func read(into buffer: UnsafeMutableRawBufferPointer, atPage page: Int) throws(SwapError) {
        let pages = checkedRange(bytes: buffer.count, atPage: page)
        guard let base = buffer.baseAddress else { return }
        try readPages(pages, into: (0..<pages.count).map { base + $0 * SwapPage.size })
    }

    public func write(_ buffer: UnsafeRawBufferPointer, atPage page: Int) throws(SwapError) {
        let pages = checkedRange(bytes: buffer.count, atPage: page)
        guard let base = buffer.baseAddress else { return }
        try writePages(pages, from: (0..<pages.count).map { base + $0 * SwapPage.size })
    }

    public func read(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, atPage page: Int) throws(SwapError) {
        let pages = checkedRange(bytes: buffers.reduce(0) { $0 + $1.count }, atPage: page)
        let starts = Self.pageStarts(buffers.lazy.map { UnsafeRawBufferPointer($0) }, pages: pages.count, "read")
        try readPages(pages, into: starts.map { UnsafeMutableRawPointer(mutating: $0) })
    }

    public func write(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, atPage page: Int) throws(SwapError) {
        let pages = checkedRange(bytes: buffers.reduce(0) { $0 + $1.count }, atPage: page)
        try writePages(pages, from: Self.pageStarts(buffers, pages: pages.count, "write"))
    }

    /// The start of every page of a vectored transfer's buffers, in order.
    private static func pageStarts(_ buffers: some Sequence<UnsafeRawBufferPointer>, pages: Int, _ what: String) -> [UnsafeRawPointer] {
        var starts: [UnsafeRawPointer] = []
        starts.reserveCapacity(pages)
        for b in buffers {
            precondition(b.count % SwapPage.size == 0, "a vectored \(what) buffer of \(b.count) bytes is not whole pages")
            guard let base = b.baseAddress else { continue }
            for i in 0..<b.count / SwapPage.size { starts.append(base + i * SwapPage.size) }
        }
        return starts
    }

    // MARK: Freed slots

    /// Every freed slot's key is deleted, so the server's memory follows the device's use.
    public var wantsInvalidation: Bool { true }

    /// Queues the deletion of `page`'s key. Called under the engine's cluster lock: no I/O here.
    public func invalidate(page: Int) {
        assert(page >= 1 && page < pageCount, "invalidate of page \(page) outside the device's 1..<\(pageCount)")
        deletions.add(page)
    }

    /// Deletes the keys of `pages` now (the engine calls this for a freed cluster only when the
    /// device was added with discard on; per-slot invalidation already covers the rest).
    public func discard(pages: Range<Int>) throws(SwapError) {
        guard !pages.isEmpty else { return }
        precondition(
            pages.lowerBound >= 1 && pages.upperBound <= pageCount,
            "discard of pages \(pages) outside the device's 1..<\(pageCount)")
        deletions.claim(pages)
        do {
            try Self.unlink(Array(pages), pool: pool, format: format)
        } catch {
            throw swapError(error, doing: "delete device pages \(pages)")
        }
    }

    /// Sends the deletions still queued and returns when they are answered (tests, and a
    /// program that wants the server's memory back at once).
    public func flushDeletions() {
        deletions.flush { pages throws(RedisFailure) in try Self.unlink(pages, pool: pool, format: format) }
        deletions.waitUntilIdle()
    }

    // MARK: Helpers

    /// Reads `pages` into `destinations` (one pointer per page): GET for one page, else one MGET
    /// per key group, pipelined.
    private func readPages(_ pages: Range<Int>, into destinations: [UnsafeMutableRawPointer]) throws(SwapError) {
        precondition(destinations.count == pages.count)
        guard !pages.isEmpty else { return }
        let format = self.format
        do {
            if pages.count == 1 {
                var get = RedisCommand("GET")
                get.appendKey(of: pages.lowerBound, format: format)
                try pool.perform { connection throws(RedisFailure) in
                    let reply = try connection.command(get)
                    try Self.decode(reply.view, page: pages.lowerBound, into: destinations[0], format: format)
                }
            } else {
                let groups = Self.groups(pages)
                let commands = groups.map { group in
                    var mget = RedisCommand("MGET")
                    for p in group { mget.appendKey(of: p, format: format) }
                    return mget
                }
                try pool.perform { connection throws(RedisFailure) in
                    try connection.pipeline(commands) { i, reply throws(RedisFailure) in
                        try reply.checkNotError()
                        let group = groups[i]
                        guard reply.elementCount == group.count else {
                            throw .data("MGET of \(group.count) keys answered \(reply.elementCount) values")
                        }
                        for (j, p) in group.enumerated() {
                            try Self.decode(reply.element(j), page: p, into: destinations[p - pages.lowerBound], format: format)
                        }
                    }
                }
            }
        } catch {
            failedCalls.add(1, ordering: .relaxed)
            throw swapError(error, doing: "read device pages \(Self.describe(pages))")
        }
        readCalls.add(1, ordering: .relaxed)
        pagesRead.add(pages.count, ordering: .relaxed)
    }

    /// Writes `pages` from `sources`: SET for one page, else one MSET per key group, pipelined.
    /// Returns only when the server acknowledged every value: until then the engine keeps the
    /// folio (under writeback) in memory.
    private func writePages(_ pages: Range<Int>, from sources: [UnsafeRawPointer]) throws(SwapError) {
        precondition(sources.count == pages.count)
        guard !pages.isEmpty else { return }
        // Before taking a connection: a pending UNLINK of these pages must be answered first,
        // and the deleter needs a connection to send it.
        deletions.claim(pages)
        let format = self.format
        let values = UnsafeMutableRawBufferPointer.allocate(byteCount: pages.count * RedisPageFormat.valueSize, alignment: 16)
        defer { values.deallocate() }
        func value(_ p: Int) -> UnsafeRawBufferPointer {
            // In bounds: p is in `pages`, and `values` holds one value per page of it.
            UnsafeRawBufferPointer(
                rebasing: values[
                    (p - pages.lowerBound) * RedisPageFormat.valueSize..<(p - pages.lowerBound + 1) * RedisPageFormat.valueSize])
        }
        for (i, p) in pages.enumerated() {
            format.encode(page: p, from: sources[i], into: values.baseAddress! + i * RedisPageFormat.valueSize)
        }
        let commands: [RedisCommand] = Self.groups(pages).map { group in
            var command = RedisCommand(group.count == 1 ? "SET" : "MSET")
            for p in group {
                command.appendKey(of: p, format: format)
                command.appendExternal(value(p))
            }
            return command
        }
        do {
            // Idempotent: a retry sends the same values again.
            try pool.perform { connection throws(RedisFailure) in
                try connection.pipeline(commands) { _, reply throws(RedisFailure) in try reply.checkOK("SET") }
            }
        } catch {
            failedCalls.add(1, ordering: .relaxed)
            throw swapError(error, doing: "write device pages \(Self.describe(pages))")
        }
        writeCalls.add(1, ordering: .relaxed)
        pagesWritten.add(pages.count, ordering: .relaxed)
    }

    /// Checks one GET/MGET value and copies the page out of it.
    private static func decode(
        _ reply: RedisReplyView, page: Int, into destination: UnsafeMutableRawPointer,
        format: RedisPageFormat
    ) throws(RedisFailure) {
        try reply.checkNotError()
        if reply.isNil {
            throw .data(
                "page \(page) (key \(format.key(of: page))) has no value, though this device wrote it: the server lost it (restarted without persistence, flushed, evicted or deleted)"
            )
        }
        guard reply.type == REDIS_REPLY_STRING else {
            throw .data("page \(page) (key \(format.key(of: page))) is not a string value (reply type \(reply.type))")
        }
        if let problem = format.decode(page: page, value: reply.bytes, into: destination) {
            throw .data("page \(page) (key \(format.key(of: page))): \(problem)")
        }
    }

    /// UNLINKs the keys of `pages`: one command per key group, pipelined.
    static func unlink(_ pages: [Int], pool: _RedisConnectionPool, format: RedisPageFormat) throws(RedisFailure) {
        let sorted = pages.sorted()
        var commands: [RedisCommand] = []
        var i = 0
        while i < sorted.count {
            let group = RedisPageFormat.group(of: sorted[i])
            var unlink = RedisCommand("UNLINK")
            while i < sorted.count, RedisPageFormat.group(of: sorted[i]) == group {
                unlink.appendKey(of: sorted[i], format: format)
                i += 1
            }
            commands.append(unlink)
        }
        try pool.perform { connection throws(RedisFailure) in
            try connection.pipeline(commands) { _, reply throws(RedisFailure) in try reply.checkNotError() }
        }
    }

    /// `pages` cut at key-group boundaries.
    static func groups(_ pages: Range<Int>) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var start = pages.lowerBound
        while start < pages.upperBound {
            let end = min(pages.upperBound, (RedisPageFormat.group(of: start) + 1) * RedisPageFormat.groupPages)
            result.append(start..<end)
            start = end
        }
        return result
    }

    static func describe(_ pages: Range<Int>) -> String {
        pages.count == 1 ? "\(pages.lowerBound)" : "\(pages.lowerBound)..<\(pages.upperBound)"
    }

    /// PING, then the eviction policy: a server that may evict any key (`allkeys-*`) would drop
    /// swapped-out pages when it fills up.
    private func checkServer() throws(SwapError) {
        let policy: String?
        do {
            policy = try pool.perform { connection throws(RedisFailure) in
                let pong = try connection.command(RedisCommand("PING"))
                try pong.view.checkNotError()
                var get = RedisCommand("CONFIG")
                get.append("GET")
                get.append("maxmemory-policy")
                let reply = try connection.command(get)
                // CONFIG may be renamed or disabled (managed services): then we cannot tell.
                guard !reply.view.isError, reply.view.elementCount == 2 else { return nil }
                return reply.view.element(1).text
            }
        } catch {
            throw swapError(error, doing: "connect")
        }
        if let policy, policy.hasPrefix("allkeys") {
            throw SwapError(
                .invalidArgument,
                "Redis at \(server) evicts keys when full (maxmemory-policy \(policy)), which would drop swapped-out pages; set maxmemory-policy noeviction (or a volatile-* policy: our keys have no expiry)"
            )
        }
    }

    /// The pages a transfer of `bytes` at `page` covers; the same contract as the other backends.
    private func checkedRange(bytes: Int, atPage page: Int) -> Range<Int> {
        precondition(bytes % SwapPage.size == 0, "a transfer of \(bytes) bytes is not whole pages")
        let pages = page..<page + bytes / SwapPage.size
        precondition(
            page >= 1 && pages.upperBound <= pageCount,
            "transfer of pages \(pages) outside the device's 1..<\(pageCount) (page 0 is the header)")
        return pages
    }
}
