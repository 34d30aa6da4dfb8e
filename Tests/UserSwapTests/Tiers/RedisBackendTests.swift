import CHiredis
import Foundation
import Glibc
import Synchronization
import Testing

@testable import UserSwap
@testable import UserSwapRedis

/// The Redis backend against real servers: each test starts its own private `redis-server`
/// (`RedisServerProcess`: a unix socket in a private folder, a random password, no persistence)
/// and kills it at the end. They skip, saying so, only where no
/// `redis-server` binary exists; `scripts/bootstrap` installs one, so in CI they run.
@Suite(
    "Redis backend", .serialized,
    .enabled(
        if: RedisServerProcess.executable != nil,
        "redis-server is not installed, so the Redis backend is NOT tested: run scripts/bootstrap (apt-get install redis-server)"))
struct RedisBackendTests {
    // MARK: Transfers

    @Test("single pages and vectored runs round-trip, across key groups, one key per page")
    func roundTrip() throws {
        let server = try RedisServerProcess()
        let redis = try RedisBackend(pageCount: 1 + 2 * 512, configuration: server.configuration)
        let page = Pages(1)
        fill(page[0], page: 1)
        try redis.write(UnsafeRawBufferPointer(page.all), atPage: 1)
        // 505..<520 crosses the boundary between key groups 0 and 1, in three buffers.
        let run = Pages(15)
        for i in 0..<15 { fill(run[i], page: 505 + i, generation: 3) }
        let pieces = [run.slice(0..<4), run.slice(4..<5), run.slice(5..<15)].map { UnsafeRawBufferPointer($0) }
        try pieces.withUnsafeBufferPointer { try redis.write($0, atPage: 505) }

        let back = Pages(15)
        let parts = [back.slice(0..<10), back.slice(10..<15)]
        try parts.withUnsafeBufferPointer { try redis.read(into: $0, atPage: 505) }
        for i in 0..<15 { #expect(matches(back[i], page: 505 + i, generation: 3)) }
        let one = Pages(1)
        try redis.read(into: one.all, atPage: 1)
        #expect(matches(one[0], page: 1))
        // A plain multi-page buffer, and a single page out of the vectored run.
        try redis.read(into: back.slice(0..<3), atPage: 510)
        for i in 0..<3 { #expect(matches(back[i], page: 510 + i, generation: 3)) }
        try redis.read(into: one.all, atPage: 519)
        #expect(matches(one[0], page: 519, generation: 3))

        #expect(try redis.serverStatus().keys == 16)
        let key = redis.format.key(of: 512)
        #expect(key == "{\(redis.namespace)/1}0")
        #expect(try Raw(server).command("STRLEN", key).integer == Int64(RedisPageFormat.valueSize))
        let stats = redis.statistics
        #expect(stats.pagesWritten == 16 && stats.writeCalls == 2)
        #expect(stats.pagesRead == 15 + 1 + 3 + 1 && stats.readCalls == 4)
    }

    @Test("page 0, the header, is refused as on the other backends")
    func pageZero() async throws {
        let server = try RedisServerProcess()
        // The exit test runs in a child process that inherits the environment.
        setenv("USERSWAP_TEST_REDIS_SOCKET", server.socketPath, 1)
        setenv("USERSWAP_TEST_REDIS_PASSWORD", server.password, 1)
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let redis = try RedisBackend(
                pageCount: 1 + 512,
                configuration: .init(
                    socketPath: String(cString: getenv("USERSWAP_TEST_REDIS_SOCKET")),
                    password: String(cString: getenv("USERSWAP_TEST_REDIS_PASSWORD"))))
            let page = Pages(1)
            try redis.read(into: page.all, atPage: 0)
        }
        // The child dies on the transfer's precondition, not on a failed connection or setup.
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(stderr.contains("outside the device's 1..<513 (page 0 is the header)"), "the child's stderr: \(stderr)")
    }

    @Test("configuration from redis:// and unix:// URLs, the password from the environment, and bad settings refused")
    func urls() throws {
        let a = try RedisBackend.Configuration(url: "redis://127.0.0.1:6390")
        #expect(a.host == "127.0.0.1" && a.port == 6390 && a.password == nil && a.database == 0)
        let b = try RedisBackend.Configuration(url: "redis://swap:s3cret@10.0.0.2/3")
        #expect(b.host == "10.0.0.2" && b.port == 6379 && b.username == "swap" && b.password == "s3cret" && b.database == 3)
        #expect(b.urlWithoutCredentials == "redis://10.0.0.2:6379/3")
        let c = try RedisBackend.Configuration(url: "redis://:pw@[::1]:7000")
        #expect(c.host == "::1" && c.port == 7000 && c.username == nil && c.password == "pw")
        #expect(c.urlWithoutCredentials == "redis://[::1]:7000")
        let u = try RedisBackend.Configuration(url: "unix://:pw@/run/redis/redis.sock?db=2")
        #expect(u.socketPath == "/run/redis/redis.sock" && u.password == "pw" && u.database == 2)
        #expect(u.urlWithoutCredentials == "unix:///run/redis/redis.sock?db=2")
        // Precedence: the URL's password, else the environment's, else none.
        let environment = ["USERSWAP_REDIS_PASSWORD": "from-env"]
        #expect(try RedisBackend.Configuration(url: "redis://127.0.0.1", environment: environment).password == "from-env")
        #expect(try RedisBackend.Configuration(url: "redis://:in-url@127.0.0.1", environment: environment).password == "in-url")
        #expect(try RedisBackend.Configuration(url: "unix:///x.sock", environment: environment).password == "from-env")
        #expect(try RedisBackend.Configuration(url: "redis://127.0.0.1").password == nil)
        for bad in [
            "rediss://127.0.0.1", "redis://127.0.0.1:http", "redis://127.0.0.1:0", "http://x", "unix://relative.sock",
            "unix:///x.sock?timeout=3",
        ] {
            #expect(throws: SwapError.self, "\(bad)") { _ = try RedisBackend.Configuration(url: bad) }
        }
        // A URL that does not parse is named without its password.
        do { _ = try RedisBackend.Configuration(url: "redis://u:hunter2@host:port") } catch {
            #expect(!error.message.contains("hunter2") && error.message.contains("***@host"), "\(error)")
        }
        #expect(throws: SwapError(.invalidArgument, "")) {
            _ = try RedisBackend(pageCount: 1 + 512, configuration: .init(namespace: "has{brace}"))
        }
    }

