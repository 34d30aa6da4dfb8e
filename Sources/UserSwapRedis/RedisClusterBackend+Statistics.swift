import UserSwap

/// What the cluster device has done so far, and the namespace-wide cleanup.
extension RedisClusterBackend {
    /// Counters since the device was made: the transfers (`statistics.pagesRead`, … are
    /// `transfers.pagesRead`, …) and the routing.
    @dynamicMemberLookup
    public struct Statistics: Sendable, Equatable {
        /// Pages read and written, failed transfers, lost pages, deleted keys.
        public var transfers: RedisTransferStatistics
        /// `MOVED` replies (a slot served elsewhere than the map said).
        public var movedRedirections: Int
        /// `ASK` replies (a key group caught migrating).
        public var askRedirections: Int
        /// `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, `MASTERDOWN` replies, and calls to a node that
        /// did not answer.
        public var transientRefusals: Int
        /// Node pipelines that failed at the connection level (a dead or frozen node).
        public var connectionFailures: Int
        /// Slot maps read.
        public var mapRefreshes: Int
        /// Slot maps refused because every node that answered held a view older than one kept
        /// before (a master that was cut off and came back believing it still serves its slots).
        public var staleMaps: Int
        /// Rounds of a call sent again (after a redirection, a refusal or a dead node).
        public var retryRounds: Int
        /// `WAIT`s sent (one per node per batch of writes with `.replicated`).
        public var waits: Int
        /// Pages written with fewer replica copies than asked, because their shard had no more
        /// replicas online (see `Durability.replicated`).
        public var degradedWrites: Int

        /// A transfer counter (`statistics.pagesRead`).
        public subscript<Value>(dynamicMember counter: KeyPath<RedisTransferStatistics, Value>) -> Value {
            transfers[keyPath: counter]
        }
    }

    /// The counters so far.
    public var statistics: Statistics {
        Statistics(
            transfers: counters.snapshot(deletions: deletions),
            // Relaxed loads: statistics, read after the transfers they count.
            movedRedirections: router.movedRedirections.load(ordering: .relaxed),
            askRedirections: router.askRedirections.load(ordering: .relaxed),
            transientRefusals: router.transientRefusals.load(ordering: .relaxed),
            connectionFailures: router.connectionFailures.load(ordering: .relaxed),
            mapRefreshes: router.mapRefreshes.load(ordering: .relaxed),
            staleMaps: router.staleMaps.load(ordering: .relaxed),
            retryRounds: router.retryRounds.load(ordering: .relaxed),
            waits: router.waits.load(ordering: .relaxed),
            degradedWrites: router.degradedWrites.load(ordering: .relaxed))
    }

    /// The masters of the current slot map, `host:port`.
    public var masters: [String] { router.map.masters.map(\.description) }

    /// Deletes every key of this device's namespace on every master (SCAN, then one UNLINK per
    /// key, pipelined: keys found together may sit in different slots). Only when no space uses
    /// the device. Returns the keys deleted.
    @discardableResult
    public func removeAllPages() throws(SwapError) -> Int {
        try Self.unlinkAll(matching: format.scanPattern, router: router, namespace: namespace, cluster: cluster)
    }

    /// Deletes every key of `namespace` on the cluster `configuration` reaches: the pages a
    /// process that was killed left there (its device's `deinit` never ran). Only for a
    /// namespace no running process uses. Returns the keys deleted. The configuration's own
    /// `namespace` is not used.
    public static func removeAllPages(namespace: String, configuration: Configuration) throws(SwapError) -> Int {
        var configuration = configuration
        configuration.namespace = namespace
        try configuration.validate()
        _RedisSystem.ignoreBrokenPipes()
        let router = RedisClusterRouter(configuration: configuration)
        do {
            try router.refresh()
        } catch {
            throw swapError(error, cluster: configuration.urlWithoutCredentials, doing: "read the cluster's slot map")
        }
        let format = RedisPageFormat(namespace: namespace, instance: 0)
        return try unlinkAll(
            matching: format.scanPattern, router: router, namespace: namespace, cluster: configuration.urlWithoutCredentials)
    }

    /// SCAN for `pattern` on every master of the map, UNLINK each key found there.
    private static func unlinkAll(matching pattern: String, router: RedisClusterRouter, namespace: String, cluster: String)
        throws(SwapError) -> Int
    {
        var removed = 0
        for node in router.map.masters {
            do {
                removed += try router.pool(node).perform { connection throws(RedisFailure) -> Int in
                    try connection.scan(matching: pattern) { keys throws(RedisFailure) -> Int in
                        // One UNLINK per key: keys found together may sit in different slots.
                        let unlinks = (0..<keys.elementCount).map { i in
                            var unlink = RedisCommand("UNLINK")
                            unlink.append(keys.element(i).text)
                            return unlink
                        }
                        var count = 0
                        try connection.pipeline(unlinks) { _, answer throws(RedisFailure) in
                            try answer.checkNotError()
                            count += Int(answer.integer)
                        }
                        return count
                    }
                }
            } catch {
                throw swapError(error, cluster: cluster, doing: "delete the keys of namespace '\(namespace)' on \(node)")
            }
        }
        return removed
    }

    /// Keys of this device's namespace on every master (tests: SCAN, counting).
    func keyCount() throws(SwapError) -> Int {
        var total = 0
        for node in router.map.masters {
            do {
                total += try router.pool(node).perform { connection throws(RedisFailure) -> Int in
                    try connection.scan(matching: format.scanPattern) { keys throws(RedisFailure) -> Int in keys.elementCount }
                }
            } catch {
                throw swapError(error, doing: "count the keys of namespace '\(namespace)' on \(node)")
            }
        }
        return total
    }
}
