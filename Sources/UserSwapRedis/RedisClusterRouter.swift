import Glibc
import Synchronization

/// Sends commands to the nodes of a Redis Cluster by hash slot: the slot map, one connection
/// pool per node, and the cluster's redirections and transient refusals.
///
/// A call gives one command per key group (its keys share one hash slot); the router sends all
/// the commands for one node in one pipeline (one round trip per node per call), then handles
/// what came back, per command:
/// - `MOVED slot host:port`: the map is out of date (a resharding moved the slot, or a replica
///   took over): the slot moves to that node at once and the whole map is refreshed;
/// - `ASK slot host:port`: the slot is migrating and this key group is on its way; the command
///   goes to that node once, preceded by `ASKING`, and the map stays as it is;
/// - `TRYAGAIN` (a multi-key command on a slot half migrated), `CLUSTERDOWN` (a slot nobody
///   serves, as during a failover), `LOADING`, `MASTERDOWN`, a node that does not answer: the
///   command is tried again after a pause (doubling from `retryBackoff` up to 200 ms, the map
///   refreshed first), until `failoverTimeout` has passed since the call began; then the last
///   failure is thrown.
///
/// With `waitReplicas` > 0, every pipeline ends with `WAIT n timeout`: the call returns only
/// when `n` replicas have the writes. A shard with fewer than `n` replicas online (the
/// cluster's own view: its replica was promoted and its old master is gone) waits for those it
/// has, or sends no WAIT when it has none; its writes count as degraded. A WAIT answered by
/// fewer replicas than the map promised sends the writes again on a refreshed map.
///
/// Commands must be idempotent (SET, MSET, GET, MGET, UNLINK are): a command whose node died
/// after executing it is sent again to the node that took over.
final class RedisClusterRouter: Sendable {
    let configuration: RedisClusterBackend.Configuration

    /// The map and the pools; the lock is never held across I/O (a pool is made under it, which
    /// connects to nothing).
    private let state: Mutex<State>
    private struct State {
        var map = RedisClusterMap()
        /// The newest master configuration epoch a kept map came with.
        var epoch = 0
        var refreshedAt = ContinuousClock.now
        var pools: [RedisClusterNode: _RedisConnectionPool] = [:]
    }

    /// Set while one thread refreshes the map: the others go on with the map they have (it is
    /// replaced when the refresh is done) instead of asking the cluster again all at once.
    private let refreshing = Atomic<Bool>(false)

    // Statistics; relaxed, counters read after the calls they count.
    let movedRedirections = Atomic<Int>(0)
    let askRedirections = Atomic<Int>(0)
    let transientRefusals = Atomic<Int>(0)
    let connectionFailures = Atomic<Int>(0)
    let mapRefreshes = Atomic<Int>(0)
    let staleMaps = Atomic<Int>(0)
    let waits = Atomic<Int>(0)
    let degradedWrites = Atomic<Int>(0)
    let retryRounds = Atomic<Int>(0)

    init(configuration: RedisClusterBackend.Configuration) {
        self.configuration = configuration
        state = Mutex(State())
    }

    /// The current slot map (a copy; the slot array is shared until the next refresh).
    var map: RedisClusterMap { state.withLock { $0.map } }

    /// The epoch of the current map (the newest master configuration epoch its node knew).
    var epoch: Int { state.withLock { $0.epoch } }

    /// The pool of `node`, made on first use.
    func pool(_ node: RedisClusterNode) -> _RedisConnectionPool {
        state.withLock { s in
            if let pool = s.pools[node] { return pool }
            // No retries or fail-fast window of its own: the router retries, on the current map.
            let pool = _RedisConnectionPool(
                endpoint: configuration.endpoint(node), capacity: configuration.maxConnectionsPerNode,
                retries: 0, backoff: configuration.retryBackoff, failFastWindow: .zero)
            s.pools[node] = pool
            return pool
        }
    }

    /// Every node a pool was made for.
    var knownNodes: [RedisClusterNode] { state.withLock { Array($0.pools.keys) } }