    // MARK: Values the backend did not write

    @Test("a value that is missing, short, stale, misplaced or altered is a typed error, never a page")
    func refusedValues() throws {
        let server = try RedisServerProcess()
        let raw = try Raw(server)
        let redis = try RedisBackend(pageCount: 1 + 512, configuration: server.configuration)
        let page = Pages(1)
        for p in 1...6 {
            fill(page[0], page: p)
            try redis.write(UnsafeRawBufferPointer(page.all), atPage: p)
        }
        func readError(_ p: Int) -> SwapError? {
            page[0].initializeMemory(as: UInt8.self, repeating: 0xAB)
            do {
                try redis.read(into: page.all, atPage: p)
                return nil
            } catch { return error }
        }
        // Never written.
        let missing = readError(9)
        #expect(missing?.code == .ioError && missing?.message.contains("has no value") == true)
        // Deleted behind our back.
        _ = try raw.command("DEL", redis.format.key(of: 1))
        #expect(readError(1)?.message.contains("has no value") == true)
        // Wrong length.
        _ = try raw.command("SET", redis.format.key(of: 2), "short")
        #expect(readError(2)?.message.contains("not the 4128 of a UserSwap page") == true)
        // One byte of the page flipped.
        _ = try raw.command("SETRANGE", redis.format.key(of: 3), "100", "X")
        #expect(readError(3)?.message.contains("checksum") == true)
        // Page 5's value under page 4's key.
        _ = try raw.command("COPY", redis.format.key(of: 5), redis.format.key(of: 4), "REPLACE")
        #expect(readError(4)?.message.contains("holds page 5") == true)
        // Another device instance (an earlier run) with the same namespace wrote page 6.
        let other = try RedisBackend(
            pageCount: 1 + 512, configuration: .init(socketPath: server.socketPath, password: server.password, namespace: redis.namespace))
        fill(page[0], page: 6, generation: 9)
        try other.write(UnsafeRawBufferPointer(page.all), atPage: 6)
        let stale = readError(6)
        #expect(stale?.code == .ioError && stale?.message.contains("stale") == true)
        // A refused value never reaches the caller's buffer, and a vectored read fails whole.
        #expect(page.all.allSatisfy { $0 == 0xAB })
        let two = Pages(2)
        #expect(throws: SwapError.self) { try redis.read(into: two.all, atPage: 5) }
        #expect(redis.statistics.failedCalls == 7)
        print("refused values: \(missing!)")
    }

