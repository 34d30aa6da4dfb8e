import Glibc
import UserSwap

extension RedisBackend {
    /// Where the server is and how patient to be with it.
    public struct Configuration: Sendable, Equatable {
        /// The server's address. The connection has no TLS: keep it on loopback or a private
        /// network. A space seals its pages by default, so values are ciphertext, but keys,
        /// sizes and timing are visible (and everything, with `encryption: .none`).
        public var host: String
        /// The server's TCP port.
        public var port: Int
        /// A unix socket to connect to instead of `host` and `port` (the private server's).
        public var socketPath: String?
        /// Redis 6 ACL user for `AUTH user password`; nil sends `AUTH password` (requirepass).
        public var username: String?
        /// Sent with `AUTH` on every new connection when set.
        public var password: String?
        /// The logical database (`SELECT`); 0 by default.
        public var database: Int
        /// Every key of the device starts with `{<namespace>/`: letters, digits, `-_.:` only.
        /// Nil picks `userswap-<pid>-<random>`, unique per backend. Two devices must never share
        /// one (each would read the other's values as stale pages).
        public var namespace: String?
        /// Connections the backend keeps open at most; each engine thread doing I/O holds one
        /// for the length of a command.
        public var maxConnections: Int
        /// How long a connection attempt may take.
        public var connectTimeout: Duration
        /// How long one command (or one pipelined batch's reply) may take before the transfer
        /// fails with a typed error. Never retried: the caller has waited enough.
        public var commandTimeout: Duration
        /// Extra attempts, on a fresh connection, after a connection that was refused, reset or
        /// closed, or a server still loading its data; the pause before each doubles, starting
        /// at `retryBackoff`. The defaults (3, 10 ms) ride over a restart of about 70 ms.
        public var retries: Int
        /// The first pause before a retry (it doubles each time).
        public var retryBackoff: Duration
        /// After a call found the server not answering (once its retries are spent), calls fail
        /// at once for this long instead of each waiting out a timeout; then one call tries
        /// again. Zero turns it off.
        public var failFastWindow: Duration
        /// How long freed slots gather before one batch of UNLINKs deletes their keys.
        public var deleteGatherDelay: Duration

        /// A configuration; see each property for its default's reason.
        public init(
            host: String = "127.0.0.1", port: Int = 6379, socketPath: String? = nil, username: String? = nil, password: String? = nil,
            database: Int = 0, namespace: String? = nil, maxConnections: Int = 16,
            connectTimeout: Duration = .seconds(1), commandTimeout: Duration = .seconds(2),
            retries: Int = 3, retryBackoff: Duration = .milliseconds(10),
            failFastWindow: Duration = .milliseconds(500), deleteGatherDelay: Duration = .milliseconds(1)
        ) {
            self.host = host
            self.port = port
            self.socketPath = socketPath
            self.username = username
            self.password = password
            self.database = database
            self.namespace = namespace
            self.maxConnections = maxConnections
            self.connectTimeout = connectTimeout
            self.commandTimeout = commandTimeout
            self.retries = retries
            self.retryBackoff = retryBackoff
            self.failFastWindow = failFastWindow
            self.deleteGatherDelay = deleteGatherDelay
        }

        /// The environment variable a password can come from, so that it stays out of command
        /// lines (`ps` shows those to every user).
        public static let passwordEnvironmentVariable = "USERSWAP_REDIS_PASSWORD"

        /// A configuration from a URL: `redis://[[user]:password@]host[:port][/database]`
        /// (`redis://127.0.0.1:6390`, `redis://:secret@127.0.0.1/2`) or
        /// `unix://[[user]:password@]/path/to/socket[?db=N]`. Other settings keep their
        /// defaults. `rediss://` (TLS) is refused: not supported; a `redis+cluster://` URL is
        /// refused with a pointer to `RedisClusterBackend`, which speaks to a cluster.
        ///
        /// The password: the URL's if it has one, else `environment["USERSWAP_REDIS_PASSWORD"]`
        /// if set, else none. Pass `ProcessInfo.processInfo.environment` to allow the variable.
        public init(url: String, environment: [String: String] = [:]) throws(SwapError) {
            self.init()
            if url.hasPrefix("unix://") {
                try parseUnix(url)
            } else {
                try parseTCP(url)
            }
            if password == nil, let fromEnvironment = environment[Self.passwordEnvironmentVariable], !fromEnvironment.isEmpty {
                password = fromEnvironment
            }
            try validate()
        }

        /// Whether `url` carries a password (which `ps` would show if it came from a command line).
        public static func hasPassword(_ url: String) -> Bool {
            guard let configuration = try? Configuration(url: url) else { return false }
            return configuration.password != nil
        }

        /// Where the server is, as a URL without user or password: what reports and messages show.
        public var urlWithoutCredentials: String {
            if let socketPath { return "unix://\(socketPath)" + (database == 0 ? "" : "?db=\(database)") }
            let hostPart = host.contains(":") ? "[\(host)]" : host
            return "redis://\(hostPart):\(port)" + (database == 0 ? "" : "/\(database)")
        }

