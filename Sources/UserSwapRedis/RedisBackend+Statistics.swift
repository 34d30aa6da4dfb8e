import UserSwap

/// What the backend and its server can tell, and the namespace-wide cleanup.
extension RedisBackend {
    /// What the backend has done so far: the transfers (`statistics.pagesRead`, … are
    /// `transfers.pagesRead`, …) and the server connections.
    @dynamicMemberLookup
    public struct Statistics: Sendable, Equatable {
        /// Pages read and written, failed transfers, lost pages, deleted keys.
        public var transfers: RedisTransferStatistics
        /// Freed slots whose keys are not deleted yet.
        public var deletionsPending: Int
        /// Connections opened (the first, and every reconnect).
        public var connectionsOpened: Int
        /// Connection-level failures.
        public var connectionFailures: Int
        /// Attempts repeated after a retriable failure.
        public var retries: Int

        /// A transfer counter (`statistics.pagesRead`).
        public subscript<Value>(dynamicMember counter: KeyPath<RedisTransferStatistics, Value>) -> Value {
            transfers[keyPath: counter]
        }
    }

    /// The counters so far.
    public var statistics: Statistics {
        Statistics(
            transfers: counters.snapshot(deletions: deletions),
            deletionsPending: deletions.outstandingCount,
            // Relaxed loads: statistics, read after the transfers they count.
            connectionsOpened: pool.connectionsOpened.load(ordering: .relaxed),
            connectionFailures: pool.connectionFailures.load(ordering: .relaxed),
            retries: pool.retriesDone.load(ordering: .relaxed))
    }

    /// The server's view: keys in the selected database (ours and anybody else's) and the
    /// memory it uses (`INFO memory`'s `used_memory`).
    public struct ServerStatus: Sendable, Equatable {
        /// Keys in the selected database.
        public var keys: Int
        /// `INFO memory`'s `used_memory`.
        public var usedMemoryBytes: Int
    }

    /// Asks the server for its key count and memory use (`DBSIZE`, `INFO memory`).
    public func serverStatus() throws(SwapError) -> ServerStatus {
        do {
            return try pool.perform { connection throws(RedisFailure) in
                let size = try connection.command(RedisCommand("DBSIZE"))
                try size.view.checkNotError()
                var info = RedisCommand("INFO")
                info.append("memory")
                let memory = try connection.command(info)
                try memory.view.checkNotError()
                var used = 0
                for line in memory.view.text.split(whereSeparator: \.isNewline)
                where line.hasPrefix("used_memory:") {
                    used = Int(line.dropFirst("used_memory:".count)) ?? 0
                }
                return ServerStatus(keys: Int(size.view.integer), usedMemoryBytes: used)
            }
        } catch {
            throw swapError(error, doing: "read the server's status")
        }
    }

    // MARK: Cleanup

    /// Deletes every key of this device's namespace (SCAN, then UNLINK), including keys an
    /// earlier run with the same namespace left behind. Only when no space uses the device: it
    /// deletes pages the engine still counts on. Returns the keys deleted.
    @discardableResult
    public func removeAllPages() throws(SwapError) -> Int {
        do {
            return try pool.perform { connection throws(RedisFailure) in
                try Self.unlinkAll(matching: format.scanPattern, on: connection)
            }
        } catch {
            throw swapError(error, doing: "delete the keys of namespace '\(namespace)'")
        }
    }

    /// Whether `namespace` is one a device may use: letters, digits and `-_.:`, 1 to 100 of them.
    public static func isValidNamespace(_ namespace: String) -> Bool { RedisPageFormat.isValidNamespace(namespace) }

    /// Deletes every key of `namespace` on the server `configuration` names (SCAN, then
    /// UNLINK): the pages a process that was killed left there (its backend's `deinit` never
    /// ran). Only for a namespace no running process uses. Returns the keys deleted. The
    /// configuration's own `namespace` is not used.
    public static func removeAllPages(namespace: String, configuration: Configuration) throws(SwapError) -> Int {
        var configuration = configuration
        configuration.namespace = namespace
        try configuration.validate()
        let format = RedisPageFormat(namespace: namespace, instance: 0)
        let endpoint = configuration.endpoint
        _RedisSystem.ignoreBrokenPipes()
        do {
            let connection = try _RedisConnection(endpoint)
            return try unlinkAll(matching: format.scanPattern, on: connection)
        } catch {
            // The backend's messages, without a backend.
            throw RedisBackend.swapError(error, server: endpoint.name, doing: "delete the keys of namespace '\(namespace)'")
        }
    }

    /// SCAN for `pattern`, UNLINK each batch found; the number of keys deleted.
    private static func unlinkAll(matching pattern: String, on connection: _RedisConnection) throws(RedisFailure) -> Int {
        try connection.scan(matching: pattern) { keys throws(RedisFailure) -> Int in
            guard keys.elementCount > 0 else { return 0 }
            var unlink = RedisCommand("UNLINK")
            for i in 0..<keys.elementCount { unlink.append(keys.element(i).text) }
            let answer = try connection.command(unlink)
            try answer.view.checkNotError()
            return Int(answer.view.integer)
        }
    }
}