    // MARK: A server that is not there

    @Test("no server at the address: a typed error at once, not a hang")
    func unreachable() throws {
        let port = try RedisServerProcess.freePort()
        let start = ContinuousClock.now
        var caught: SwapError?
        do { _ = try RedisBackend(pageCount: 1 + 512, configuration: .init(port: port)) } catch { caught = error }
        let elapsed = ContinuousClock.now - start
        #expect(caught?.code == .deviceGone)
        #expect(caught?.message.hasPrefix("Redis at 127.0.0.1:\(port) is not answering: ") == true)
        #expect(elapsed < .seconds(2), "a refused connection is retried 3 times after 10, 20 and 40 ms, no more")
        print("unreachable: \(caught!) after \(elapsed)")
    }

    @Test("a frozen server costs one command timeout, then calls fail at once until the next probe; thawed, it answers again")
    func frozenServer() throws {
        let server = try RedisServerProcess()
        let window = Duration.milliseconds(400)
        let redis = try RedisBackend(
            pageCount: 1 + 512,
            configuration: .init(
                socketPath: server.socketPath, password: server.password, connectTimeout: .milliseconds(300),
                commandTimeout: .milliseconds(300), failFastWindow: window))
        let page = Pages(1)
        fill(page[0], page: 1)
        try redis.write(UnsafeRawBufferPointer(page.all), atPage: 1)
        server.pause()
        defer { server.resume() }
        func attempt(_ operation: String) -> (SwapError?, Duration) {
            let start = ContinuousClock.now
            do {
                if operation == "write" {
                    try redis.write(UnsafeRawBufferPointer(page.all), atPage: 2)
                } else {
                    try redis.read(into: page.all, atPage: 1)
                }
                return (nil, ContinuousClock.now - start)
            } catch {
                return (error, ContinuousClock.now - start)
            }
        }
        // The first call waits out its timeout (a stopped server still completes the TCP
        // handshake, so it is the command that times out), and is not retried.
        let (first, waited) = attempt("write")
        #expect(first?.code == .deviceGone && first?.errno == .timedOut, "\(String(describing: first))")
        #expect(waited >= .milliseconds(250) && waited < .seconds(2), "the first call took \(waited)")
        // The next ones fail at once, with the same error.
        let (fast, instant) = attempt("read")
        #expect(fast?.code == .deviceGone && fast?.errno == .timedOut && fast?.message.contains("calls fail at once") == true)
        #expect(instant < .milliseconds(100), "a call inside the window took \(instant)")
        // After the window one call tries again (and times out again).
        usleep(UInt32(450_000))
        let (probe, probed) = attempt("read")
        #expect(probe?.code == .deviceGone && probed >= .milliseconds(250), "the probe: \(String(describing: probe)) after \(probed)")
        print(
            "frozen server: \(first.map { "\($0)" } ?? "no error") after \(waited); then \(instant) inside the window; the probe \(probed)")
        server.resume()
        usleep(UInt32(450_000))
        try redis.read(into: page.all, atPage: 1)
        #expect(matches(page[0], page: 1))
        #expect(redis.statistics.connectionsOpened >= 2, "the timed-out connections were replaced")
    }

