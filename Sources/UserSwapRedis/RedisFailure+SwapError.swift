import Glibc
import Synchronization
import UserSwap

extension RedisBackend {
    /// The engine error for a failure met while doing `what`, naming the server and saying what
    /// to do about it.
    func swapError(_ failure: RedisFailure, doing what: String) -> SwapError {
        Self.swapError(failure, server: server, doing: what)
    }

    /// The same, for the server named `server` (`127.0.0.1:6379` or a socket's path).
    static func swapError(_ failure: RedisFailure, server: String, doing what: String) -> SwapError {
        let at = "Redis at \(server)"
        switch failure {
        case .connection(let detail, let errno, _, _):
            return SwapError(
                .deviceGone,
                "\(at) is not answering: \(detail) (while trying to \(what)); check that redis-server runs there and that the configuration's host and port (or socket path) are right",
                errno: Errno(rawValue: errno))
        case .server(let message):
            if message.hasPrefix("OOM") {
                return SwapError(
                    .diskFull, "\(at) is full and refused to \(what): \(message); raise its maxmemory or give the space another device",
                    errno: .noSpace)
            }
            if message.hasPrefix("NOAUTH") || message.hasPrefix("WRONGPASS") || message.hasPrefix("NOPERM") {
                return SwapError(
                    .permissionDenied,
                    "\(at) refused to \(what): \(message); give the right username and password (configuration or redis://user:password@host:port)",
                    errno: .permissionDenied)
            }
            if message.hasPrefix("MOVED") || message.hasPrefix("ASK") || message.hasPrefix("CROSSSLOT") || message.hasPrefix("CLUSTERDOWN")
            {
                return SwapError(
                    .invalidArgument,
                    "\(at) is a Redis Cluster node (\(message)); this backend speaks to one server: point it at a standalone server, or at a cluster proxy that routes by hash tag"
                )
            }
            return SwapError(.ioError, "\(at) failed to \(what): \(message)", errno: .ioError)
        case .data(let detail):
            return SwapError(.ioError, "\(at) could not \(what): \(detail)", errno: .ioError)
        case .poolExhausted(let capacity):
            return SwapError(
                .ioError,
                "\(at): all \(capacity) connections stayed busy while trying to \(what); the server is too slow for the load, or raise maxConnections",
                errno: .timedOut)
        }
    }
}

extension RedisClusterBackend {
    /// The engine error for a failure met while doing `what`, naming the cluster.
    func swapError(_ failure: RedisFailure, doing what: String) -> SwapError {
        Self.swapError(failure, cluster: cluster, doing: what, failoverTimeout: configuration.failoverTimeout)
    }

    /// The same, for the cluster named `cluster`; `failoverTimeout` is how long the call kept
    /// trying.
    static func swapError(_ failure: RedisFailure, cluster: String, doing what: String, failoverTimeout: Duration? = nil) -> SwapError {
        let at = "Redis Cluster \(cluster)"
        let tried = failoverTimeout.map { " for \($0)" } ?? ""
        switch failure {
        case .connection(let detail, let errno, _, _):
            return SwapError(
                .deviceGone,
                "\(at) did not serve the request\(tried): \(detail) (while trying to \(what)); check that its nodes run and that a replica can take over a dead master (redis-cli --cluster check HOST:PORT)",
                errno: Errno(rawValue: errno))
        case .server(let message):
            if RedisClusterRouter.isTransient(message) {
                return SwapError(
                    .deviceGone,
                    "\(at) did not serve the request\(tried): \(message) (while trying to \(what)); the cluster is down or without a master for the page's slot: check it (redis-cli --cluster check HOST:PORT), or raise the configuration's failoverTimeout",
                    errno: .timedOut)
            }
            if message.hasPrefix("CROSSSLOT") || message.hasPrefix("MOVED") || message.hasPrefix("ASK") {
                return SwapError(.ioError, "\(at) refused to \(what): \(message)", errno: .ioError)
            }
            return RedisBackend.swapError(failure, server: cluster, doing: what)
        case .data, .poolExhausted:
            return RedisBackend.swapError(failure, server: cluster, doing: what)
        }
    }
}

/// The few C library calls the backend makes outside hiredis (the test server's process
/// handling lives with it, in `RedisServerProcess`).
enum _RedisSystem {
    /// Ignores SIGPIPE unless the program handles it itself: hiredis writes with `write(2)`, and
    /// a server that closes its end would otherwise end the process on the next write (the write
    /// then fails with EPIPE, which we handle).
    static func ignoreBrokenPipes() {
        once.withLock { done in
            guard !done else { return }
            done = true
            let previous = signal(SIGPIPE, SIG_IGN)
            // SIG_DFL is the null handler; anything else was the program's choice: put it back.
            if let previous, unsafeBitCast(previous, to: Int.self) != 0 {
                _ = signal(SIGPIPE, previous)
            }
        }
    }

    private static let once = Mutex(false)

    /// Sleeps for `d`, resuming after signals.
    static func sleep(_ d: Duration) {
        let (seconds, attoseconds) = d.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 { request = remaining }
    }
}
