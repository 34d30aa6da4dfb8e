import CHiredis
import Synchronization
import UserSwap

/// Far memory spread over a Redis Cluster: each page a value on the master that serves its key's
/// hash slot, optionally copied to a replica before the write counts.
///
/// ```swift
/// let cluster = try RedisClusterBackend(pageCount: 1 + 64 * 512, configuration: .init(
///     seeds: ["10.0.0.2:7000", "10.0.0.3:7000"], password: secret, durability: .replicated(1)))
/// let space = try SwapSpace(.init(memory: 64 << 20, devices: [.backend(cluster)]))
/// ```
///
/// - Keys and values: `RedisPageFormat`, as on one server: one hash tag per swap cluster, so
///   each 512-page key group lives on one node and the groups spread over the masters; the
///   value's trailer also carries the page's write generation (`_UnsafeWriteGenerations`), so
///   that an older copy brought back by a failover is refused.
/// - Routing: `RedisClusterRouter` (the slot map from `CLUSTER SHARDS`, one pool per node,
///   `MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`, bounded by `failoverTimeout`); a vectored
///   transfer is one MGET or MSET per key group, pipelined per node.
/// - Durability: `.replicated(n)` (the default when every master has a replica) ends each
///   node's batch of writes with `WAIT n`; `.primaryOnly` does not, and a master's death loses
///   what its replica had not received yet.
/// - Failures: a `SwapError` naming the cluster and the page: `deviceGone` when no node serves
///   the page within `failoverTimeout`, `ioError` when the page's latest write is gone (missing,
///   or an older write) or its value is corrupt, `diskFull` when a node is out of memory.
///   A read never returns anything but the latest bytes this device wrote for the page.
public final class RedisClusterBackend: SwapBackend {
    /// Pages in the device, header included. Page 0 is never transferred.
    public let pageCount: Int
    /// The configuration it was made with.
    public let configuration: Configuration
    /// The durability in force: the configuration's, or the one picked at start.
    public let durability: Durability
    /// The namespace every key of this device starts with (`{<namespace>/…`).
    public let namespace: String
    /// `redis+cluster://…`, the seeds, as messages name the cluster.
    public var cluster: String { configuration.urlWithoutCredentials }

    let format: RedisPageFormat
    let router: RedisClusterRouter
    let generations: _UnsafeWriteGenerations
    let deletions: RedisDeletionQueue

    // Statistics (`RedisClusterBackend+Statistics.swift`); relaxed, read after the transfers
    // they count have returned.
    let pagesRead = Atomic<Int>(0)
    let readCalls = Atomic<Int>(0)
    let pagesWritten = Atomic<Int>(0)
    let writeCalls = Atomic<Int>(0)
    let failedCalls = Atomic<Int>(0)

    /// Reads the slot map from the seeds (so a wrong address fails here), picks the durability,
    /// and refuses masters that would evict our keys.
    public init(pageCount: Int, configuration: Configuration) throws(SwapError) {
        guard pageCount >= 1, pageCount <= RedisPageFormat.maxPages else {
            throw SwapError(.invalidArgument, "a Redis Cluster device of \(pageCount) pages: give 1 (the header) to 2^40 pages")
        }
        try configuration.validate()
        _RedisSystem.ignoreBrokenPipes()
        self.pageCount = pageCount
        self.configuration = configuration
        namespace = configuration.namespace ?? RedisBackend.Configuration.uniqueNamespace()
        format = RedisPageFormat(namespace: namespace, instance: UInt64.random(in: 1...UInt64.max))
        router = RedisClusterRouter(configuration: configuration)
        generations = _UnsafeWriteGenerations(count: pageCount)
        deletions = RedisDeletionQueue(gatherDelay: configuration.deleteGatherDelay)
        do {
            try router.refresh()
        } catch {
            throw Self.swapError(error, cluster: configuration.urlWithoutCredentials, doing: "read the cluster's slot map")
        }
        let map = router.map
        guard map.coveredSlots == RedisHashSlot.count else {
            throw SwapError(
                .deviceGone,
                "Redis Cluster \(configuration.urlWithoutCredentials) serves \(map.coveredSlots) of its 16384 hash slots: fix the cluster (redis-cli --cluster check) before swapping to it"
            )
        }
        let fewest = map.shards.map(\.onlineReplicas).min() ?? 0
        switch configuration.durability {
        case nil:
            durability = fewest > 0 ? .replicated(1) : .primaryOnly
        case .replicated(let n)? where n > fewest:
            throw SwapError(
                .invalidArgument,
                "durability .replicated(\(n)) on Redis Cluster \(configuration.urlWithoutCredentials), where a master has \(fewest) replica\(fewest == 1 ? "" : "s") online: add replicas, or ask for fewer (.primaryOnly for none)"
            )
        case let chosen?:
            durability = chosen
        }
        try checkMasters(map.masters)
        let router = self.router, format = self.format
        deletions.start { pages throws(RedisFailure) in try Self.unlink(pages, router: router, format: format) }
    }