    @Test("a frozen server under reclaim: an access that needs a frame gets a typed error within seconds", arguments: bothProtocols)
    func frozenServerUnderReclaim(sync: SwapInSync) throws {
        let server = try RedisServerProcess()
        let redis = try RedisBackend(
            pageCount: 1 + 4 * 512,
            configuration: .init(
                socketPath: server.socketPath, password: server.password, connectTimeout: .milliseconds(200),
                commandTimeout: .milliseconds(200)))
        let frames = 64
        let space = try SwapSpace(
            .init(
                memory: frames * SwapPage.size, devices: [.backend(redis)], sync: sync,
                backgroundReclaim: false))
        let pages = 4 * frames
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }
        // Every resident page dirty: reclaim must write before it can free anything.
        let dirtied = (0..<pages).filter { region.state(ofPage: $0) == .resident }
        for p in dirtied { try region.withPage(p) { fill($0, page: p, generation: 1) } }
        server.pause()
        defer { server.resume() }
        var slowest = Duration.zero
        var codes: [SwapError.Code] = []
        for p in 0..<pages where region.state(ofPage: p) == .swapped {
            let start = ContinuousClock.now
            do { try region.withPage(p, for: .read) { _ in } } catch let e as SwapError { codes.append(e.code) }
            slowest = max(slowest, ContinuousClock.now - start)
            if codes.count == 3 { break }
        }
        #expect(codes.count == 3 && Set(codes).isSubset(of: [.outOfMemory, .deviceGone, .ioError]), "\(codes)")
        #expect(slowest < .seconds(5), "an access took \(slowest)")
        server.resume()
        usleep(600_000)
        // Thawed, everything comes back: the dirty pages were kept.
        for p in 0..<pages {
            let generation = dirtied.contains(p) ? 1 : 0
            try region.withPage(p, for: .read) { #expect(matches($0, page: p, generation: generation)) }
        }
        #expect(space.checkInvariants() == [])
        print(
            "frozen server under reclaim (\(sync)): \(codes), slowest access \(slowest), \(space.statistics[.writeErrors]) write errors, backend failed calls \(redis.statistics.failedCalls)"
        )
    }

    @Test("AUTH: the private server refuses a backend without its password or with a wrong one, accepts one with it")
    func authentication() throws {
        let server = try RedisServerProcess()
        var caught: SwapError?
        do { _ = try RedisBackend(pageCount: 1 + 512, configuration: .init(socketPath: server.socketPath)) } catch { caught = error }
        #expect(caught?.code == .permissionDenied && caught?.message.contains("NOAUTH") == true, "\(String(describing: caught))")
        caught = nil
        do { _ = try RedisBackend(pageCount: 1 + 512, configuration: .init(socketPath: server.socketPath, password: "wrong")) } catch {
            caught = error
        }
        #expect(caught?.code == .permissionDenied)
        // The password from the environment, the URL without it (as `ps` would show it).
        let redis = try RedisBackend(
            pageCount: 1 + 512,
            configuration: try .init(
                url: "unix://\(server.socketPath)", environment: ["USERSWAP_REDIS_PASSWORD": server.password]))
        let page = Pages(1)
        fill(page[0], page: 3)
        try redis.write(UnsafeRawBufferPointer(page.all), atPage: 3)
        page[0].initializeMemory(as: UInt8.self, repeating: 0)
        try redis.read(into: page.all, atPage: 3)
        #expect(matches(page[0], page: 3))
        #expect(!redis.configuration.urlWithoutCredentials.contains(server.password))
    }

