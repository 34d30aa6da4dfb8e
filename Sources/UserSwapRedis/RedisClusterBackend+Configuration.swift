import UserSwap

extension RedisClusterBackend {
    /// When a written page counts as swapped out.
    public enum Durability: Sendable, Equatable, CustomStringConvertible {
        /// Once its master acknowledged it. Redis replicates asynchronously: a master that dies
        /// before passing a write on loses it, and the page reads as a typed error (never as an
        /// older page: see `RedisPageFormat`'s write generation).
        case primaryOnly
        /// Once its master and `n` replicas have it: every batch of writes to a node is followed,
        /// in the same pipeline, by `WAIT n timeout`, and the write is not complete (the engine
        /// keeps the folio in memory, under writeback) until the replicas answered. A shard that
        /// has fewer than `n` live replicas left (its replica was promoted after a failover)
        /// takes the write with the copies it can make, and `degradedWrites` counts it.
        case replicated(Int)

        public var description: String {
            switch self {
            case .primaryOnly: "primary-only"
            case .replicated(let n): "replicated(\(n))"
            }
        }

        /// Replicas each write waits for.
        var replicas: Int {
            switch self {
            case .primaryOnly: 0
            case .replicated(let n): n
            }
        }
    }

    /// Where the cluster is and how patient to be with it.
    public struct Configuration: Sendable, Equatable {
        /// Nodes to ask for the slot map, `host:port` (`127.0.0.1:7000`); any one that answers
        /// will do, and the map names the rest. No TLS: keep the cluster on loopback or a private
        /// network (a space seals its pages by default, so values are ciphertext).
        public var seeds: [String]
        /// Redis 6 ACL user for `AUTH user password`; nil sends `AUTH password` (requirepass).
        public var username: String?
        /// Sent with `AUTH` on every new connection when set (every node has the same one).
        public var password: String?
        /// Every key of the device starts with `{<namespace>/`; nil picks a unique one (as
        /// `RedisBackend.Configuration.namespace`).
        public var namespace: String?
        /// nil: `.replicated(1)` when every master has a live replica at start, else
        /// `.primaryOnly`.
        public var durability: Durability?
        /// How long `WAIT` may wait for the replicas of one batch of writes.
        public var replicationTimeout: Duration
        /// Connections kept open per node at most.
        public var maxConnectionsPerNode: Int
        /// How long a connection attempt to one node may take.
        public var connectTimeout: Duration
        /// How long one pipelined batch on one node may take.
        public var commandTimeout: Duration
        /// How long a transfer keeps trying through a failover, a resharding or a cluster that
        /// reports itself down (`MOVED` and a new map, `TRYAGAIN`, `CLUSTERDOWN`, a dead node)
        /// before it fails with a typed error. It must cover the cluster's failover time
        /// (`cluster-node-timeout` plus the election, about twice the timeout).
        public var failoverTimeout: Duration
        /// The first pause between tries (it doubles, up to 200 ms).
        public var retryBackoff: Duration
        /// How long freed slots gather before one batch of UNLINKs deletes their keys.
        public var deleteGatherDelay: Duration

        /// A configuration; see each property for its default's reason.
        public init(
            seeds: [String] = [], username: String? = nil, password: String? = nil, namespace: String? = nil,
            durability: Durability? = nil, replicationTimeout: Duration = .seconds(1),
            maxConnectionsPerNode: Int = 8, connectTimeout: Duration = .milliseconds(500),
            commandTimeout: Duration = .seconds(2), failoverTimeout: Duration = .seconds(10),
            retryBackoff: Duration = .milliseconds(5), deleteGatherDelay: Duration = .milliseconds(1)
        ) {
            self.seeds = seeds
            self.username = username
            self.password = password
            self.namespace = namespace
            self.durability = durability
            self.replicationTimeout = replicationTimeout
            self.maxConnectionsPerNode = maxConnectionsPerNode
            self.connectTimeout = connectTimeout
            self.commandTimeout = commandTimeout
            self.failoverTimeout = failoverTimeout
            self.retryBackoff = retryBackoff
            self.deleteGatherDelay = deleteGatherDelay
        }

