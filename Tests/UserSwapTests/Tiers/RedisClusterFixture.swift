import Foundation
import Glibc
import Testing

@testable import UserSwapRedis

/// A private Redis Cluster for one test: `scripts/redis-cluster start` in a fresh folder (six
/// nodes, three masters with a replica each, a random password, `cluster-node-timeout` 1 s), and
/// `stop` when the fixture goes away: nothing is left running or on disk.
final class RedisClusterFixture: Sendable {
    static let script = TestProcess.repository + "/scripts/redis-cluster"

    /// Whether the cluster tests can run: both redis-server and redis-cli are installed.
    static var available: Bool {
        RedisServerProcess.executable != nil
            && ["/usr/bin/redis-cli", "/usr/local/bin/redis-cli"].contains { FileManager.default.isExecutableFile(atPath: $0) }
    }

    let directory: String
    let url: String
    let password: String
    let seeds: [String]

    /// The folder name's start; the pid of the test process follows.
    static let folderPrefix = "userswap-cluster-test-"

    init() throws {
        Self.stopAbandonedClusters()
        var template = Array((FileManager.default.temporaryDirectory.path + "/\(Self.folderPrefix)\(getpid())-XXXXXX").utf8CString)
        try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil })
        directory = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let started = try TestProcess.run(Self.script, ["start", directory], environment: ProcessInfo.processInfo.environment)
        guard started.status == 0 else {
            _ = try? TestProcess.run(Self.script, ["stop", directory], environment: ProcessInfo.processInfo.environment)
            throw SwapTestFailure("scripts/redis-cluster start failed (\(started.status)): \(started.output)")
        }
        url = started.output.split(separator: "\n").last.map(String.init) ?? ""
        password = (try String(contentsOfFile: directory + "/password", encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)
        seeds = url.dropFirst("redis+cluster://".count).split(separator: ",").map(String.init)
    }

    deinit {
        _ = try? TestProcess.run(Self.script, ["stop", directory], environment: ProcessInfo.processInfo.environment)
    }

    /// Stops the clusters that test processes which died before their fixtures' `deinit` (a
    /// crash, SIGKILL) left running: the nodes are daemons, not children that die with us.
    static func stopAbandonedClusters() {
        let base = FileManager.default.temporaryDirectory.path
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: base) else { return }
        for name in names where name.hasPrefix(folderPrefix) {
            let rest = name.dropFirst(folderPrefix.count)
            guard let dash = rest.firstIndex(of: "-"), let pid = Int32(rest[..<dash]), pid != getpid() else { continue }
            // Still running (or its pid reused: then we cannot tell, and leave it).
            if Glibc.kill(pid, 0) == 0 || errno == EPERM { continue }
            _ = try? TestProcess.run(script, ["stop", base + "/" + name], environment: ProcessInfo.processInfo.environment)
        }
    }

    /// A device configuration for this cluster; patient enough for a failover.
    func configuration(durability: RedisClusterBackend.Durability? = nil, failoverTimeout: Duration = .seconds(15))
        -> RedisClusterBackend.Configuration
    {
        RedisClusterBackend.Configuration(
            seeds: seeds, password: password, durability: durability,
            connectTimeout: .milliseconds(300), commandTimeout: .seconds(2),
            failoverTimeout: failoverTimeout)
    }

    /// The pid of the node on `port`.
    func pid(_ port: Int) throws -> pid_t {
        let text = try String(contentsOfFile: "\(directory)/node-\(port).pid", encoding: .utf8)
        return try #require(pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    func signal(_ port: Int, _ signal: Int32) throws {
        try #require(Glibc.kill(try pid(port), signal) == 0, "cannot signal node \(port)")
    }

    /// Starts node `port` again after it was killed (`scripts/redis-cluster start-node`): with
    /// no data (the test cluster keeps none on disk), with its own cluster configuration.
    func startNode(_ port: Int) throws {
        let started = try TestProcess.run(
            Self.script, ["start-node", directory, String(port)], environment: ProcessInfo.processInfo.environment)
        guard started.status == 0 else { throw SwapTestFailure("scripts/redis-cluster start-node failed: \(started.output)") }
    }

    /// Waits until node `port` is a replica whose link to its master is up.
    func waitUntilReplica(_ port: Int, timeout: Duration = .seconds(20)) throws {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            if let info = try? cli(port, ["INFO", "replication"]), info.contains("role:slave"), info.contains("master_link_status:up") {
                return
            }
            usleep(50_000)
        }
        throw SwapTestFailure("node \(port) did not become a replica with its link up within \(timeout)")
    }

    /// `redis-cli ARGS` against node `port` (the password through the environment).
    @discardableResult
    func cli(_ port: Int, _ arguments: [String]) throws -> String {
        var environment = ProcessInfo.processInfo.environment
        environment["REDISCLI_AUTH"] = password
        let result = try TestProcess.run(
            "redis-cli", ["-h", "127.0.0.1", "-p", String(port), "--no-auth-warning"] + arguments,
            environment: environment)
        guard result.status == 0 else { throw SwapTestFailure("redis-cli \(arguments.joined(separator: " ")) failed: \(result.output)") }
        return result.output
    }

    /// `CLUSTER MYID` of node `port`.
    func nodeID(_ port: Int) throws -> String {
        try cli(port, ["CLUSTER", "MYID"]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The replica of the master on `port`, from that master's `INFO replication`.
    func replica(of port: Int) throws -> Int {
        let info = try cli(port, ["INFO", "replication"])
        let line = try #require(info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("slave0:") })
        let field = try #require(line.split(separator: ",").first { $0.hasPrefix("port=") })
        return try #require(Int(field.dropFirst("port=".count)))
    }

    /// Waits until node `port` reports `cluster_state:ok`; the time it took.
    @discardableResult
    func waitUntilOK(_ port: Int, timeout: Duration = .seconds(20)) throws -> Duration {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            if let info = try? cli(port, ["CLUSTER", "INFO"]), info.contains("cluster_state:ok") { return ContinuousClock.now - start }
            usleep(50_000)
        }
        throw SwapTestFailure("node \(port) did not report cluster_state:ok within \(timeout)")
    }

    /// Waits until node `port` is a master.
    func waitUntilMaster(_ port: Int, timeout: Duration = .seconds(20)) throws {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            if let info = try? cli(port, ["INFO", "replication"]), info.contains("role:master") { return }
            usleep(50_000)
        }
        throw SwapTestFailure("node \(port) was not promoted within \(timeout)")
    }
}

/// A test's own failure with a message (setup that could not be done).
struct SwapTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
