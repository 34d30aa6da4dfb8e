import UserSwap

/// What the cluster device has done so far, and the namespace-wide cleanup.
extension RedisClusterBackend {
    /// Counters since the device was made.
    public struct Statistics: Sendable, Equatable {
        /// Pages read.
        public var pagesRead: Int
        /// Transfers that read pages.
        public var readCalls: Int
        /// Pages written.
        public var pagesWritten: Int
        /// Transfers that wrote pages.
        public var writeCalls: Int
        /// Transfers that ended in an error.
        public var failedCalls: Int
        /// Keys of freed slots deleted.
        public var pagesDeleted: Int
        /// Deletions given up (their keys stay, never read).
        public var deleteFailures: Int
        /// `MOVED` replies (a slot served elsewhere than the map said) and `ASK` replies (a key
        /// group caught migrating).
        public var movedRedirections: Int
        /// `ASK` replies.
        public var askRedirections: Int
        /// `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, `MASTERDOWN` replies, and calls to a node that
        /// did not answer.
        public var transientRefusals: Int
        /// Node pipelines that failed at the connection level (a dead or frozen node).
        public var connectionFailures: Int
        /// Slot maps read.
        public var mapRefreshes: Int
        /// Rounds of a call sent again (after a redirection, a refusal or a dead node).
        public var retryRounds: Int
        /// `WAIT`s sent (one per node per batch of writes with `.replicated`), and pages written
        /// with fewer copies than asked because their shard had no more replicas online.
        public var waits: Int
        /// Pages written with fewer replica copies than asked (see `Durability.replicated`).
        public var degradedWrites: Int
    }

    /// The counters so far.
    public var statistics: Statistics {
        // Relaxed loads: statistics, read after the transfers they count.
        Statistics(
            pagesRead: pagesRead.load(ordering: .relaxed), readCalls: readCalls.load(ordering: .relaxed),
            pagesWritten: pagesWritten.load(ordering: .relaxed), writeCalls: writeCalls.load(ordering: .relaxed),
            failedCalls: failedCalls.load(ordering: .relaxed),
            pagesDeleted: deletions.pagesDeleted.load(ordering: .relaxed),
            deleteFailures: deletions.deleteFailures.load(ordering: .relaxed),
            movedRedirections: router.movedRedirections.load(ordering: .relaxed),
            askRedirections: router.askRedirections.load(ordering: .relaxed),
            transientRefusals: router.transientRefusals.load(ordering: .relaxed),
            connectionFailures: router.connectionFailures.load(ordering: .relaxed),
            mapRefreshes: router.mapRefreshes.load(ordering: .relaxed),
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
                    var cursor = "0"
                    var count = 0
                    repeat {
                        var scan = RedisCommand("SCAN")
                        scan.append(cursor)
                        scan.append("MATCH")
                        scan.append(pattern)
                        scan.append("COUNT")
                        scan.append("1000")
                        let reply = try connection.command(scan)
                        let r = reply.view
                        try r.checkNotError()
                        guard r.elementCount == 2 else { throw .data("SCAN answered \(r.elementCount) elements instead of 2") }
                        cursor = r.element(0).text
                        let keys = r.element(1)
                        let unlinks = (0..<keys.elementCount).map { i in
                            var unlink = RedisCommand("UNLINK")
                            unlink.append(keys.element(i).text)
                            return unlink
                        }
                        try connection.pipeline(unlinks) { _, answer throws(RedisFailure) in
                            try answer.checkNotError()
                            count += Int(answer.integer)
                        }
                    } while cursor != "0"
                    return count
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
                    var cursor = "0"
                    var count = 0
                    repeat {
                        var scan = RedisCommand("SCAN")
                        scan.append(cursor)
                        scan.append("MATCH")
                        scan.append(format.scanPattern)
                        scan.append("COUNT")
                        scan.append("1000")
                        let reply = try connection.command(scan)
                        try reply.view.checkNotError()
                        cursor = reply.view.element(0).text
                        count += reply.view.element(1).elementCount
                    } while cursor != "0"
                    return count
                }
            } catch {
                throw swapError(error, doing: "count the keys of namespace '\(namespace)' on \(node)")
            }
        }
        return total
    }
}