        /// A configuration from `redis+cluster://[[user]:password@]HOST:PORT[,HOST:PORT…]`
        /// (`redis+cluster://127.0.0.1:7000,127.0.0.1:7001`). The password: the URL's, else
        /// `environment["USERSWAP_REDIS_PASSWORD"]` if set.
        public init(url: String, environment: [String: String] = [:]) throws(SwapError) {
            self.init()
            let scheme = "redis+cluster://"
            guard url.hasPrefix(scheme) else {
                throw SwapError(
                    .invalidArgument,
                    "'\(RedisBackend.Configuration.redacted(url))' is not a redis+cluster:// URL; write redis+cluster://HOST:PORT[,HOST:PORT…]"
                )
            }
            var rest = Substring(url.dropFirst(scheme.count))
            if rest.hasSuffix("/") { rest = rest.dropLast() }
            if let at = rest.lastIndex(of: "@") {
                let credentials = rest[..<at]
                rest = rest[rest.index(after: at)...]
                if let colon = credentials.firstIndex(of: ":") {
                    let user = credentials[..<colon]
                    username = user.isEmpty ? nil : String(user)
                    password = String(credentials[credentials.index(after: colon)...])
                } else {
                    password = String(credentials)
                }
            }
            for seed in rest.split(separator: ",", omittingEmptySubsequences: false) {
                guard RedisClusterNode(seed) != nil else {
                    throw SwapError(
                        .invalidArgument,
                        "'\(RedisBackend.Configuration.redacted(url))': seed '\(seed)' is not HOST:PORT (a port from 1 to 65535)")
                }
                seeds.append(String(seed))
            }
            if password == nil, let fromEnvironment = environment[RedisBackend.Configuration.passwordEnvironmentVariable],
                !fromEnvironment.isEmpty
            {
                password = fromEnvironment
            }
            try validate()
        }

        /// The seeds as a URL without user or password: what reports and messages show.
        public var urlWithoutCredentials: String { "redis+cluster://" + seeds.joined(separator: ",") }

        /// Throws `invalidArgument` for a setting that cannot work.
        func validate() throws(SwapError) {
            guard !seeds.isEmpty else {
                throw SwapError(.invalidArgument, "a Redis Cluster device needs at least one seed node (HOST:PORT)")
            }
            for seed in seeds where RedisClusterNode(seed) == nil {
                throw SwapError(.invalidArgument, "Redis Cluster seed '\(seed)' is not HOST:PORT (a port from 1 to 65535)")
            }
            if let namespace, !RedisPageFormat.isValidNamespace(namespace) {
                throw SwapError(
                    .invalidArgument, "Redis namespace '\(namespace)' may use only letters, digits and -_.: (1 to 100 characters)")
            }
            if case .replicated(let n)? = durability, n < 1 {
                throw SwapError(.invalidArgument, "durability .replicated(\(n)): give at least 1 replica, or .primaryOnly")
            }
            guard maxConnectionsPerNode >= 1 else { throw SwapError(.invalidArgument, "maxConnectionsPerNode must be at least 1") }
            guard connectTimeout > .zero, commandTimeout > .zero, replicationTimeout > .zero, failoverTimeout > .zero else {
                throw SwapError(
                    .invalidArgument, "Redis Cluster timeouts must be positive: a zero timeout would let a dead node hang the engine")
            }
            guard retryBackoff > .zero else { throw SwapError(.invalidArgument, "retryBackoff must be positive") }
        }

        /// How to connect to `node`.
        func endpoint(_ node: RedisClusterNode) -> RedisEndpoint {
            RedisEndpoint(
                host: node.host, port: node.port, socketPath: nil, username: username, password: password, database: 0,
                connectTimeout: connectTimeout, commandTimeout: commandTimeout)
        }
    }
}

extension SwapSpace.DeviceConfiguration {
    /// A Redis Cluster device of `pages` pages (header included) reached through `seeds`
    /// (`["127.0.0.1:7000"]`); see `RedisClusterBackend`.
    ///
    /// ```swift
    /// let space = try SwapSpace(.init(memory: 64 << 20, devices: [
    ///     try .redisCluster(seeds: ["10.0.0.2:7000", "10.0.0.3:7000"], pages: 1 + 64 * 512, password: secret),
    /// ]))
    /// ```
    public static func redisCluster(
        seeds: [String], pages: Int, password: String? = nil, durability: RedisClusterBackend.Durability? = nil,
        priority: Int = 0
    ) throws(SwapError) -> Self {
        let backend = try RedisClusterBackend(
            pageCount: pages, configuration: .init(seeds: seeds, password: password, durability: durability))
        return .backend(backend, priority: priority)
    }
}