    @Test("a server that evicts any key is refused; a full noeviction server is a disk-full error")
    func memoryLimits() throws {
        let evicting = try RedisServerProcess(arguments: ["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"])
        var caught: SwapError?
        do { _ = try RedisBackend(pageCount: 1 + 512, configuration: evicting.configuration) } catch { caught = error }
        #expect(caught?.code == .invalidArgument && caught?.message.contains("noeviction") == true)

        let small = try RedisServerProcess(arguments: ["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"])
        let redis = try RedisBackend(pageCount: 1 + 4 * 512, configuration: small.configuration)
        let page = Pages(1)
        var written = 0
        caught = nil
        for p in 1..<redis.pageCount {
            fill(page[0], page: p)
            do {
                try redis.write(UnsafeRawBufferPointer(page.all), atPage: p)
                written += 1
            } catch {
                caught = error
                break
            }
        }
        #expect(caught?.code == .diskFull, "\(String(describing: caught))")
        #expect(written > 100 && written < 1024)
        // What was written before the server filled up is intact.
        try redis.read(into: page.all, atPage: written)
        #expect(matches(page[0], page: written))
        print("full server: \(written) pages accepted, then \(caught.map { "\($0)" } ?? "none")")
    }

    // MARK: Freed pages

    @Test("freed slots' keys are deleted: the server's key count follows the device's use")
    func freedPagesDeleted() throws {
        let server = try RedisServerProcess()
        let redis = try RedisBackend(pageCount: 1 + 4 * 512, configuration: server.configuration)
        let space = try SwapSpace(.init(memory: 64 * SwapPage.size, devices: [.backend(redis)], backgroundReclaim: false))
        let pages = 512
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }
        redis.flushDeletions()
        let full = try redis.serverStatus().keys
        #expect(full == space.devices[0].usedPages)
        #expect(full >= pages - 64)
        // Half of them freed.
        try region.discard(pages: 0..<(pages / 2))
        redis.flushDeletions()
        let half = try redis.serverStatus().keys
        #expect(half == space.devices[0].usedPages)
        #expect(half < full - pages / 4)
        // Swapping pages back in and writing them frees their slots too (the copy is stale).
        for p in (pages / 2)..<pages { try region.withPage(p) { fill($0, page: p, generation: 1) } }
        redis.flushDeletions()
        #expect(try redis.serverStatus().keys == space.devices[0].usedPages)
        for p in (pages / 2)..<pages { try region.withPage(p, for: .read) { #expect(matches($0, page: p, generation: 1)) } }
        try region.discard(pages: 0..<pages)
        redis.flushDeletions()
        #expect(try redis.serverStatus().keys == 0)
        #expect(redis.statistics.pagesDeleted >= full)
        #expect(space.checkInvariants() == [])
        print(
            "freed pages: \(full) keys with the region written, \(half) after freeing half, 0 at the end; \(redis.statistics.pagesDeleted) keys deleted"
        )
    }

    @Test("a slot freed and written again at once keeps its new value (the UNLINK goes first)")
    func deleteThenRewrite() throws {
        let server = try RedisServerProcess()
        // A long gathering delay: deletions are still pending (or in flight) at the rewrite.
        let redis = try RedisBackend(
            pageCount: 1 + 512,
            configuration: .init(socketPath: server.socketPath, password: server.password, deleteGatherDelay: .milliseconds(5)))
        let page = Pages(1)
        var rng = SeededRandom.fromEnvironment("redis delete then rewrite")
        for round in 0..<200 {
            let p = 1 + Int(rng.next() % 511)
            fill(page[0], page: p, generation: round)
            try redis.write(UnsafeRawBufferPointer(page.all), atPage: p)
            redis.invalidate(page: p)
            if round % 3 == 0 { usleep(UInt32(rng.next() % 6000)) }  // sometimes let the deleter take it
            fill(page[0], page: p, generation: round + 1000)
            try redis.write(UnsafeRawBufferPointer(page.all), atPage: p)
            if round % 10 == 0 { redis.flushDeletions() }
            page[0].initializeMemory(as: UInt8.self, repeating: 0)
            try redis.read(into: page.all, atPage: p)
            #expect(matches(page[0], page: p, generation: round + 1000), "round \(round), page \(p)")
        }
        redis.flushDeletions()
        #expect(redis.statistics.deletionsPending == 0)
    }

    // MARK: Under the engine

    @Test("a space over Redis, 4× its budget, several threads: nothing lost, invariants hold", arguments: bothProtocols)
    func spaceUnderReclaim(sync: SwapInSync) throws {
        let server = try RedisServerProcess()
        let redis = try RedisBackend(
            pageCount: 1 + 12 * 512, configuration: .init(socketPath: server.socketPath, password: server.password, maxConnections: 8))
        let frames = 256
        let threads = 4
        let ownPages = 4 * frames
        let opsPerThread = 3_000
        let space = try SwapSpace(
            .init(
                memory: frames * SwapPage.size, devices: [.backend(redis)], sync: sync,
                backgroundReclaim: true))
        let own = try space.makeRegion(bytes: ownPages * SwapPage.size)
        let generations = Mutex([Int](repeating: -1, count: ownPages))
        let failures = Atomic<Int>(0), verified = Atomic<Int>(0)
        var rng = SeededRandom.fromEnvironment("redis reclaim \(sync)")
        let seeds = (0..<threads).map { _ in rng.next() }
        runThreads(threads) { t in
            var local = SeededRandom(seed: seeds[t])
            var gens = [Int](repeating: -1, count: ownPages)
            for _ in 0..<opsPerThread {
                let p = Int.random(in: 0..<(ownPages / threads), using: &local) * threads + t
                do {
                    if Int.random(in: 0..<10, using: &local) < 4 {
                        try own.withPage(p, for: .write) { bytes in
                            gens[p] += 1
                            fill(bytes, page: p, generation: gens[p])
                        }
                    } else {
                        try own.withPage(p, for: .read) { bytes in
                            let ok = gens[p] < 0 ? bytes.allSatisfy { $0 == 0 } : matches(bytes, page: p, generation: gens[p])
                            if ok { verified.add(1, ordering: .relaxed) } else { failures.add(1, ordering: .relaxed) }
                        }
                    }
                } catch {
                    print("redis reclaim: thread \(t), page \(p): \(error)")
                    failures.add(1, ordering: .relaxed)
                }
            }
            generations.withLock { g in for p in 0..<ownPages where p % threads == t { g[p] = gens[p] } }
        }
        let final = generations.withLock { $0 }
        for p in 0..<ownPages {
            try own.withPage(p, for: .read) { bytes in
                let ok = final[p] < 0 ? bytes.allSatisfy { $0 == 0 } : matches(bytes, page: p, generation: final[p])
                if ok { verified.add(1, ordering: .relaxed) } else { failures.add(1, ordering: .relaxed) }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(space.statistics[.swapOuts] > frames && space.statistics[.swapIns] > frames, "the workload must really swap")
        #expect(space.checkInvariants() == [])
        redis.flushDeletions()
        #expect(try redis.serverStatus().keys == space.devices[0].usedPages, "a key per used slot, no more")
        let s = redis.statistics
        #expect(s.connectionsOpened >= 2 && s.connectionsOpened <= 8, "threads share a pool of connections")
        print(
            "redis reclaim (\(sync)): \(threads * opsPerThread) operations, \(verified.load(ordering: .relaxed)) page checks, swap-ins \(space.statistics[.swapIns]), swap-outs \(space.statistics[.swapOuts]); backend: \(s.pagesRead) pages read in \(s.readCalls) calls, \(s.pagesWritten) written in \(s.writeCalls), \(s.pagesDeleted) deleted, \(s.connectionsOpened) connections"
        )
    }

    @Test(
        "killing the server mid-run: typed errors in bounded time, never wrong bytes; after a restart the lost pages stay errors and new ones work",
        arguments: bothProtocols)
    func serverDiesMidRun(sync: SwapInSync) throws {
        let server = try RedisServerProcess()
        let redis = try RedisBackend(
            pageCount: 1 + 4 * 512,
            configuration: .init(
                socketPath: server.socketPath, password: server.password, connectTimeout: .milliseconds(300),
                commandTimeout: .milliseconds(500),
                retries: 1, retryBackoff: .milliseconds(5), failFastWindow: .milliseconds(100)))
        let frames = 64
        let threads = 4
        let pages = 4 * frames
        let space = try SwapSpace(
            .init(
                memory: frames * SwapPage.size, devices: [.backend(redis)], sync: sync,
                backgroundReclaim: false))
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }

        let generations = Mutex([Int](repeating: 0, count: pages))
        let good = Atomic<Int>(0), wrong = Atomic<Int>(0), opsDone = Atomic<Int>(0)
        let slowestNs = Atomic<Int>(0)
        let errors = Mutex([SwapError.Code: Int]())
        var rng = SeededRandom.fromEnvironment("redis server dies \(sync)")
        let seeds = (0..<threads).map { _ in rng.next() }
        let opsPerThread = 600
        runThreads(threads + 1) { t in
            if t == threads {
                // Kill the server once a third of the work is done.
                while opsDone.load(ordering: .relaxed) < threads * opsPerThread / 3 { usleep(500) }
                server.kill()
                return
            }
            var local = SeededRandom(seed: seeds[t])
            var gens = [Int](repeating: 0, count: pages)
            for _ in 0..<opsPerThread {
                let p = Int.random(in: 0..<(pages / threads), using: &local) * threads + t
                let start = ContinuousClock.now
                do {
                    if Int.random(in: 0..<10, using: &local) < 4 {
                        try region.withPage(p, for: .write) { bytes in
                            gens[p] += 1
                            fill(bytes, page: p, generation: gens[p])
                        }
                    } else {
                        _ = try region.withPage(p, for: .read) { bytes in
                            if matches(bytes, page: p, generation: gens[p]) {
                                good.add(1, ordering: .relaxed)
                            } else {
                                wrong.add(1, ordering: .relaxed)
                            }
                        }
                    }
                } catch let e as SwapError {
                    errors.withLock { $0[e.code, default: 0] += 1 }
                } catch {
                    wrong.add(1, ordering: .relaxed)
                }
                let (seconds, attoseconds) = (ContinuousClock.now - start).components
                let ns = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
                if ns > slowestNs.load(ordering: .relaxed) { slowestNs.store(ns, ordering: .relaxed) }
                opsDone.add(1, ordering: .relaxed)
            }
            generations.withLock { g in for p in 0..<pages where p % threads == t { g[p] = gens[p] } }
        }
        let counted = errors.withLock { $0 }
        #expect(wrong.load(ordering: .relaxed) == 0, "an access saw bytes that were not the page's")
        #expect(counted.values.reduce(0, +) > 0, "with the server dead, swapping must fail")
        #expect(Set(counted.keys).isSubset(of: [.deviceGone, .ioError, .outOfMemory]), "\(counted)")
        #expect(slowestNs.load(ordering: .relaxed) < 10_000_000_000, "no access may hang")

        // A new, empty server on the same socket: pages swapped out before are gone. Each reads as
        // a typed error, never as zeros; resident pages are intact. (Once the fail-fast window
        // is over, so that the backend asks the new server.)
        try server.restart()
        usleep(150_000)
        let final = generations.withLock { $0 }
        var lost = 0, intact = 0
        for p in 0..<pages {
            do {
                try region.withPage(p, for: .read) { bytes in
                    if matches(bytes, page: p, generation: final[p]) { intact += 1 } else { wrong.add(1, ordering: .relaxed) }
                }
            } catch let e as SwapError where e.code == .ioError && e.message.contains("has no value") {
                lost += 1
            }
        }
        #expect(wrong.load(ordering: .relaxed) == 0)
        #expect(lost > 0 && lost + intact == pages)
        // The backend reconnected: freed and rewritten, every page swaps through the new server.
        try region.discard(pages: 0..<pages)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p, generation: 50) } }
        for p in 0..<pages { try region.withPage(p, for: .read) { #expect(matches($0, page: p, generation: 50)) } }
        #expect(space.statistics[.swapIns] > 0)
        #expect(space.checkInvariants() == [])
        print(
            "server dies (\(sync)): \(good.load(ordering: .relaxed)) good accesses, typed errors \(counted), slowest access \(slowestNs.load(ordering: .relaxed) / 1_000_000) ms; after restart \(lost) pages lost (typed errors), \(intact) intact"
        )
    }

    @Test("threads share the pool: concurrent round trips on several connections, all correct")
    func concurrentThreads() throws {
        let server = try RedisServerProcess()
        let redis = try RedisBackend(
            pageCount: 1 + 4 * 512, configuration: .init(socketPath: server.socketPath, password: server.password, maxConnections: 4))
        let wrong = Atomic<Int>(0)
        runThreads(8) { t in
            let page = Pages(2)
            for i in 0..<150 {
                let p = 1 + (t * 250 + i * 2) % (redis.pageCount - 2)
                fill(page[0], page: p, generation: t)
                fill(page[1], page: p + 1, generation: t)
                do {
                    if i % 2 == 0 {
                        try redis.write(UnsafeRawBufferPointer(page.all), atPage: p)
                    } else {
                        try redis.write(UnsafeRawBufferPointer(page.slice(0..<1)), atPage: p)
                        try redis.write(UnsafeRawBufferPointer(page.slice(1..<2)), atPage: p + 1)
                    }
                    page.all.initializeMemory(as: UInt8.self, repeating: 0)
                    try redis.read(into: page.all, atPage: p)
                    if !matches(page[0], page: p, generation: t) || !matches(page[1], page: p + 1, generation: t) {
                        wrong.add(1, ordering: .relaxed)
                    }
                } catch { wrong.add(1, ordering: .relaxed) }
            }
        }
        #expect(wrong.load(ordering: .relaxed) == 0)
        let opened = redis.statistics.connectionsOpened
        #expect(opened >= 2 && opened <= 4, "\(opened) connections")
        #expect(redis.pool.idleCount == opened)
    }

    @Test("removeAllPages deletes every key of the namespace, and nobody else's")
    func removeAll() throws {
        let server = try RedisServerProcess()
        let raw = try Raw(server)
        _ = try raw.command("SET", "someone-else", "x")
        let redis = try RedisBackend(pageCount: 1 + 2 * 512, configuration: server.configuration)
        let run = Pages(40)
        for i in 0..<40 { fill(run[i], page: 490 + i) }
        try redis.write(UnsafeRawBufferPointer(run.all), atPage: 490)
        #expect(try redis.removeAllPages() == 40)
        #expect(try redis.serverStatus().keys == 1)
    }
}

// MARK: Helpers

/// `count` page-aligned pages, freed when it goes away.
private final class Pages {
    let all: UnsafeMutableRawBufferPointer
    init(_ count: Int) {
        all = .allocate(byteCount: count * SwapPage.size, alignment: SwapPage.size)
        all.initializeMemory(as: UInt8.self, repeating: 0)
    }
    deinit { all.deallocate() }
    subscript(i: Int) -> UnsafeMutableRawBufferPointer { slice(i..<(i + 1)) }
    func slice(_ r: Range<Int>) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: all[(r.lowerBound * SwapPage.size)..<(r.upperBound * SwapPage.size)])
    }
}

/// A plain connection to a test server, for commands the backend never sends.
private struct Raw {
    let connection: _RedisConnection
    init(_ server: RedisServerProcess) throws {
        connection = try _RedisConnection(
            RedisEndpoint(
                host: "", port: 0, socketPath: server.socketPath, username: nil, password: server.password,
                database: 0, connectTimeout: .seconds(1), commandTimeout: .seconds(2)))
    }

    struct Answer {
        var type: Int32
        var text: String
        var integer: Int64
    }

    func command(_ name: String, _ arguments: String...) throws -> Answer {
        var c = RedisCommand(name)
        for a in arguments { c.append(a) }
        let reply = try connection.command(c)
        let v = reply.view
        if v.isError { throw SwapError(.ioError, "redis: \(v.text)") }
        return Answer(type: v.type, text: v.text, integer: v.integer)
    }
}