    // MARK: The slot map

    /// Asks the masters of the current map, then the seeds, for the slot map (`CLUSTER SHARDS`,
    /// or `CLUSTER SLOTS` where that is unknown) with the newest configuration epoch of a master
    /// the node knows (`CLUSTER NODES`), until two nodes have answered, and keeps the answer
    /// with the newer epoch. Throws the last failure when no node answers.
    ///
    /// One answer is not enough: a master that was cut off (stopped, partitioned) and comes back
    /// still believes it serves its slots until gossip tells it that its replica took over. A
    /// refresh that asked it first would route reads to a node that lacks the writes made since,
    /// and writes to a node that will drop them when it turns replica. Its masters' epochs are
    /// all older than the one the replica took the slots at, so the second answer wins; and a
    /// map whose epoch is older than one already kept is never taken again. (The node's
    /// `cluster_current_epoch` would not do: the old master learns the election's epoch from
    /// any other node's message, before it learns who won.)
    func refresh() throws(RedisFailure) {
        let current = map
        var candidates = current.masters
        for seed in configuration.seeds { if let node = RedisClusterNode(seed), !candidates.contains(node) { candidates.append(node) } }
        var last: RedisFailure = .connection("no seed node", errno: EHOSTUNREACH, timedOut: false, connecting: true)
        var best: (map: RedisClusterMap, epoch: Int)?
        var answers = 0
        for node in candidates where answers < 2 {
            do {
                let fresh = try Self.askMap(pool(node), node: node)
                answers += 1
                guard fresh.map.coveredSlots > 0 else {
                    last = .server("CLUSTERDOWN \(node) serves a map with no slot assigned")
                    continue
                }
                if best == nil || fresh.epoch > best!.epoch { best = fresh }
            } catch {
                last = error
            }
        }
        guard let best else { throw last }
        guard keep(best.map, epoch: best.epoch) else {
            throw .server("CLUSTERDOWN the nodes that answered hold an older view (epoch \(best.epoch)) than one already seen")
        }
    }

    /// Makes `map`, a node's view at `epoch`, the current map unless a map from a newer epoch
    /// was kept before; says whether it did.
    func keep(_ map: RedisClusterMap, epoch: Int) -> Bool {
        let now = ContinuousClock.now
        let kept = state.withLock { s in
            guard epoch >= s.epoch else { return false }
            s.map = map
            s.epoch = epoch
            s.refreshedAt = now
            return true
        }
        // Relaxed: statistics
        if kept { mapRefreshes.add(1, ordering: .relaxed) } else { staleMaps.add(1, ordering: .relaxed) }
        return kept
    }

    /// One node's slot map and the newest master configuration epoch it knows, in one round trip.
    static func askMap(_ pool: _RedisConnectionPool, node: RedisClusterNode) throws(RedisFailure) -> (
        map: RedisClusterMap, epoch: Int
    ) {
        try pool.perform { connection throws(RedisFailure) -> (map: RedisClusterMap, epoch: Int) in
            var nodes = RedisCommand("CLUSTER")
            nodes.append("NODES")
            var shards = RedisCommand("CLUSTER")
            shards.append("SHARDS")
            var epoch = 0
            var map: RedisClusterMap?
            var unknownShards = false
            try connection.pipeline([nodes, shards]) { k, reply throws(RedisFailure) in
                if k == 0 {
                    try reply.checkNotError()
                    epoch = RedisClusterMap.configEpoch(nodes: reply.text)
                } else if reply.isError, reply.text.lowercased().contains("unknown subcommand") {
                    unknownShards = true
                } else {
                    map = try RedisClusterMap.parse(shards: reply, seed: node)
                }
            }
            if unknownShards {
                var slots = RedisCommand("CLUSTER")
                slots.append("SLOTS")
                let old = try connection.command(slots)
                map = try RedisClusterMap.parse(slots: old.view, seed: node)
            }
            guard let map else { throw .data("\(node) answered no slot map") }
            return (map, epoch)
        }
    }

