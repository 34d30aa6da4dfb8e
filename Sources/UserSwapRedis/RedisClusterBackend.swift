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
public final class RedisClusterBackend: SwapBackend, RedisPageDevice {
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

    /// Transfer counters (`RedisClusterBackend+Statistics.swift`).
    let counters = RedisTransferCounters()

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
        let groups = RedisPageFormat.groups(pages)
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

    /// Reads `pages` into `destinations`: one GET or MGET per key group, pipelined per node;
    /// each value checked against the page's latest write generation.
    func readPages(_ pages: Range<Int>, into destinations: [UnsafeMutableRawPointer]) throws(SwapError) {
        require(destinations.count == pages.count, "\(destinations.count) destinations for \(pages.count) pages")
        let generations = self.generations
        let (requests, groups) = self.requests(pages, single: "GET", multiple: "MGET")
        do {
            try router.execute(requests, waitReplicas: 0) { i, reply throws(RedisFailure) in
                let group = groups[i]
                if group.count == 1 {
                    try decode(
                        reply, page: group.lowerBound, generation: generations.current(group.lowerBound),
                        into: destinations[group.lowerBound - pages.lowerBound], whyLost: Self.whyLost)
                    return
                }
                guard reply.elementCount == group.count else {
                    throw .data("MGET of \(group.count) keys answered \(reply.elementCount) values")
                }
                for (j, p) in group.enumerated() {
                    try decode(
                        reply.element(j), page: p, generation: generations.current(p), into: destinations[p - pages.lowerBound],
                        whyLost: Self.whyLost)
                }
            }
        } catch {
            throw swapError(error, doing: "read device pages \(RedisPageFormat.describe(pages))")
        }
    }

    /// How a cluster loses a value, for the message of a read that finds none.
    static let whyLost = "the cluster lost it (a master died before its replica had the page, or a node restarted empty)"

    /// Writes `pages`; returns when their masters acknowledged them and, with `.replicated(n)`,
    /// `n` replicas of each too: until then the engine keeps the folio in memory.
    func writePages(_ pages: Range<Int>, from sources: [UnsafeRawPointer]) throws(SwapError) {
        deletions.claim(pages)
        let values = encodeValues(pages, from: sources) { generations.bump($0) }
        defer { values.deallocate() }
        let (requests, _) = self.requests(pages, single: "SET", multiple: "MSET") { p in Self.value(of: p, in: values, pages: pages) }
        do {
            try router.execute(requests, waitReplicas: durability.replicas) { _, reply throws(RedisFailure) in try reply.checkOK("SET") }
        } catch {
            throw swapError(error, doing: "write device pages \(RedisPageFormat.describe(pages))")
        }
    }

    /// Deletes the keys of `pages` now.
    func unlink(_ pages: [Int]) throws(RedisFailure) {
        try Self.unlink(pages, router: router, format: format)
    }

    /// UNLINKs the keys of `pages`: one command per key group, pipelined per node.
    static func unlink(_ pages: [Int], router: RedisClusterRouter, format: RedisPageFormat) throws(RedisFailure) {
        let requests = format.unlinkCommands(pages).map { page, command in
            RedisClusterRouter.Request(slot: RedisHashSlot(key: format.key(of: page)), command: command)
        }
        try router.execute(requests, waitReplicas: 0) { _, reply throws(RedisFailure) in try reply.checkNotError() }
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
}
