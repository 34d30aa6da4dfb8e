import Foundation
import UserSwapBench
import UserSwapRedis

/// `userswap redis-clean URL --namespace N`: deletes the keys a killed run left in namespace N
/// (`RedisBackend.removeAllPages(namespace:configuration:)`, or on every master of a
/// `redis+cluster://` URL, `RedisClusterBackend`'s) and prints how many.
enum RedisCleanCommand {
    static func run(_ options: RedisCleanOptions, console: Console) throws {
        if options.url.hasPrefix("redis+cluster://") {
            try runOnCluster(options, console: console)
            return
        }
        if RedisBackend.Configuration.hasPassword(options.url) {
            console.errorLine(
                "userswap: warning: the password in the URL is visible to every user of this machine (ps, /proc); give the URL without it and the password in \(RedisBackend.Configuration.passwordEnvironmentVariable)"
            )
        }
        let configuration = try RedisBackend.Configuration(url: options.url, environment: ProcessInfo.processInfo.environment)
        let removed = try RedisBackend.removeAllPages(namespace: options.namespace, configuration: configuration)
        console.line(
            "removed \(removed) key\(removed == 1 ? "" : "s") of namespace '\(options.namespace)' from \(configuration.urlWithoutCredentials)"
        )
    }

    /// The same on every master of a Redis Cluster (`RedisClusterBackend.removeAllPages`).
    private static func runOnCluster(_ options: RedisCleanOptions, console: Console) throws {
        if (try? RedisClusterBackend.Configuration(url: options.url))?.password != nil {
            console.errorLine(
                "userswap: warning: the password in the URL is visible to every user of this machine (ps, /proc); give the URL without it and the password in \(RedisBackend.Configuration.passwordEnvironmentVariable)"
            )
        }
        let configuration = try RedisClusterBackend.Configuration(url: options.url, environment: ProcessInfo.processInfo.environment)
        let removed = try RedisClusterBackend.removeAllPages(namespace: options.namespace, configuration: configuration)
        console.line(
            "removed \(removed) key\(removed == 1 ? "" : "s") of namespace '\(options.namespace)' from \(configuration.urlWithoutCredentials)"
        )
    }
}
