import Foundation
import UserSwapRedis

/// The Redis server a benchmark runs against: the one at `url`, or a private `redis-server`
/// started for the run (the caller stops it when done). `missing` is the error's text when no
/// server binary exists and no URL was given. A URL without a password takes it from
/// `USERSWAP_REDIS_PASSWORD`.
enum BenchRedisServer {
    static func connect(url: String?, harness: BenchHarness, missing: String) throws -> (RedisBackend.Configuration, RedisServerProcess?) {
        if let url {
            if RedisBackend.Configuration.hasPassword(url) {
                harness.log(
                    "warning: the password in the Redis URL is visible to every user of this machine (ps, /proc); give the URL without it and the password in \(RedisBackend.Configuration.passwordEnvironmentVariable)"
                )
            }
            return (try RedisBackend.Configuration(url: url, environment: ProcessInfo.processInfo.environment), nil)
        }
        guard RedisServerProcess.executable != nil else { throw BenchError(missing) }
        let started = try RedisServerProcess()
        harness.log("started a private redis-server on \(started.url)")
        return (started.configuration, started)
    }
}
