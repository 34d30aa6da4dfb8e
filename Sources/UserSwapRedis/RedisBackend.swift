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
public final class RedisBackend: SwapBackend, RedisPageDevice {
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

    /// Transfer counters (`RedisBackend+Statistics.swift`).
    let counters = RedisTransferCounters()

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

    // MARK: Helpers

    /// Reads `pages` into `destinations` (one pointer per page): GET for one page, else one MGET
    /// per key group, pipelined.
    func readPages(_ pages: Range<Int>, into destinations: [UnsafeMutableRawPointer]) throws(SwapError) {
        require(destinations.count == pages.count, "\(destinations.count) destinations for \(pages.count) pages")
        do {
            if pages.count == 1 {
                var get = RedisCommand("GET")
                get.appendKey(of: pages.lowerBound, format: format)
                try pool.perform { connection throws(RedisFailure) in
                    let reply = try connection.command(get)
                    try decode(reply.view, page: pages.lowerBound, into: destinations[0], whyLost: Self.whyLost)
                }
            } else {
                let groups = RedisPageFormat.groups(pages)
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
                            try decode(reply.element(j), page: p, into: destinations[p - pages.lowerBound], whyLost: Self.whyLost)
                        }
                    }
                }
            }
        } catch {
            throw swapError(error, doing: "read device pages \(RedisPageFormat.describe(pages))")
        }
    }

    /// How one server loses a value, for the message of a read that finds none.
    static let whyLost = "the server lost it (restarted without persistence, flushed, evicted or deleted)"

    /// Writes `pages` from `sources`: SET for one page, else one MSET per key group, pipelined.
    /// Returns only when the server acknowledged every value: until then the engine keeps the
    /// folio (under writeback) in memory.
    func writePages(_ pages: Range<Int>, from sources: [UnsafeRawPointer]) throws(SwapError) {
        // Before taking a connection: a pending UNLINK of these pages must be answered first,
        // and the deleter needs a connection to send it.
        deletions.claim(pages)
        let values = encodeValues(pages, from: sources)
        defer { values.deallocate() }
        let commands: [RedisCommand] = RedisPageFormat.groups(pages).map { group in
            var command = RedisCommand(group.count == 1 ? "SET" : "MSET")
            for p in group {
                command.appendKey(of: p, format: format)
                command.appendExternal(Self.value(of: p, in: values, pages: pages))
            }
            return command
        }
        do {
            // Idempotent: a retry sends the same values again.
            try pool.perform { connection throws(RedisFailure) in
                try connection.pipeline(commands) { _, reply throws(RedisFailure) in try reply.checkOK("SET") }
            }
        } catch {
            throw swapError(error, doing: "write device pages \(RedisPageFormat.describe(pages))")
        }
    }

    /// Deletes the keys of `pages` now.
    func unlink(_ pages: [Int]) throws(RedisFailure) {
        try Self.unlink(pages, pool: pool, format: format)
    }

    /// UNLINKs the keys of `pages`: one command per key group, pipelined.
    static func unlink(_ pages: [Int], pool: _RedisConnectionPool, format: RedisPageFormat) throws(RedisFailure) {
        let commands = format.unlinkCommands(pages).map(\.command)
        try pool.perform { connection throws(RedisFailure) in
            try connection.pipeline(commands) { _, reply throws(RedisFailure) in try reply.checkNotError() }
        }
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
}
