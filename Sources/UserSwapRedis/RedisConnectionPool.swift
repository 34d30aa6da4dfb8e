import Dispatch
import Synchronization
import UserSwap

/// Where and how to connect: the part of `RedisBackend.Configuration` a connection needs.
struct RedisEndpoint: Sendable {
    var host: String
    var port: Int
    /// A unix socket to connect to instead of host and port.
    var socketPath: String?
    var username: String?
    var password: String?
    var database: Int
    var connectTimeout: Duration
    var commandTimeout: Duration

    /// `127.0.0.1:6379` or the socket's path, as messages name the server.
    var name: String {
        if let socketPath { return socketPath }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// A few connections to one server, shared by the engine's threads. hiredis contexts are not
/// thread safe, so each call borrows one connection for itself; a thread that finds none idle
/// opens another, up to `capacity`, and beyond that waits for one to come back. Without the pool
/// every swap-in and swap-out of every thread would queue behind one socket's round trip.
///
/// A connection that failed is freed, not returned, and so are the idle ones (a dead socket
/// usually means the server went away, and its siblings are dead too): the next call connects
/// afresh, which is all "reconnect" means here.
///
/// Failing fast: once a call has failed at the connection level (after its retries), calls in
/// the next `failFastWindow` fail at once with that failure instead of each waiting out its own
/// timeout; the first call after the window probes the server for real (and the others keep
/// failing fast while it does), and the first success ends it. Without this a frozen server
/// would cost every queued transfer a full command timeout: reclaim, which tries one dirty folio
/// after another, would take minutes to give up.
final class _RedisConnectionPool: Sendable {
    let endpoint: RedisEndpoint
    let capacity: Int
    /// Attempts after the first for a retriable failure, and the first pause between them
    /// (doubled each time).
    let retries: Int
    let backoff: Duration
    let failFastWindow: Duration

    /// The last connection-level failure and until when calls fail at once with it; nil while
    /// the server answers. `isDown` mirrors `down != nil` for a lock-free check on every call.
    private let down = Mutex<(failure: RedisFailure, at: ContinuousClock.Instant, until: ContinuousClock.Instant)?>(nil)
    private let isDown = Atomic<Bool>(false)

    /// Idle connections. Each is used by one thread at a time: taken out under the lock, used
    /// outside it, put back under it.
    private let idle: Mutex<[_RedisConnection]>
    /// One permit per connection that may exist (idle or lent).
    private let permits: DispatchSemaphore

    // Statistics; relaxed because nothing is published through them.
    let connectionsOpened = Atomic<Int>(0)
    let retriesDone = Atomic<Int>(0)
    let connectionFailures = Atomic<Int>(0)

    init(endpoint: RedisEndpoint, capacity: Int, retries: Int, backoff: Duration, failFastWindow: Duration) {
        require(capacity >= 1 && retries >= 0, "a pool of \(capacity) connections with \(retries) retries; at least 1 and 0")
        self.endpoint = endpoint
        self.capacity = capacity
        self.retries = retries
        self.backoff = backoff
        self.failFastWindow = failFastWindow
        idle = Mutex([])
        permits = DispatchSemaphore(value: capacity)
    }

    /// Runs `body` on a connection, retrying a retriable failure (a refused or reset connection,
    /// a server still loading) on a fresh connection after a pause that doubles each time. The
    /// body must be idempotent: it may run again after the server executed part of it.
    func perform<R>(_ body: (_RedisConnection) throws(RedisFailure) -> R) throws(RedisFailure) -> R {
        // Acquiring: pairs with the releasing stores in markDown/markUp.
        if isDown.load(ordering: .acquiring), let failure = failFast() { throw failure }
        var attempt = 0
        while true {
            do {
                let result = try withConnection(body)
                if isDown.load(ordering: .acquiring) { markUp() }
                return result
            } catch {
                switch error {
                case .server, .data:
                    // The server answered: it is up, whatever it said.
                    if isDown.load(ordering: .acquiring) { markUp() }
                case .connection, .poolExhausted:
                    break
                }
                guard error.isRetriable, attempt < retries else {
                    if case .connection = error { markDown(error) }
                    throw error
                }
                retriesDone.add(1, ordering: .relaxed)  // Relaxed: a statistic
                _RedisSystem.sleep(backoff * (1 << attempt))
                attempt += 1
            }
        }
    }

    /// The failure to throw at once while the server is known to be down; nil for the one call
    /// that probes it once the window is over (the window restarts for everyone else).
    private func failFast() -> RedisFailure? {
        let now = ContinuousClock.now
        return down.withLock { d -> RedisFailure? in
            guard let current = d else { return nil }
            if now >= current.until {
                d = (current.failure, current.at, now + failFastWindow)
                return nil
            }
            guard case .connection(let detail, let errno, let timedOut, let connecting) = current.failure else { return current.failure }
            let ago = Int((now - current.at) / .milliseconds(1))
            let left = Int((current.until - now) / .milliseconds(1))
            return .connection(
                "\(detail) (\(ago) ms ago; calls fail at once for \(left) ms more, then one tries again)",
                errno: errno, timedOut: timedOut, connecting: connecting)
        }
    }

    private func markDown(_ failure: RedisFailure) {
        let now = ContinuousClock.now
        down.withLock { $0 = (failure, now, now + failFastWindow) }
        isDown.store(true, ordering: .releasing)
    }

    private func markUp() {
        down.withLock { $0 = nil }
        isDown.store(false, ordering: .releasing)
    }

    /// Lends a connection to `body` for one try.
    private func withConnection<R>(_ body: (_RedisConnection) throws(RedisFailure) -> R) throws(RedisFailure) -> R {
        // A permit comes back within one command timeout of any lent connection (every command is
        // bounded), so waiting longer than a few of them means something is badly wrong.
        let (seconds, _) = (endpoint.commandTimeout * 4 + endpoint.connectTimeout).components
        guard permits.wait(timeout: .now() + .seconds(Int(max(seconds, 1)))) == .success else {
            throw .poolExhausted(capacity)
        }
        defer { permits.signal() }
        let connection: _RedisConnection
        if let c = idle.withLock({ $0.popLast() }) {
            connection = c
        } else {
            do {
                connection = try _RedisConnection(endpoint)
                connectionsOpened.add(1, ordering: .relaxed)  // Relaxed: a statistic
            } catch {
                if case .connection = error { connectionFailures.add(1, ordering: .relaxed) }  // Relaxed: a statistic
                throw error
            }
        }
        do {
            let result = try body(connection)
            idle.withLock { $0.append(connection) }
            return result
        } catch {
            if connection.isBroken {
                connectionFailures.add(1, ordering: .relaxed)  // Relaxed: a statistic
                dropIdle()
            } else {
                idle.withLock { $0.append(connection) }
            }
            throw error
        }
    }

    /// Frees every idle connection (outside the lock: `redisFree` closes a socket).
    func dropIdle() {
        let dropped = idle.withLock { idle in
            let all = idle
            idle.removeAll()
            return all
        }
        _ = dropped
    }

    /// Idle connections right now (tests).
    var idleCount: Int { idle.withLock { $0.count } }
}

// `_RedisConnection` is not Sendable (a hiredis context is single-threaded); the pool makes it
// safe to move between threads: a connection is only ever reachable from the idle array, under
// its mutex, or from the one thread that took it out.
extension _RedisConnection: @unchecked Sendable {}
