import UserSwap

/// What the backend and its server can tell, and the namespace-wide cleanup.
extension RedisBackend {
    /// What the backend has done so far.
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
        /// Keys of freed slots deleted, and deletions given up (their keys stay, unread).
        public var pagesDeleted: Int
        /// Deletions given up (their keys stay, never read).
        public var deleteFailures: Int
        /// Freed slots whose keys are not deleted yet.
        public var deletionsPending: Int
        /// Connections opened (the first, and every reconnect), and connection-level failures.
        public var connectionsOpened: Int
        /// Connection-level failures.
        public var connectionFailures: Int
        /// Attempts repeated after a retriable failure.
        public var retries: Int
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
            deletionsPending: deletions.outstandingCount,
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
        var cursor = "0"
        var removed = 0
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
            if keys.elementCount > 0 {
                var unlink = RedisCommand("UNLINK")
                for i in 0..<keys.elementCount { unlink.append(keys.element(i).text) }
                let answer = try connection.command(unlink)
                try answer.view.checkNotError()
                removed += Int(answer.view.integer)
            }
        } while cursor != "0"
        return removed
    }
}