    deinit {
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

    // MARK: Freed slots

    public var wantsInvalidation: Bool { true }

    /// Queues the deletion of `page`'s key. Called under the engine's cluster lock: no I/O here.
    public func invalidate(page: Int) {
        assert(page >= 1 && page < pageCount, "invalidate of page \(page) outside the device's 1..<\(pageCount)")
        deletions.add(page)
    }

    public func discard(pages: Range<Int>) throws(SwapError) {
        guard !pages.isEmpty else { return }
        precondition(
            pages.lowerBound >= 1 && pages.upperBound <= pageCount,
            "discard of pages \(pages) outside the device's 1..<\(pageCount)")
        deletions.claim(pages)
        do {
            try Self.unlink(Array(pages), router: router, format: format)
        } catch {
            throw swapError(error, doing: "delete device pages \(pages)")
        }
    }

    /// Sends the deletions still queued and returns when they are answered.
    public func flushDeletions() {
        let router = self.router, format = self.format
        deletions.flush { pages throws(RedisFailure) in try Self.unlink(pages, router: router, format: format) }
        deletions.waitUntilIdle()
    }

    // MARK: Routing

    /// The hash slot of `page`'s key (every page of one key group has the same).
    func slot(of page: Int) -> RedisHashSlot {
        RedisHashSlot(key: format.key(of: page))
    }

    /// The master serving `page` in the current map (tests, messages).
    func master(of page: Int) -> RedisClusterNode? {
        router.map.shard(of: slot(of: page))?.master
    }

    // MARK: Helpers

    /// One request per key group of `pages`: `name` (then `multiName` for several keys) with
    /// each page's key and, when `value` is given, its value.
    private func requests(
        _ pages: Range<Int>, single: String, multiple: String,
        value: ((Int) -> UnsafeRawBufferPointer)? = nil
    ) -> (requests: [RedisClusterRouter.Request], groups: [Range<Int>]) {
        let groups = RedisBackend.groups(pages)
        let requests = groups.map { group in
            var command = RedisCommand(group.count == 1 ? single : multiple)
            for p in group {
                command.appendKey(of: p, format: format)
                if let value { command.appendExternal(value(p)) }
            }
            return RedisClusterRouter.Request(slot: slot(of: group.lowerBound), command: command)
        }
        return (requests, groups)
    }

    private func readPages(_ pages: Range<Int>, into destinations: [UnsafeMutableRawPointer]) throws(SwapError) {
        precondition(destinations.count == pages.count)
        guard !pages.isEmpty else { return }
        let format = self.format, generations = self.generations
        let (requests, groups) = self.requests(pages, single: "GET", multiple: "MGET")
        do {
            try router.execute(requests, waitReplicas: 0) { i, reply throws(RedisFailure) in
                let group = groups[i]
                if group.count == 1 {
                    try Self.decode(
                        reply, page: group.lowerBound, into: destinations[group.lowerBound - pages.lowerBound],
                        format: format, generations: generations)
                    return
                }
                guard reply.elementCount == group.count else {
                    throw .data("MGET of \(group.count) keys answered \(reply.elementCount) values")
                }
                for (j, p) in group.enumerated() {
                    try Self.decode(
                        reply.element(j), page: p, into: destinations[p - pages.lowerBound], format: format, generations: generations)
                }
            }
        } catch {
            failedCalls.add(1, ordering: .relaxed)
            throw swapError(error, doing: "read device pages \(RedisBackend.describe(pages))")
        }
        readCalls.add(1, ordering: .relaxed)
        pagesRead.add(pages.count, ordering: .relaxed)
    }

    /// Writes `pages`; returns when their masters acknowledged them and, with `.replicated(n)`,
    /// `n` replicas of each too: until then the engine keeps the folio in memory.
    private func writePages(_ pages: Range<Int>, from sources: [UnsafeRawPointer]) throws(SwapError) {
        precondition(sources.count == pages.count)
        guard !pages.isEmpty else { return }
        deletions.claim(pages)
        let values = UnsafeMutableRawBufferPointer.allocate(byteCount: pages.count * RedisPageFormat.valueSize, alignment: 16)
        defer { values.deallocate() }
        for (i, p) in pages.enumerated() {
            format.encode(
                page: p, generation: generations.bump(p), from: sources[i],
                into: values.baseAddress! + i * RedisPageFormat.valueSize)
        }
        let (requests, _) = self.requests(pages, single: "SET", multiple: "MSET") { p in
            // In bounds: p is in `pages`, and `values` holds one value per page of it.
            UnsafeRawBufferPointer(
                rebasing: values[
                    (p - pages.lowerBound) * RedisPageFormat.valueSize..<(p - pages.lowerBound + 1) * RedisPageFormat.valueSize])
        }
        do {
            try router.execute(requests, waitReplicas: durability.replicas) { _, reply throws(RedisFailure) in try reply.checkOK("SET") }
        } catch {
            failedCalls.add(1, ordering: .relaxed)
            throw swapError(error, doing: "write device pages \(RedisBackend.describe(pages))")
        }
        writeCalls.add(1, ordering: .relaxed)
        pagesWritten.add(pages.count, ordering: .relaxed)
    }

    /// Checks one GET/MGET value against the page's latest write and copies the page out of it.
    private static func decode(
        _ reply: RedisReplyView, page: Int, into destination: UnsafeMutableRawPointer,
        format: RedisPageFormat, generations: _UnsafeWriteGenerations
    ) throws(RedisFailure) {
        try reply.checkNotError()
        if reply.isNil {
            throw .data(
                "page \(page) (key \(format.key(of: page))) has no value, though this device wrote it: the cluster lost it (a master died before its replica had the page, or a node restarted empty)"
            )
        }
        guard reply.type == REDIS_REPLY_STRING else {
            throw .data("page \(page) (key \(format.key(of: page))) is not a string value (reply type \(reply.type))")
        }
        if let problem = format.decode(page: page, generation: generations.current(page), value: reply.bytes, into: destination) {
            throw .data("page \(page) (key \(format.key(of: page))): \(problem)")
        }
    }

    /// UNLINKs the keys of `pages`: one command per key group, pipelined per node.
    static func unlink(_ pages: [Int], router: RedisClusterRouter, format: RedisPageFormat) throws(RedisFailure) {
        let sorted = pages.sorted()
        var requests: [RedisClusterRouter.Request] = []
        var i = 0
        while i < sorted.count {
            let group = RedisPageFormat.group(of: sorted[i])
            var unlink = RedisCommand("UNLINK")
            let slot = RedisHashSlot(key: format.key(of: sorted[i]))
            while i < sorted.count, RedisPageFormat.group(of: sorted[i]) == group {
                unlink.appendKey(of: sorted[i], format: format)
                i += 1
            }
            requests.append(.init(slot: slot, command: unlink))
        }
        try router.execute(requests, waitReplicas: 0) { _, reply throws(RedisFailure) in try reply.checkNotError() }
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

    /// Every master's eviction policy: one that may evict any key would drop swapped-out pages.
    private func checkMasters(_ masters: [RedisClusterNode]) throws(SwapError) {
        for node in masters {
            let policy: String?
            do {
                policy = try router.pool(node).perform { connection throws(RedisFailure) in
                    var get = RedisCommand("CONFIG")
                    get.append("GET")
                    get.append("maxmemory-policy")
                    let reply = try connection.command(get)
                    guard !reply.view.isError, reply.view.elementCount == 2 else { return nil }
                    return reply.view.element(1).text
                }
            } catch {
                throw Self.swapError(error, cluster: "\(cluster) (node \(node))", doing: "connect")
            }
            if let policy, policy.hasPrefix("allkeys") {
                throw SwapError(
                    .invalidArgument,
                    "Redis Cluster node \(node) evicts keys when full (maxmemory-policy \(policy)), which would drop swapped-out pages; set maxmemory-policy noeviction on every node"
                )
            }
        }
    }

    private func checkedRange(bytes: Int, atPage page: Int) -> Range<Int> {
        precondition(bytes % SwapPage.size == 0, "a transfer of \(bytes) bytes is not whole pages")
        let pages = page..<page + bytes / SwapPage.size
        precondition(
            page >= 1 && pages.upperBound <= pageCount,
            "transfer of pages \(pages) outside the device's 1..<\(pageCount) (page 0 is the header)")
        return pages
    }
}