    /// Refreshes the map if the last refresh is older than `age`.
    private func refreshIfOlder(than age: Duration) {
        let now = ContinuousClock.now
        guard state.withLock({ now - $0.refreshedAt > age }) else { return }
        refreshOnce()
    }

    /// Refreshes the map unless another thread is doing it; failures are the caller's to retry.
    private func refreshOnce() {
        // Acquiring/releasing: the flag hands the refresh from one thread to the next; the map
        // itself is published under the state lock.
        guard refreshing.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        defer { refreshing.store(false, ordering: .releasing) }
        try? refresh()
    }

    // MARK: Calls

    /// One command for one key group.
    struct Request {
        var slot: RedisHashSlot
        var command: RedisCommand
    }

    /// Sends `requests` (one pipeline per node), hands each reply that is not a redirection or
    /// a transient refusal to `handle` with its request's index, and returns when all were
    /// handled. `handle` may be called again for a request whose earlier reply it threw for only
    /// when it threw `.connection` (never: it sees replies, not connections). With
    /// `waitReplicas` > 0 the writes also wait for that many replicas (see the type's summary).
    func execute(
        _ requests: [Request], waitReplicas: Int,
        handle: (Int, RedisReplyView) throws(RedisFailure) -> Void
    ) throws(RedisFailure) {
        var pending = Array(requests.indices)
        var askTargets: [Int: RedisClusterNode] = [:]
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.failoverTimeout
        var pause = configuration.retryBackoff
        var last: RedisFailure?
        while true {
            let map = self.map
            var byNode: [RedisClusterNode: [Int]] = [:]
            var retry: [Int] = []
            var refreshWanted = false
            var onlyRedirected = true
            for i in pending {
                if let node = askTargets[i] ?? map.shard(of: requests[i].slot)?.master {
                    byNode[node, default: []].append(i)
                } else {
                    retry.append(i)
                    refreshWanted = true
                    onlyRedirected = false
                    last = .server("CLUSTERDOWN no node serves hash slot \(requests[i].slot.index)")
                }
            }
            var nextAsk: [Int: RedisClusterNode] = [:]
            var failure: RedisFailure?
            for (node, indices) in byNode {
                var done = Set<Int>()
                var written = false
                var acknowledged = Int.max
                var redirected: [Int] = []
                var nodeFailed = false
                // Replicas to wait for: as many as asked, or as the shard has left (a promoted
                // replica has none until its old master comes back); none left, no WAIT.
                // (By node, not by slot: an ASK target is a master whose shard serves other slots.)
                // A node the map does not know yet (learned from a MOVED) waits for them all.
                let replicasLeft = map.shards.first { $0.master == node }?.onlineReplicas ?? -1
                let wanted = replicasLeft < 0 ? waitReplicas : min(waitReplicas, replicasLeft)
                do {
                    try pool(node).perform { connection throws(RedisFailure) in
                        // What each reply answers: a request, its ASKING, or the WAIT.
                        var commands: [RedisCommand] = []
                        var owners: [Int] = []  // request index, -1 for ASKING, -2 for WAIT
                        for i in indices {
                            if askTargets[i] != nil {
                                commands.append(RedisCommand("ASKING"))
                                owners.append(-1)
                            }
                            commands.append(requests[i].command)
                            owners.append(i)
                        }
                        if wanted > 0 {
                            var wait = RedisCommand("WAIT")
                            wait.append(String(wanted))
                            wait.append(String(max(1, Int(configuration.replicationTimeout / .milliseconds(1)))))
                            commands.append(wait)
                            owners.append(-2)
                        }
                        try connection.pipeline(commands) { k, reply throws(RedisFailure) in
                            let owner = owners[k]
                            if owner == -1 { return }
                            if owner == -2 {
                                if !reply.isError { acknowledged = Int(reply.integer) }
                                return
                            }
                            if reply.isError {
                                let text = reply.text
                                if text.hasPrefix("MOVED ") || text.hasPrefix("ASK ") {
                                    let parts = text.split(separator: " ")
                                    guard parts.count == 3, let slot = Int(parts[1]), slot >= 0, slot < RedisHashSlot.count,
                                        let target = RedisClusterNode(parts[2])
                                    else {
                                        throw .server(text)
                                    }
                                    if text.hasPrefix("MOVED ") {
                                        movedRedirections.add(1, ordering: .relaxed)  // Relaxed: a statistic
                                        state.withLock { $0.map.move(RedisHashSlot(slot), to: target) }
                                        refreshWanted = true
                                    } else {
                                        askRedirections.add(1, ordering: .relaxed)  // Relaxed: a statistic
                                        nextAsk[owner] = target
                                    }
                                    redirected.append(owner)
                                    return
                                }
                                if Self.isTransient(text) {
                                    transientRefusals.add(1, ordering: .relaxed)  // Relaxed: a statistic
                                    if text.hasPrefix("CLUSTERDOWN") { refreshWanted = true }
                                    onlyRedirected = false
                                    last = .server(text)
                                    redirected.append(owner)
                                    return
                                }
                                throw .server(text)
                            }
                            try handle(owner, reply)
                            done.insert(owner)
                            written = true
                        }
                    }
                } catch {
                    switch error {
                    case .connection, .poolExhausted:
                        // The node died or froze: whatever it did not answer goes again, on the
                        // map as the cluster sees it once a replica has taken over.
                        connectionFailures.add(1, ordering: .relaxed)
                        last = error
                        refreshWanted = true
                        onlyRedirected = false
                        nodeFailed = true
                        // Writes answered but not yet WAITed for are not durable: they go again.
                        retry += indices.filter { (waitReplicas > 0 || !done.contains($0)) && !redirected.contains($0) }
                    case .server, .data:
                        if failure == nil { failure = error }
                    }
                }
                retry += redirected
                if nodeFailed || !written || waitReplicas == 0 {
                    // Nothing to wait for, or handled above.
                } else if wanted > 0, acknowledged < wanted {
                    waits.add(1, ordering: .relaxed)  // Relaxed: a statistic
                    // Fewer replicas answered than the map promised: one may have died. Ask the
                    // cluster who is alive; the writes go again (and wait for what is left).
                    refreshOnce()
                    last = .connection(
                        "\(node): WAIT \(wanted) answered \(acknowledged == Int.max ? "nothing" : String(acknowledged)) within \(configuration.replicationTimeout)",
                        errno: ETIMEDOUT, timedOut: true, connecting: false)
                    onlyRedirected = false
                    retry += indices.filter { done.contains($0) }
                } else {
                    if wanted > 0 { waits.add(1, ordering: .relaxed) }  // Relaxed: a statistic
                    if min(wanted, acknowledged) < waitReplicas {
                        // The shard has fewer replicas than asked: the writes keep the copies
                        // it can make. Counted, and the map re-read at most once a second in
                        // case a replica came back.
                        degradedWrites.add(done.count, ordering: .relaxed)
                        refreshIfOlder(than: .seconds(1))
                    }
                }
            }
            if let failure { throw failure }
            if retry.isEmpty { return }
            guard clock.now < deadline else {
                throw last ?? .server("CLUSTERDOWN the cluster did not serve the request within \(configuration.failoverTimeout)")
            }
            retryRounds.add(1, ordering: .relaxed)  // Relaxed: a statistic
            if refreshWanted { refreshOnce() }
            if !onlyRedirected {
                _RedisSystem.sleep(min(pause, deadline - clock.now))
                pause = min(pause * 2, .milliseconds(200))
            }
            pending = retry
            askTargets = nextAsk
        }
    }

    /// Error replies that mean "not now" rather than "never".
    static func isTransient(_ text: String) -> Bool {
        text.hasPrefix("TRYAGAIN") || text.hasPrefix("CLUSTERDOWN") || text.hasPrefix("LOADING") || text.hasPrefix("MASTERDOWN")
            || text.hasPrefix("READONLY")
    }
}
