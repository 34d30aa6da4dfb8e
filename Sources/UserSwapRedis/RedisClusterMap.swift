import CHiredis

/// The address of one Redis Cluster node, as the cluster announces it.
struct RedisClusterNode: Hashable, Sendable, CustomStringConvertible {
    var host: String
    var port: Int

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// `host:port` or `[v6]:port` (the form MOVED and ASK replies give).
    init?(_ text: some StringProtocol) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        var host = text[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty else { return nil }
        self.host = String(host)
        self.port = port
    }

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// Which node serves each hash slot, and how many live replicas each master has: the client's
/// copy of the cluster's slot map (what `CLUSTER SHARDS`, or `CLUSTER SLOTS` before Redis 7,
/// answers). It is only a guess between refreshes: a `MOVED` reply says it is out of date.
struct RedisClusterMap: Sendable {
    /// One replica set: the master that serves its slots and its replicas that are up.
    struct Shard: Sendable, Equatable {
        var master: RedisClusterNode
        /// Replicas the cluster does not report failed (`health` online or loading); with
        /// `CLUSTER SLOTS`, which lists only those the master sees, every one listed; -1 when
        /// not known yet (a master learned from a `MOVED`, until the map is read again).
        var onlineReplicas: Int
    }

    /// Per slot, an index into `shards`; -1 for a slot no node serves.
    private(set) var owners: [Int16]
    private(set) var shards: [Shard]

    init() {
        owners = [Int16](repeating: -1, count: RedisHashSlot.count)
        shards = []
    }

    /// The master serving `slot`, and its shard's live replicas; nil when no node serves it.
    func shard(of slot: RedisHashSlot) -> Shard? {
        let i = Int(owners[slot.index])
        return i < 0 ? nil : shards[i]
    }

    /// Slots some node serves.
    var coveredSlots: Int { owners.lazy.filter { $0 >= 0 }.count }

    /// Every master.
    var masters: [RedisClusterNode] { shards.map(\.master) }

    /// Serves `slots` from `shard` (appended if new).
    mutating func assign(_ slots: ClosedRange<Int>, to shard: Shard) {
        let index: Int
        if let existing = shards.firstIndex(of: shard) {
            index = existing
        } else {
            shards.append(shard)
            index = shards.count - 1
        }
        for s in slots where s >= 0 && s < RedisHashSlot.count { owners[s] = Int16(index) }
    }

    /// Moves one slot to `node` (after a `MOVED`, before the full refresh it triggers).
    mutating func move(_ slot: RedisHashSlot, to node: RedisClusterNode) {
        if let i = shards.firstIndex(where: { $0.master == node }) {
            owners[slot.index] = Int16(i)
        } else {
            shards.append(Shard(master: node, onlineReplicas: -1))
            owners[slot.index] = Int16(shards.count - 1)
        }
    }

    // MARK: Parsing

    /// The map from a `CLUSTER SHARDS` reply: per shard, `slots` (start/end pairs) and `nodes`
    /// (each a flat list of field names and values: `ip`, `endpoint`, `port`, `role`, `health`).
    /// `seed` stands in for an endpoint the node does not know (`?`, or empty).
    static func parse(shards reply: RedisReplyView, seed: RedisClusterNode) throws(RedisFailure) -> RedisClusterMap {
        try reply.checkNotError()
        guard reply.type == REDIS_REPLY_ARRAY else { throw .data("CLUSTER SHARDS answered reply type \(reply.type), not an array") }
        var map = RedisClusterMap()
        for i in 0..<reply.elementCount {
            let shard = fields(reply.element(i))
            guard let slots = shard["slots"], let nodes = shard["nodes"] else {
                throw .data("CLUSTER SHARDS: a shard without slots or nodes")
            }
            var master: RedisClusterNode?
            var masterOnline = false
            var replicas = 0
            for j in 0..<nodes.elementCount {
                let node = fields(nodes.element(j))
                guard let port = node["port"].flatMap({ Int(exactly: $0.integer) }), port > 0 else { continue }
                let role = node["role"]?.text ?? ""
                let health = node["health"]?.text ?? "online"
                var host = node["endpoint"]?.text ?? ""
                if host.isEmpty || host == "?" { host = node["ip"]?.text ?? "" }
                if host.isEmpty || host == "?" { host = seed.host }
                let address = RedisClusterNode(host: host, port: port)
                if role == "master" {
                    // After a failover the old master may still be listed with health "fail";
                    // an online master wins.
                    if master == nil || (!masterOnline && health == "online") {
                        master = address
                        masterOnline = health == "online"
                    }
                } else if health != "fail" {
                    // "loading" is a replica still taking its first copy, or one the cluster
                    // has seen no write reach yet (Redis 7.0 reports a replica at offset 0 so):
                    // it will acknowledge a WAIT once it has the data.
                    replicas += 1
                }
            }
            guard let master, slots.elementCount >= 2 else { continue }
            for k in stride(from: 0, to: slots.elementCount - 1, by: 2) {
                let low = Int(slots.element(k).integer), high = Int(slots.element(k + 1).integer)
                guard low <= high else { continue }
                map.assign(low...high, to: Shard(master: master, onlineReplicas: replicas))
            }
        }
        return map
    }

    /// The map from a `CLUSTER SLOTS` reply: per range, start, end, then the master's
    /// `[ip, port, id, …]`, then each replica's.
    static func parse(slots reply: RedisReplyView, seed: RedisClusterNode) throws(RedisFailure) -> RedisClusterMap {
        try reply.checkNotError()
        guard reply.type == REDIS_REPLY_ARRAY else { throw .data("CLUSTER SLOTS answered reply type \(reply.type), not an array") }
        var map = RedisClusterMap()
        for i in 0..<reply.elementCount {
            let range = reply.element(i)
            guard range.elementCount >= 3 else { continue }
            let low = Int(range.element(0).integer), high = Int(range.element(1).integer)
            let node = range.element(2)
            guard node.elementCount >= 2, low <= high else { continue }
            var host = node.element(0).text
            if host.isEmpty || host == "?" { host = seed.host }
            let master = RedisClusterNode(host: host, port: Int(node.element(1).integer))
            map.assign(low...high, to: Shard(master: master, onlineReplicas: range.elementCount - 3))
        }
        return map
    }

    /// The newest configuration epoch of a master in a `CLUSTER NODES` reply (0 when none):
    /// how recent the slot ownership the node knows is. A replica that takes over its master's
    /// slots does so at an epoch newer than any before, and a node that has not heard of it yet
    /// (the old master, back from a cut) knows only older ones.
    static func configEpoch(nodes: String) -> Int {
        var newest = 0
        for line in nodes.split(whereSeparator: \.isNewline) {
            // <id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <config-epoch> …
            let fields = line.split(separator: " ", maxSplits: 7)
            guard fields.count >= 7, fields[2].split(separator: ",").contains("master"), let epoch = Int(fields[6]) else { continue }
            newest = max(newest, epoch)
        }
        return newest
    }

    /// A flat `name, value, name, value…` reply (RESP2's form of a map) as a dictionary.
    private static func fields(_ reply: RedisReplyView) -> [String: RedisReplyView] {
        var result: [String: RedisReplyView] = [:]
        var k = 0
        while k + 1 < reply.elementCount {
            result[reply.element(k).text] = reply.element(k + 1)
            k += 2
        }
        return result
    }
}