        /// `user:password@` off the front of `rest`, into `username` and `password`.
        private mutating func takeCredentials(_ rest: inout Substring) {
            guard let at = rest.lastIndex(of: "@") else { return }
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

        private mutating func parseUnix(_ url: String) throws(SwapError) {
            var rest = Substring(url.dropFirst("unix://".count))
            if let query = rest.firstIndex(of: "?") {
                let parameters = rest[rest.index(after: query)...]
                rest = rest[..<query]
                for parameter in parameters.split(separator: "&") {
                    guard parameter.hasPrefix("db="), let n = Int(parameter.dropFirst(3)), n >= 0 else {
                        throw SwapError(.invalidArgument, "'\(Self.redacted(url))': unknown parameter '\(parameter)'; only db=N is known")
                    }
                    database = n
                }
            }
            // Credentials end at the last @ before the path's first /.
            if let slash = rest.firstIndex(of: "/"), let at = rest[..<slash].lastIndex(of: "@") {
                var credentials = rest[...at]
                takeCredentials(&credentials)
                rest = rest[rest.index(after: at)...]
            }
            guard rest.hasPrefix("/") else {
                throw SwapError(
                    .invalidArgument, "'\(Self.redacted(url))': give the socket's absolute path, as in unix:///run/redis/redis.sock")
            }
            socketPath = String(rest)
        }

        private mutating func parseTCP(_ url: String) throws(SwapError) {
            let scheme = "redis://"
            if url.hasPrefix("redis+cluster://") {
                throw SwapError(
                    .invalidArgument,
                    "'\(Self.redacted(url))' names a Redis Cluster: use RedisClusterBackend (RedisClusterBackend.Configuration(url:), or --device redis+cluster://… on the command line)"
                )
            }
            guard url.hasPrefix(scheme) else {
                throw SwapError(
                    .invalidArgument,
                    "'\(Self.redacted(url))' is not a redis:// or unix:// URL; write redis://127.0.0.1:6379 (TLS, rediss://, is not supported)"
                )
            }
            var rest = Substring(url.dropFirst(scheme.count))
            takeCredentials(&rest)
            if let slash = rest.firstIndex(of: "/") {
                let db = rest[rest.index(after: slash)...]
                if !db.isEmpty {
                    guard let n = Int(db), n >= 0 else {
                        throw SwapError(.invalidArgument, "'\(Self.redacted(url))': database '\(db)' is not a number")
                    }
                    database = n
                }
                rest = rest[..<slash]
            }
            var hostPart = rest
            if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
                // [::1]:6379
                hostPart = rest[rest.index(after: rest.startIndex)..<close]
                rest = rest[rest.index(after: close)...]
                if rest.hasPrefix(":") {
                    guard let p = Int(rest.dropFirst()) else {
                        throw SwapError(.invalidArgument, "'\(Self.redacted(url))': port '\(rest.dropFirst())' is not a number")
                    }
                    port = p
                }
            } else if let colon = rest.lastIndex(of: ":") {
                hostPart = rest[..<colon]
                guard let p = Int(rest[rest.index(after: colon)...]) else {
                    throw SwapError(
                        .invalidArgument, "'\(Self.redacted(url))': port '\(rest[rest.index(after: colon)...])' is not a number")
                }
                port = p
            }
            if !hostPart.isEmpty { host = String(hostPart) }
        }

        /// `url` with whatever stands before its `@` (user and password) replaced by `***`, for
        /// messages about a URL that did not parse.
        public static func redacted(_ url: String) -> String {
            guard let scheme = url.range(of: "://") else { return url }
            let rest = url[scheme.upperBound...]
            let end = rest.firstIndex(of: "/") ?? rest.endIndex
            guard let at = rest[..<end].lastIndex(of: "@") else { return url }
            return String(url[..<scheme.upperBound]) + "***" + String(rest[at...])
        }

        /// Throws `invalidArgument` for a setting that cannot work.
        func validate() throws(SwapError) {
            if let socketPath {
                guard socketPath.hasPrefix("/"), socketPath.utf8.count < 108 else {
                    throw SwapError(.invalidArgument, "Redis socket '\(socketPath)' must be an absolute path of at most 107 bytes")
                }
            } else {
                guard !host.isEmpty else { throw SwapError(.invalidArgument, "the Redis host is empty; give an address such as 127.0.0.1") }
                guard (1...65535).contains(port) else {
                    throw SwapError(.invalidArgument, "Redis port \(port) is out of range; give 1 to 65535")
                }
            }
            guard database >= 0 else { throw SwapError(.invalidArgument, "Redis database \(database) is negative") }
            if let namespace, !RedisPageFormat.isValidNamespace(namespace) {
                throw SwapError(
                    .invalidArgument, "Redis namespace '\(namespace)' may use only letters, digits and -_.: (1 to 100 characters)")
            }
            guard maxConnections >= 1 else { throw SwapError(.invalidArgument, "maxConnections must be at least 1") }
            guard retries >= 0 else { throw SwapError(.invalidArgument, "retries must not be negative") }
            guard failFastWindow >= .zero else { throw SwapError(.invalidArgument, "failFastWindow must not be negative") }
            guard connectTimeout > .zero, commandTimeout > .zero else {
                throw SwapError(.invalidArgument, "Redis timeouts must be positive: a zero timeout would let a dead server hang the engine")
            }
        }

        var endpoint: RedisEndpoint {
            RedisEndpoint(
                host: host, port: port, socketPath: socketPath, username: username, password: password, database: database,
                connectTimeout: connectTimeout, commandTimeout: commandTimeout)
        }

        /// `userswap-<pid>-<8 random hex digits>`.
        static func uniqueNamespace() -> String {
            "userswap-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        }
    }
}
