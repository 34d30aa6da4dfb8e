import CHiredis
import Foundation
import Glibc
import Synchronization
import Testing

@testable import UserSwap
@testable import UserSwapBench
@testable import UserSwapCLI
@testable import UserSwapRedis

/// The Redis Cluster device against real clusters: each test starts its own with
/// `scripts/redis-cluster` (three masters, three replicas, loopback, a random password) and
/// stops it at the end. They skip, saying so, only where redis-server or redis-cli is missing;
/// `scripts/bootstrap` installs both, so in CI they run.
@Suite(
    "Redis Cluster device", .serialized,
    .enabled(
        if: RedisClusterFixture.available,
        "redis-server or redis-cli is not installed, so the Redis Cluster device is NOT tested: run scripts/bootstrap (apt-get install redis-server redis-tools)"
    ))
struct RedisClusterBackendTests {
    // MARK: Routing and round trips

    @Test("pages round-trip through every master; our slots are CLUSTER KEYSLOT's; replicated(1) by default waits for the replica")
    func roundTrip() throws {
        let cluster = try RedisClusterFixture()
        let groups = 16
        let device = try RedisClusterBackend(pageCount: 1 + groups * 512, configuration: cluster.configuration())
        #expect(device.durability == .replicated(1), "every master has a replica: durability defaults to one copy more")
        #expect(Set(device.masters).count == 3)
        let anyPort = try #require(RedisClusterNode(cluster.seeds[0])).port
        for page in stride(from: 1, to: groups * 512, by: 397) {
            let answer = try cluster.cli(anyPort, ["CLUSTER", "KEYSLOT", device.format.key(of: page)])
            #expect(Int(answer.trimmingCharacters(in: .whitespacesAndNewlines)) == device.slot(of: page).index, "page \(page)")
        }

        // Every page of the device once: vectored runs across key groups, and single pages.
        let pages = groups * 512 - 1
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: pages * SwapPage.size, alignment: SwapPage.size)
        defer { buffer.deallocate() }
        for p in 0..<pages {
            fill(UnsafeMutableRawBufferPointer(rebasing: buffer[(p * SwapPage.size)..<((p + 1) * SwapPage.size)]), page: 1 + p)
        }
        for start in stride(from: 1, to: 1 + pages, by: 700) {
            let count = min(700, 1 + pages - start)
            try device.write(
                UnsafeRawBufferPointer(rebasing: buffer[((start - 1) * SwapPage.size)..<((start - 1 + count) * SwapPage.size)]),
                atPage: start)
        }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        for start in stride(from: 1, to: 1 + pages, by: 300) {
            let count = min(300, 1 + pages - start)
            try device.read(
                into: UnsafeMutableRawBufferPointer(
                    rebasing: buffer[((start - 1) * SwapPage.size)..<((start - 1 + count) * SwapPage.size)]), atPage: start)
        }
        #expect(
            (0..<pages).allSatisfy {
                matches(UnsafeMutableRawBufferPointer(rebasing: buffer[($0 * SwapPage.size)..<(($0 + 1) * SwapPage.size)]), page: 1 + $0)
            })
        let one = UnsafeMutableRawBufferPointer.allocate(byteCount: SwapPage.size, alignment: SwapPage.size)
        defer { one.deallocate() }
        fill(one, page: 777, generation: 3)
        try device.write(UnsafeRawBufferPointer(one), atPage: 777)
        one.initializeMemory(as: UInt8.self, repeating: 0)
        try device.read(into: one, atPage: 777)
        #expect(matches(one, page: 777, generation: 3))

        // Every master holds some of them.
        for master in device.masters {
            let port = try #require(RedisClusterNode(master)).port
            let keys = Int(try cluster.cli(port, ["DBSIZE"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            #expect(keys > 0, "master \(master) holds none of \(pages) pages")
        }
        #expect(try device.keyCount() == pages)
        let s = device.statistics
        #expect(s.waits > 0 && s.degradedWrites == 0 && s.failedCalls == 0)

        // An older write of a page put back behind our back reads as a typed error, not the page.
        let node = try #require(device.master(of: 900))
        let key = device.format.key(of: 900)
        let older = try device.router.pool(node).perform { c throws(RedisFailure) -> [UInt8] in
            var get = RedisCommand("GET")
            get.append(key)
            let reply = try c.command(get)
            return Array(reply.view.bytes)
        }
        fill(one, page: 900, generation: 1)
        try device.write(UnsafeRawBufferPointer(one), atPage: 900)
        try device.router.pool(node).perform { c throws(RedisFailure) in
            var set = RedisCommand("SET")
            set.append(key)
            older.withUnsafeBytes { set.appendExternal($0) }
            _ = try c.command(set)
        }
        #expect {
            try device.read(into: one, atPage: 900)
        } throws: { error in
            guard let e = error as? SwapError else { return false }
            return e.code == .ioError && e.message.contains("page 900") && e.message.contains("older write")
        }

        // .replicated(1): a write returns only once the replica has it. With the replica
        // stopped it waits (WAIT times out, the write goes again); let go, it completes, and the
        // replica holds the latest write.
        let master900 = try #require(device.master(of: 900))
        let replica = try cluster.replica(of: master900.port)
        try cluster.signal(replica, SIGSTOP)
        let finished = Atomic<Bool>(false)
        let writeError = Mutex<String?>(nil)
        let writer = Thread {
            let page = UnsafeMutableRawBufferPointer.allocate(byteCount: SwapPage.size, alignment: SwapPage.size)
            defer { page.deallocate() }
            fill(page, page: 900, generation: 7)
            do { try device.write(UnsafeRawBufferPointer(page), atPage: 900) } catch { writeError.withLock { $0 = "\(error)" } }
            finished.store(true, ordering: .releasing)
        }
        writer.start()
        usleep(600_000)
        let doneWhileStopped = finished.load(ordering: .acquiring)
        try cluster.signal(replica, SIGCONT)
        let resumed = ContinuousClock.now
        while !finished.load(ordering: .acquiring) && ContinuousClock.now - resumed < .seconds(5) { usleep(5_000) }
        #expect(!doneWhileStopped, "the write returned while its replica could not have it")
        #expect(
            finished.load(ordering: .acquiring) && writeError.withLock { $0 } == nil,
            "\(writeError.withLock { $0 } ?? "the write did not finish")")
        #expect(
            try Self.missing(900..<901, on: RedisClusterNode(host: "127.0.0.1", port: replica), device: device).isEmpty,
            "the replica holds the page's latest write")
        print(
            "cluster round trip: \(pages) pages on \(device.masters.count) masters; a write with its replica stopped 600 ms returned \(Int((ContinuousClock.now - resumed) / .milliseconds(1))) ms after the replica resumed"
        )

        // What a killed run leaves: `userswap redis-clean redis+cluster://… --namespace N`
        // deletes it on every master (the password from the environment; nobody else's keys).
        try cluster.cli(anyPort, ["-c", "SET", "someone-else", "1"])
        let console = CapturedConsole()
        setenv("USERSWAP_REDIS_PASSWORD", cluster.password, 1)
        defer { unsetenv("USERSWAP_REDIS_PASSWORD") }
        let invocation = try CommandLineTool.parse(["redis-clean", cluster.url, "--namespace", device.namespace]).get()
        guard case .redisClean(let options) = invocation else {
            Issue.record("redis-clean parsed as \(invocation)")
            return
        }
        try RedisCleanCommand.run(options, console: console.console)
        #expect(
            console.stdout.contains("removed \(pages) keys of namespace '\(device.namespace)' from \(cluster.url)"), "\(console.stdout)")
        #expect(try device.keyCount() == 0)
        #expect(try cluster.cli(anyPort, ["-c", "EXISTS", "someone-else"]).trimmingCharacters(in: .whitespacesAndNewlines) == "1")
    }

    @Test("redis+cluster:// URLs: seeds, password from the URL or the environment; bad ones refused")
    func urls() throws {
        let c = try RedisClusterBackend.Configuration(url: "redis+cluster://:pw@127.0.0.1:7000,[::1]:7001,node3:7002")
        #expect(c.seeds == ["127.0.0.1:7000", "[::1]:7001", "node3:7002"])
        #expect(c.password == "pw" && c.username == nil)
        #expect(c.urlWithoutCredentials == "redis+cluster://127.0.0.1:7000,[::1]:7001,node3:7002")
        let e = try RedisClusterBackend.Configuration(url: "redis+cluster://10.0.0.2:7000", environment: ["USERSWAP_REDIS_PASSWORD": "s"])
        #expect(e.password == "s")
        for bad in [
            "redis://127.0.0.1:7000", "redis+cluster://", "redis+cluster://host", "redis+cluster://h:1,h:99999", "redis+cluster://h:1,,h:2",
        ] {
            #expect(throws: SwapError.self, "\(bad)") { try RedisClusterBackend.Configuration(url: bad) }
        }
    }

    @Test(
        "bench over --device redis+cluster://: verified, sealed by default, under the compressed and encrypted tiers, durability from --param; nothing left behind"
    )
    func benchWorkloads() throws {
        let cluster = try RedisClusterFixture()
        let url = "redis+cluster://:\(cluster.password)@" + cluster.seeds.joined(separator: ",")
        for (scenario, tier, durability) in [("random", nil, nil), ("zipf", "compressed+encrypted", "primary")]
            as [(String, String?, String?)]
        {
            var parameters = ["ops": "3000"]
            if let durability { parameters["durability"] = durability }
            let json = try benchReport { folder, json in
                BenchOptions(
                    scenario: scenario, json: json, threads: 2, memoryBytes: 1 << 20, dataBytes: 4 << 20, directory: folder,
                    tier: tier, device: url, parameters: parameters, showsProgress: false)
            }
            #expect(json["verified"] as? Bool == true, "\(scenario)")
            let swap = try #require(json["swap"] as? [String: Any])
            #expect(
                swap["device"] as? String == "redis+cluster://" + cluster.seeds.joined(separator: ","),
                "the report names the cluster without its password")
            #expect(swap["encryption"] as? String == "randomKey", "a remote device is sealed by default")
            let stats = try #require(swap["redis_cluster"] as? [String: Any])
            #expect(stats["durability"] as? String == (durability == nil ? "replicated(1)" : "primary-only"))
            #expect(
                stats["masters"] as? Int == 3 && (stats["pages_written"] as? Int ?? 0) > 0 && (stats["pages_read"] as? Int ?? 0) > 0,
                "\(stats)")
            if tier != nil {
                let encrypted = try #require(swap["encrypted"] as? [String: Any])
                #expect((encrypted["sealed_pages"] as? Int ?? 0) > 0 && swap["compressed"] != nil)
            }
        }
        for seed in cluster.seeds {
            let port = try #require(RedisClusterNode(seed)).port
            #expect(
                try cluster.cli(port, ["DBSIZE"]).trimmingCharacters(in: .whitespacesAndNewlines) == "0",
                "the runs removed their keys from \(seed)")
        }
    }

    // MARK: Failures

    @Test("a master SIGKILLed under a random workload (20 % writes, data 4× the budget) with .replicated(1): nothing lost or wrong")
    func failoverReplicated() throws {
        let cluster = try RedisClusterFixture()
        let device = try RedisClusterBackend(pageCount: 1 + 8 * 512, configuration: cluster.configuration(durability: .replicated(1)))
        let frames = 256, pages = 4 * frames, threads = 3
        let space = try SwapSpace(.init(memory: frames * SwapPage.size, devices: [.backend(device)], backgroundReclaim: true))
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }
        let victim = try Self.busiestMaster(device, cluster)
        let replica = try cluster.replica(of: victim)

        let run = try Self.workload(region: region, pages: pages, threads: threads, seed: "cluster failover replicated") { stop in
            usleep(1_500_000)
            let killedAt = ContinuousClock.now
            try cluster.signal(victim, SIGKILL)
            try cluster.waitUntilMaster(replica)
            usleep(2_000_000)
            stop()
            return killedAt
        }
        #expect(run.wrong == 0, "an access saw bytes that were not the page's")
        #expect(run.errors.isEmpty, "with .replicated(1) no access may fail: \(run.errors)")
        #expect(space.checkInvariants() == [])
        let s = device.statistics
        #expect(s.connectionFailures + s.movedRedirections + s.transientRefusals > 0, "the workload must have met the dead master")
        print(
            "cluster failover, .replicated(1): \(run.ops) accesses, \(run.verified) page checks, 0 wrong; pause \(run.pauseMs) ms; \(Int(run.before)) accesses/s before the kill, \(Int(run.after)) after; backend: \(s.pagesWritten) pages written, \(s.waits) WAITs, \(s.degradedWrites) degraded (no replica left), \(s.movedRedirections) MOVED, \(s.transientRefusals) refusals, \(s.connectionFailures) connection failures, \(s.mapRefreshes) map reads"
        )
    }

    @Test(
        "with .primaryOnly a master's death loses what its replica missed: each such page is a typed error, the count matches, nothing wrong"
    )
    func failoverPrimaryOnly() throws {
        let cluster = try RedisClusterFixture()
        let groups = 96
        let device = try RedisClusterBackend(pageCount: groups * 512, configuration: cluster.configuration(durability: .primaryOnly))
        let victimNode = try #require(device.master(of: 1))
        let victim = victimNode.port
        let replica = try cluster.replica(of: victim)
        // Up to 24 key groups on the victim (48 MiB: more than the socket buffers between it and
        // its stopped replica hold, 32 MiB + 4 MiB at most here) and 4 elsewhere.
        let all = (0..<groups).map { g in max(1, g * 512)..<((g + 1) * 512) }
        let onVictim = Array(all.filter { device.master(of: $0.lowerBound) == victimNode }.prefix(24))
        let elsewhere = Array(all.filter { device.master(of: $0.lowerBound) != victimNode }.prefix(4))
        try #require(onVictim.count >= 16)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 512 * SwapPage.size, alignment: SwapPage.size)
        defer { buffer.deallocate() }
        let write = { (range: Range<Int>, generation: Int) throws in try Self.write(device, range, generation: generation, buffer: buffer) }
        // First a quarter of the victim's groups, and the others; all replicated.
        for (i, r) in onVictim.enumerated() where i % 4 == 0 { try write(r, 1) }
        for r in elsewhere { try write(r, 1) }
        try Self.waitForReplica(cluster, master: victim)
        // The replica stops listening; every victim group is written (again), then the master dies.
        try cluster.signal(replica, SIGSTOP)
        for r in onVictim { try write(r, 2) }
        for r in elsewhere { try write(r, 2) }
        try cluster.signal(victim, SIGKILL)
        try cluster.signal(replica, SIGCONT)
        try cluster.waitUntilMaster(replica)

        // What the promoted replica really holds: a page is missed when its key is absent or
        // not the latest write.
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: SwapPage.size, alignment: SwapPage.size)
        defer { scratch.deallocate() }
        var missed = Set<Int>()
        for r in onVictim { missed.formUnion(try Self.missing(r, on: RedisClusterNode(host: "127.0.0.1", port: replica), device: device)) }
        // Through the device: every page is the latest write or a typed error naming it.
        var lost = Set<Int>(), wrong = 0, intact = 0
        for r in onVictim + elsewhere {
            for p in r {
                switch Self.readOutcome(device, page: p, into: scratch) {
                case .intact: intact += 1
                case .wrong: wrong += 1
                case .lost: lost.insert(p)
                }
            }
        }
        #expect(wrong == 0, "a read returned bytes that were not the page's latest write")
        #expect(missed.count > 0, "the replica must have missed writes for this test to prove anything")
        #expect(lost == missed, "typed errors for exactly the pages the replica missed: \(lost.count) errors, \(missed.count) missed")
        #expect(lost.allSatisfy { p in onVictim.contains { $0.contains(p) } })
        let olderWrites = missed.filter { p in onVictim.enumerated().contains { $0.offset % 4 == 0 && $0.element.contains(p) } }.count
        print(
            "cluster failover, .primaryOnly: \(intact) pages intact, \(lost.count) lost as typed errors (\(olderWrites) of them older writes, \(lost.count - olderWrites) missing), the promoted replica missed \(missed.count), 0 wrong"
        )
    }

    @Test("half the slots of one master resharded during a run: every page verified")
    func resharding() throws {
        let cluster = try RedisClusterFixture()
        // A namespace whose first key group hashes into the lower half of a master's slots
        // (`redis-cli --cluster create` gives three masters 0…5460, 5461…10922, 10923…16383),
        // the half that `--cluster reshard` moves (it takes a source's lowest slots first).
        let namespace = try #require(
            (0..<10_000).lazy.map { "reshard-\($0)" }.first { ns in
                RedisHashSlot(key: RedisPageFormat(namespace: ns, instance: 1).key(of: 1)).index % 5461 < 2700
            })
        var configuration = cluster.configuration()
        configuration.namespace = namespace
        let device = try RedisClusterBackend(pageCount: 1 + 8 * 512, configuration: configuration)
        let source = try #require(device.master(of: 1))
        let target = try #require(device.masters.compactMap(RedisClusterNode.init).first { $0 != source })
        let map = device.router.map
        let moving = (0..<RedisHashSlot.count).filter { map.shard(of: RedisHashSlot($0))?.master == source }.prefix(2730)
        try #require(moving.contains(device.slot(of: 1).index), "the first key group must be among the slots that move")
        let frames = 256, pages = 4 * frames
        let space = try SwapSpace(.init(memory: frames * SwapPage.size, devices: [.backend(device)], backgroundReclaim: true))
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }
        let sourceID = try cluster.nodeID(source.port), targetID = try cluster.nodeID(target.port)
        let reshardError = Mutex<String?>(nil)
        let run = try Self.workload(region: region, pages: pages, threads: 2, seed: "cluster resharding") { stop in
            usleep(300_000)
            let began = ContinuousClock.now
            do {
                try cluster.cli(
                    source.port,
                    [
                        "--cluster", "reshard", "127.0.0.1:\(source.port)", "--cluster-from", sourceID,
                        "--cluster-to", targetID, "--cluster-slots", "2730", "--cluster-yes",
                    ])
            } catch {
                reshardError.withLock { $0 = "\(error)" }
            }
            usleep(300_000)
            stop()
            return began
        }
        #expect(reshardError.withLock { $0 } == nil)
        #expect(run.wrong == 0 && run.errors.isEmpty, "\(run.errors)")
        #expect(space.checkInvariants() == [])
        let s = device.statistics
        #expect(s.movedRedirections + s.askRedirections > 0, "the run must have met the moving slots")
        #expect(device.master(of: 1) == target, "slot \(device.slot(of: 1).index) now lives on \(target)")
        print(
            "cluster resharding (2730 slots \(source) → \(target)): \(run.ops) accesses, \(run.verified) page checks, 0 wrong, 0 errors; \(s.movedRedirections) MOVED, \(s.askRedirections) ASK, \(s.transientRefusals) TRYAGAIN/CLUSTERDOWN, \(s.mapRefreshes) map reads; longest access \(run.pauseMs) ms"
        )
    }

    @Test("the whole cluster down: a typed error within the failover timeout, no hang, no bytes")
    func wholeClusterDown() throws {
        let cluster = try RedisClusterFixture()
        let device = try RedisClusterBackend(pageCount: 1 + 2 * 512, configuration: cluster.configuration(failoverTimeout: .seconds(1)))
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: SwapPage.size, alignment: SwapPage.size)
        defer { page.deallocate() }
        fill(page, page: 5)
        try device.write(UnsafeRawBufferPointer(page), atPage: 5)
        for seed in cluster.seeds { try cluster.signal(try #require(RedisClusterNode(seed)).port, SIGKILL) }
        for attempt in ["read", "write"] {
            page.initializeMemory(as: UInt8.self, repeating: 0xA5)
            let start = ContinuousClock.now
            #expect {
                if attempt == "read" {
                    try device.read(into: page, atPage: 5)
                } else {
                    try device.write(UnsafeRawBufferPointer(page), atPage: 6)
                }
            } throws: { error in
                (error as? SwapError)?.code == .deviceGone
            }
            let took = ContinuousClock.now - start
            #expect(took < .seconds(3), "\(attempt) took \(took): the failover timeout is 1 s")
            #expect(page.allSatisfy { $0 == 0xA5 }, "a failed read leaves the buffer alone")
            print("whole cluster down: \(attempt) failed in \(took)")
        }
    }

    @Test(
        "masters restarted empty: each page comes back from the replica that took over, or as a typed error naming it (counted), never wrong"
    )
    func nodesRestartedEmpty() throws {
        let cluster = try RedisClusterFixture()
        let groups = 24
        let device = try RedisClusterBackend(pageCount: groups * 512, configuration: cluster.configuration(durability: .replicated(1)))
        let all = (0..<groups).map { g in max(1, g * 512)..<((g + 1) * 512) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 512 * SwapPage.size, alignment: SwapPage.size)
        defer { buffer.deallocate() }
        for r in all { try Self.write(device, r, generation: 2, buffer: buffer) }
        let masters = try device.masters.map { try #require(RedisClusterNode($0)).port }
        // A: killed and started again at once, before the cluster notices (node timeout 1 s): it
        // comes back a master of its slots with no data, and its replica resyncs from it.
        // B: killed, its replica promoted, then started again: it rejoins as that replica's
        // replica, and its pages are served by the node that took over.
        let a = try #require(device.master(of: 1)).port
        let b = try #require(masters.first { $0 != a })
        let aNode = RedisClusterNode(host: "127.0.0.1", port: a), bNode = RedisClusterNode(host: "127.0.0.1", port: b)
        let onA = all.filter { device.master(of: $0.lowerBound) == aNode }
        let onB = all.filter { device.master(of: $0.lowerBound) == bNode }
        try #require(!onA.isEmpty && !onB.isEmpty)
        let bReplica = try cluster.replica(of: b)
        try cluster.signal(a, SIGKILL)
        try cluster.startNode(a)
        try cluster.waitUntilOK(a)
        try cluster.signal(b, SIGKILL)
        try cluster.waitUntilMaster(bReplica)
        try cluster.startNode(b)
        try cluster.waitUntilReplica(b)
        let aReplica = try cluster.replica(of: a)
        try cluster.waitUntilReplica(aReplica)

        // What the serving masters really hold, asked directly; then every page through the device.
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: SwapPage.size, alignment: SwapPage.size)
        defer { scratch.deallocate() }
        try device.router.refresh()
        var missed = Set<Int>()
        for r in all { missed.formUnion(try Self.missing(r, on: try #require(device.master(of: r.lowerBound)), device: device)) }
        let before = device.statistics
        var lost = Set<Int>(), wrong = 0, intact = 0
        for r in all {
            for p in r {
                switch Self.readOutcome(device, page: p, into: scratch) {
                case .intact: intact += 1
                case .wrong: wrong += 1
                case .lost: lost.insert(p)
                }
            }
        }
        let after = device.statistics
        #expect(wrong == 0, "a read returned bytes that were not the page's latest write")
        #expect(
            lost == missed, "typed errors for exactly the pages the serving masters lack: \(lost.count) errors, \(missed.count) missing")
        #expect(lost.allSatisfy { p in onA.contains { $0.contains(p) } }, "only the node restarted before a failover loses pages")
        #expect(onB.allSatisfy { r in r.allSatisfy { !lost.contains($0) } }, "B's pages come from the replica that took over")
        #expect(after.lostPages - before.lostPages == lost.count, "the device counts each lost page")
        #expect(after.failedCalls - before.failedCalls == lost.count, "each lost page failed its read")
        // The device goes on: the lost pages written again read back.
        for r in onA { try Self.write(device, r, generation: 2, buffer: buffer) }
        #expect(onA.allSatisfy { r in r.allSatisfy { Self.readOutcome(device, page: $0, into: scratch) == .intact } })
        print(
            "masters restarted empty: \(intact) pages intact (B's \(onB.reduce(0) { $0 + $1.count }) from its promoted replica), \(lost.count) lost as typed errors (A's \(onA.reduce(0) { $0 + $1.count }); its replica resynced from the empty master), counted \(after.lostPages - before.lostPages), 0 wrong; written again, all read back"
        )
    }

    @Test(
        "a master paused (CLIENT PAUSE ALL): a short pause is waited out, a long one is a typed error within the failover timeout; the other masters serve on"
    )
    func pausedMaster() throws {
        let cluster = try RedisClusterFixture()
        var configuration = cluster.configuration(durability: .replicated(1), failoverTimeout: .seconds(1))
        configuration.commandTimeout = .milliseconds(300)
        let device = try RedisClusterBackend(pageCount: 1 + 16 * 512, configuration: configuration)
        let victim = try #require(device.master(of: 1))
        let elsewhere = try #require((1..<16).map { $0 * 512 }.first { device.master(of: $0) != victim })
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: SwapPage.size, alignment: SwapPage.size)
        defer { page.deallocate() }
        for p in [1, 2, elsewhere] {
            fill(page, page: p, generation: 2)
            try device.write(UnsafeRawBufferPointer(page), atPage: p)
        }
        func timed(_ body: () throws -> Void) rethrows -> Duration {
            let start = ContinuousClock.now
            try body()
            return ContinuousClock.now - start
        }

        // 400 ms, shorter than the failover timeout: the read waits it out.
        try cluster.cli(victim.port, ["CLIENT", "PAUSE", "400", "ALL"])
        let short = timed { #expect(Self.readOutcome(device, page: 1, into: page) == .intact) }
        #expect(short < .milliseconds(1500), "a 400 ms pause held a read \(short)")

        // 6 s: the paused node's pages fail with deviceGone once the failover timeout (1 s) has
        // passed, no later than the attempt under way then (a command timeout, 300 ms, and a
        // backoff of at most 200 ms) and some slack for a loaded machine; the buffer is left
        // alone; the other masters answer as before. The pause outlasts both failed calls
        // with room to spare: a call that starts as it ends would succeed.
        try cluster.cli(victim.port, ["CLIENT", "PAUSE", "6000", "ALL"])
        let pausedAt = ContinuousClock.now
        let other = timed { #expect(Self.readOutcome(device, page: elsewhere, into: page) == .intact) }
        #expect(other < .milliseconds(500), "a read on a master that is not paused took \(other)")
        var outcomes: [String: Duration] = [:]
        for attempt in ["read", "write"] {
            page.initializeMemory(as: UInt8.self, repeating: 0xA5)
            outcomes[attempt] = timed {
                #expect {
                    if attempt == "read" {
                        try device.read(into: page, atPage: 1)
                    } else {
                        try device.write(UnsafeRawBufferPointer(page), atPage: 1)
                    }
                } throws: { error in
                    let e = error as? SwapError
                    return e?.code == .deviceGone && e?.message.contains("device pages 1") == true
                }
            }
            #expect(page.allSatisfy { $0 == 0xA5 }, "a failed \(attempt) leaves the buffer alone")
            let took = outcomes[attempt]!
            #expect(took >= .milliseconds(900) && took < .milliseconds(2500), "\(attempt) failed after \(took): failover timeout 1 s")
        }
        // Once the pause is over the node serves again (page 2: the failed write of page 1
        // made its older value stale on purpose).
        let left = .milliseconds(6200) - (ContinuousClock.now - pausedAt)
        if left > .zero { usleep(UInt32(left / .microseconds(1))) }
        #expect(Self.readOutcome(device, page: 2, into: page) == .intact)
        let s = device.statistics
        #expect(s.connectionFailures > 0 && s.failedCalls == 2 && s.lostPages == 0, "\(s)")
        print(
            "paused master: a 400 ms pause held a read \(short); under a 6 s pause the other masters answered in \(other), the paused one's read failed after \(outcomes["read"]!), its write after \(outcomes["write"]!) (deviceGone); \(s.connectionFailures) connection failures"
        )
    }

    @Test(
        "a master cut off past the node timeout (SIGSTOP) under a workload: its replica takes over, the old master returns as a replica; nothing wrong or lost"
    )
    func partitionedMaster() throws {
        let cluster = try RedisClusterFixture()
        let device = try RedisClusterBackend(pageCount: 1 + 8 * 512, configuration: cluster.configuration(durability: .replicated(1)))
        let frames = 256, pages = 4 * frames
        let space = try SwapSpace(.init(memory: frames * SwapPage.size, devices: [.backend(device)], backgroundReclaim: true))
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }
        let victim = try Self.busiestMaster(device, cluster)
        let replica = try cluster.replica(of: victim)
        let run = try Self.workload(region: region, pages: pages, threads: 2, seed: "cluster partition") { stop in
            usleep(1_000_000)
            let cutAt = ContinuousClock.now
            try cluster.signal(victim, SIGSTOP)
            try cluster.waitUntilMaster(replica)
            try cluster.signal(victim, SIGCONT)
            try cluster.waitUntilReplica(victim)
            usleep(1_000_000)
            stop()
            return cutAt
        }
        #expect(run.wrong == 0, "an access saw bytes that were not the page's")
        #expect(run.errors.isEmpty, "with .replicated(1) no access may fail: \(run.errors)")
        #expect(space.checkInvariants() == [])
        let s = device.statistics
        #expect(s.lostPages == 0 && s.connectionFailures + s.movedRedirections + s.transientRefusals > 0, "\(s)")
        print(
            "partitioned master: \(run.ops) accesses, \(run.verified) page checks, 0 wrong, 0 errors; pause \(run.pauseMs) ms; \(Int(run.before)) accesses/s before the cut, \(Int(run.after)) after; \(s.connectionFailures) connection failures, \(s.movedRedirections) MOVED, \(s.transientRefusals) refusals, \(s.degradedWrites) degraded writes"
        )
    }

    @Test(
        "a master cut off past the node timeout comes back believing it still serves its slots: the router keeps the newer view its replica's election made"
    )
    func staleMasterView() throws {
        let cluster = try RedisClusterFixture()
        let device = try RedisClusterBackend(pageCount: 1 + 8 * 512, configuration: cluster.configuration())
        let page = 100
        let victim = try #require(device.master(of: page))
        let replica = try cluster.replica(of: victim.port)
        let before = device.router.epoch
        #expect(before > 0, "CLUSTER NODES gave no master configuration epoch")

        // A connection made before the cut: its question waits in the stopped node's socket and
        // is answered the moment it runs again, from the view it had when it stopped.
        let connection = try _RedisConnection(device.configuration.endpoint(victim))
        try cluster.signal(victim.port, SIGSTOP)
        try cluster.waitUntilMaster(replica)
        // The other masters hear of the new master a moment after it calls itself one.
        let start = ContinuousClock.now
        repeat {
            try device.router.refresh()
        } while device.master(of: page)?.port != replica && ContinuousClock.now - start < .seconds(20)
        let elected = device.router.epoch
        #expect(elected > before, "the election raised no epoch: \(before) → \(elected)")
        #expect(device.master(of: page)?.port == replica)
        var nodes = RedisCommand("CLUSTER")
        nodes.append("NODES")
        var shards = RedisCommand("CLUSTER")
        shards.append("SHARDS")
        try connection.append(nodes)
        try connection.append(shards)
        try cluster.signal(victim.port, SIGCONT)
        let nodesReply = try connection.nextReply()
        let shardsReply = try connection.nextReply()
        let victimEpoch = RedisClusterMap.configEpoch(nodes: nodesReply.view.text)
        let victimMap = try RedisClusterMap.parse(shards: shardsReply.view, seed: victim)
        let stale = victimMap.shard(of: device.slot(of: page))?.master == victim
        #expect(
            stale == (victimEpoch < elected),
            "the old master's view at epoch \(victimEpoch) (election: \(elected)) names \(stale ? "it" : "its replica")")

        // Offered the old master's answer, the router keeps the map it has when that answer is
        // older; an answer at the current epoch is taken. Either way the page's slot stays with
        // the node that won the election.
        let kept = device.router.keep(victimMap, epoch: victimEpoch)
        #expect(kept == (victimEpoch >= elected))
        #expect(device.master(of: page)?.port == replica, "the router went back to the old master (epoch \(victimEpoch) < \(elected))")
        // The same answer, made older than the current map: always refused.
        #expect(!device.router.keep(victimMap, epoch: elected - 1))
        #expect(device.master(of: page)?.port == replica)
        try cluster.waitUntilReplica(victim.port)
        try device.router.refresh()
        #expect(device.master(of: page)?.port == replica && device.statistics.staleMaps >= 1)
        print(
            "stale master view: the old master answered \(stale ? "as master" : "as replica already") at epoch \(victimEpoch), the election's is \(elected)"
        )
    }

    // MARK: Helpers

    enum ReadOutcome: Equatable { case intact, wrong, lost }

    /// Reads `page` (latest write: generation 2): intact, wrong bytes, or a typed error naming it.
    static func readOutcome(_ device: RedisClusterBackend, page: Int, into scratch: UnsafeMutableRawBufferPointer) -> ReadOutcome {
        do {
            try device.read(into: scratch, atPage: page)
            return matches(scratch, page: page, generation: 2) ? .intact : .wrong
        } catch {
            return error.code == .ioError && error.message.contains("page \(page) ") ? .lost : .wrong
        }
    }

    /// Writes `range` (pages of one key group) filled for `generation`.
    static func write(_ device: RedisClusterBackend, _ range: Range<Int>, generation: Int, buffer: UnsafeMutableRawBufferPointer) throws {
        for (i, p) in range.enumerated() {
            fill(
                UnsafeMutableRawBufferPointer(rebasing: buffer[(i * SwapPage.size)..<((i + 1) * SwapPage.size)]), page: p,
                generation: generation)
        }
        try device.write(UnsafeRawBufferPointer(rebasing: buffer[0..<(range.count * SwapPage.size)]), atPage: range.lowerBound)
    }

    /// The pages of `range` (one key group) whose latest write `node` (a master or a replica)
    /// does not hold, asked directly (MGET, each value checked against the device's write
    /// generations).
    static func missing(_ range: Range<Int>, on node: RedisClusterNode, device: RedisClusterBackend) throws -> Set<Int> {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: SwapPage.size, alignment: SwapPage.size)
        defer { scratch.deallocate() }
        var mget = RedisCommand("MGET")
        for p in range { mget.appendKey(of: p, format: device.format) }
        let connection = try _RedisConnection(device.configuration.endpoint(node))
        // A replica answers reads of its master's slots only after READONLY.
        let readOnly = try connection.command(RedisCommand("READONLY"))
        try readOnly.view.checkOK("READONLY")
        let reply = try connection.command(mget)
        guard reply.view.elementCount == range.count else { throw SwapTestFailure("MGET on \(node) answered '\(reply.view.text)'") }
        var missed = Set<Int>()
        for (j, p) in range.enumerated() {
            let value = reply.view.element(j)
            if value.isNil
                || device.format.decode(page: p, generation: device.generations.current(p), value: value.bytes, into: scratch.baseAddress!)
                    != nil
            {
                missed.insert(p)
            }
        }
        return missed
    }

    /// The master holding most of the device's keys.
    static func busiestMaster(_ device: RedisClusterBackend, _ cluster: RedisClusterFixture) throws -> Int {
        var best = (port: 0, keys: -1)
        for master in device.masters {
            let port = try #require(RedisClusterNode(master)).port
            let keys = Int(try cluster.cli(port, ["DBSIZE"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            if keys > best.keys { best = (port, keys) }
        }
        return best.port
    }

    /// Waits until the replica of `master` has everything the master has.
    static func waitForReplica(_ cluster: RedisClusterFixture, master: Int) throws {
        for _ in 0..<200 {
            let info = try cluster.cli(master, ["INFO", "replication"])
            let lines = info.split(whereSeparator: \.isNewline)
            let offset = lines.first { $0.hasPrefix("master_repl_offset:") }.flatMap { Int($0.split(separator: ":")[1]) }
            let replicaOffset = lines.first { $0.hasPrefix("slave0:") }?.split(separator: ",")
                .first { $0.hasPrefix("offset=") }.flatMap { Int($0.dropFirst("offset=".count)) }
            if let offset, let replicaOffset, replicaOffset >= offset { return }
            usleep(20_000)
        }
        throw SwapTestFailure("the replica of \(master) did not catch up")
    }

    struct WorkloadRun {
        var ops = 0, verified = 0, wrong = 0
        var errors: [String: Int] = [:]
        /// The longest wait between two completed accesses after the event, in ms.
        var pauseMs = 0
        /// Accesses per second in the second before the event and in the last second.
        var before = 0.0, after = 0.0
    }

    /// `threads` threads do random accesses (20 % writes) on `region` until `control` calls its
    /// stop function; `control` returns when its event happened. Every page is checked at the end.
    static func workload(
        region: Region, pages: Int, threads: Int, seed: String,
        control: @escaping @Sendable (_ stop: @escaping @Sendable () -> Void) throws -> ContinuousClock.Instant
    ) throws -> WorkloadRun {
        let stopped = Atomic<Bool>(false)
        let wrong = Atomic<Int>(0), verified = Atomic<Int>(0)
        let errors = Mutex([String: Int]())
        let generations = Mutex([Int](repeating: 0, count: pages))
        let completions = Mutex([ContinuousClock.Instant]())
        let event = Mutex<ContinuousClock.Instant?>(nil)
        let controlError = Mutex<String?>(nil)
        var rng = SeededRandom.fromEnvironment(seed)
        let seeds = (0..<threads).map { _ in rng.next() }
        runThreads(threads + 1) { t in
            if t == threads {
                do {
                    let at = try control { stopped.store(true, ordering: .releasing) }
                    event.withLock { $0 = at }
                } catch {
                    controlError.withLock { $0 = "\(error)" }
                    stopped.store(true, ordering: .releasing)
                }
                return
            }
            var local = SeededRandom(seed: seeds[t])
            var gens = [Int](repeating: 0, count: pages)
            var done: [ContinuousClock.Instant] = []
            while !stopped.load(ordering: .acquiring) {
                let p = Int.random(in: 0..<(pages / threads), using: &local) * threads + t
                do {
                    if Int.random(in: 0..<10, using: &local) < 2 {
                        try region.withPage(p, for: .write) { bytes in
                            gens[p] += 1
                            fill(bytes, page: p, generation: gens[p])
                        }
                    } else {
                        _ = try region.withPage(p, for: .read) { bytes in
                            if matches(bytes, page: p, generation: gens[p]) {
                                verified.add(1, ordering: .relaxed)
                            } else {
                                wrong.add(1, ordering: .relaxed)
                            }
                        }
                    }
                } catch {
                    errors.withLock { $0["\(error)".prefix(160).description, default: 0] += 1 }
                }
                done.append(.now)
            }
            generations.withLock { g in for p in 0..<pages where p % threads == t { g[p] = gens[p] } }
            completions.withLock { $0 += done }
        }
        if let problem = controlError.withLock({ $0 }) { throw SwapTestFailure("the workload's controller failed: \(problem)") }
        let final = generations.withLock { $0 }
        for p in 0..<pages {
            _ = try region.withPage(p, for: .read) { bytes in
                if matches(bytes, page: p, generation: final[p]) {
                    verified.add(1, ordering: .relaxed)
                } else {
                    wrong.add(1, ordering: .relaxed)
                }
            }
        }
        var run = WorkloadRun()
        let times = completions.withLock { $0 }.sorted()
        run.ops = times.count
        run.verified = verified.load(ordering: .relaxed)
        run.wrong = wrong.load(ordering: .relaxed)
        run.errors = errors.withLock { $0 }
        if let at = event.withLock({ $0 }), let last = times.last {
            run.before = Double(times.filter { $0 >= at - .seconds(1) && $0 < at }.count)
            run.after = Double(times.filter { $0 > last - .seconds(1) }.count)
            var previous = times.last { $0 < at } ?? at
            var longest = Duration.zero
            for t in times where t >= at {
                longest = max(longest, t - previous)
                previous = t
            }
            run.pauseMs = Int(longest / .milliseconds(1))
        }
        return run
    }
}
