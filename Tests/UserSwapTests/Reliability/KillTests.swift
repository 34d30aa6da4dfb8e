import Foundation
import Glibc
import Synchronization
import Testing

@testable import UserSwap
@testable import UserSwapCompression
@testable import UserSwapRedis

/// A process SIGKILLed in the middle of swap traffic (a crash, the OOM killer, `kill -9`) can
/// run no clean-up. These tests kill a child at a random moment of each kind of traffic and
/// check, from the parent, what the issue of a crash is for the next user of the same storage:
/// nothing on disk beside the swap file the child was given; that file still a swap device of
/// its size and mode, holding no page in a form anyone can read (pages are sealed under a key
/// that died with the process); a new space on it (as it is, and after `format --force`)
/// starting with nothing in use and serving verified pages; on Redis, every key left behind in
/// the child's namespace (none elsewhere), all of them removed by the namespace clean-up, and a
/// new space on that namespace starting clean.
///
/// The child is this test binary in an exit test; what it does comes from the environment
/// (`USERSWAP_KILL_TEST_*`). A thread of its own kills it after a random delay counted from
/// the moment its traffic started, so each kill lands somewhere in that traffic.
@Suite("Killed in the middle of swap traffic: nothing left that cannot be accounted for", .serialized)
struct KillTests {
    /// What the child is doing when it dies.
    enum Activity: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// Writing a region four times its budget over and over: every fault evicts a page.
        case swapOut = "swap-out"
        /// Reading random pages of a populated region: every miss is a swap-in.
        case swapIn = "swap-in"
        /// Taking the swap file out of service (its pages read back, evictions going to a
        /// second device) and putting it back, over and over.
        case swapOff = "swapoff"
        /// Filling a compressed tier over the swap file past its pool, so that the pool keeps
        /// writing entries back to the file.
        case writeBack = "write-back"

        var testDescription: String { rawValue }
    }

    static let budgetPages = 64
    static let regionPages = 256 * 4
    /// The swap file: room for the region twice over.
    static let swapBytes = Int64(1 + 4 * 512) * Int64(SwapPage.size)
    static let rounds = 3

    // One test for every activity, not one per argument: the child's orders travel in the
    // environment, which test cases running in parallel would share.
    @Test("a child killed at random points of its traffic leaves its swap file intact and reusable")
    func killedOverSwapFile() async throws {
        var random = SystemRandomNumberGenerator()
        let seed = UInt64.random(in: 0...UInt64.max, using: &random)
        var delays = SeededRandom(seed: seed)
        for activity in Activity.allCases {
            for round in 0..<Self.rounds {
                let delay = 10_000 + Int(delays.next() % 400_000)
                try await Self.withFolder { folder in
                    let path = folder + "/swap"
                    try SwapFile.format(path: path, bytes: Self.swapBytes)
                    var before = stat()
                    try #require(lstat(path, &before) == 0)
                    let started = folder + ".started"
                    defer { unlink(started) }
                    setenv("USERSWAP_KILL_TEST_ACTIVITY", activity.rawValue, 1)
                    setenv("USERSWAP_KILL_TEST_PATH", path, 1)
                    setenv("USERSWAP_KILL_TEST_STARTED", started, 1)
                    setenv("USERSWAP_KILL_TEST_DELAY_US", String(delay), 1)
                    await #expect(processExitsWith: .signal(SIGKILL), "\(activity), round \(round), seed \(seed)") {
                        try KillTests.childOverSwapFile()
                    }
                    let context = "\(activity), round \(round), killed \(delay) µs into it (seed \(seed))"
                    #expect(FileManager.default.fileExists(atPath: started), "the child died before its traffic began: \(context)")
                    #expect(Self.leftovers(folder) == ["swap"], "\(context): left \(Self.leftovers(folder))")
                    var after = stat()
                    try #require(lstat(path, &after) == 0)
                    #expect(after.st_mode & S_IFMT == S_IFREG && after.st_mode & 0o777 == 0o600, "\(context): mode \(after.st_mode)")
                    #expect(after.st_size == before.st_size && after.st_ino == before.st_ino, "\(context): the file changed")
                    let report = try SwapFile.inspect(path: path)
                    #expect(report.usablePages == Int(Self.swapBytes) / SwapPage.size - 1, "\(context): header \(report)")
                    #expect(try Self.plaintextPages(path) == 0, "\(context): a page the child wrote is readable on disk")
                    // A new space on the file as the crash left it, then on a freshly formatted one.
                    try Self.verifyNewSpace(on: path, context: context + ", file as left")
                    try SwapFile.format(path: path, bytes: Self.swapBytes, force: true)
                    try Self.verifyNewSpace(on: path, context: context + ", after format --force")
                    #expect(Self.leftovers(folder) == ["swap"], "\(context): left \(Self.leftovers(folder))")
                }
            }
        }
        print("kill tests: \(Activity.allCases.count * Self.rounds) children killed mid-traffic over a swap file (seed \(seed))")
    }

    @Test(
        "a child killed while swapping to Redis leaves keys in its namespace only; the clean-up removes them all",
        .enabled(if: RedisServerProcess.executable != nil, "redis-server is not installed: run scripts/bootstrap"))
    func killedOverRedis() async throws {
        let server = try RedisServerProcess()
        defer { server.stop() }
        var random = SystemRandomNumberGenerator()
        let seed = UInt64.random(in: 0...UInt64.max, using: &random)
        var delays = SeededRandom(seed: seed)
        for round in 0..<Self.rounds {
            let delay = 10_000 + Int(delays.next() % 400_000)
            let namespace = "kill-test-\(getpid())-\(round)"
            var configuration = server.configuration
            configuration.namespace = namespace
            let started = NSTemporaryDirectory() + "userswap-kill-test-\(getpid())-\(round).started"
            defer { unlink(started) }
            setenv("USERSWAP_KILL_TEST_SOCKET", server.socketPath, 1)
            setenv("USERSWAP_KILL_TEST_NAMESPACE", namespace, 1)
            setenv(RedisBackend.Configuration.passwordEnvironmentVariable, server.password, 1)
            setenv("USERSWAP_KILL_TEST_STARTED", started, 1)
            setenv("USERSWAP_KILL_TEST_DELAY_US", String(delay), 1)
            defer { unsetenv(RedisBackend.Configuration.passwordEnvironmentVariable) }
            await #expect(processExitsWith: .signal(SIGKILL), "Redis, round \(round), seed \(seed)") {
                try KillTests.childOverRedis()
            }
            let context = "Redis, round \(round), killed \(delay) µs into its traffic (seed \(seed))"
            #expect(FileManager.default.fileExists(atPath: started), "the child died before its traffic began: \(context)")
            let probe = try RedisBackend(pageCount: 1 + 4 * 512, configuration: configuration)
            let left = try probe.serverStatus().keys
            #expect(left > 0, "\(context): the child left no page on the server, so it did not die mid-traffic")
            #expect(try probe.removeAllPages() == left, "\(context): keys outside the child's namespace")
            #expect(try probe.serverStatus().keys == 0, "\(context)")
            // A new space on the same namespace starts clean and leaves nothing when it ends.
            do {
                let backend = try RedisBackend(pageCount: 1 + 4 * 512, configuration: configuration)
                let space = try SwapSpace(.init(memory: Self.budgetPages * SwapPage.size, devices: [.backend(backend)]))
                #expect(space.devices[0].usedPages == 0, "\(context)")
                try Self.verifyPass(space, context: context + ", new space on the namespace")
            }
            var keys = try probe.serverStatus().keys
            for _ in 0..<200 where keys > 0 {
                usleep(10_000)
                keys = try probe.serverStatus().keys
            }
            #expect(keys == 0, "\(context): a space that ended left \(keys) keys")
        }
        print("kill tests (Redis): \(Self.rounds) children killed mid-traffic, seed \(seed)")
    }

    // MARK: The child

    /// Sets the child up for its activity, starts the killer, and runs the traffic until the
    /// killer ends it. Never returns: an error is thrown, which the parent sees as an exit
    /// instead of SIGKILL.
    static func childOverSwapFile() throws {
        let environment = ProcessInfo.processInfo.environment
        let activity = try #require(Activity(rawValue: environment["USERSWAP_KILL_TEST_ACTIVITY"] ?? ""))
        let path = try #require(environment["USERSWAP_KILL_TEST_PATH"])
        let budget = budgetPages * SwapPage.size
        switch activity {
        case .swapOut, .swapIn:
            let space = try SwapSpace(.init(memory: budget, devices: [.file(path: path)]))
            let region = try space.makeRegion(bytes: regionPages * SwapPage.size)
            for p in 0..<regionPages { try region.withPage(p) { fill($0, page: p) } }
            startKiller()
            var generation = 0
            var random = SeededRandom(seed: 7)
            while true {
                if activity == .swapOut {
                    generation += 1
                    for p in 0..<regionPages { try region.withPage(p) { fill($0, page: p, generation: generation) } }
                } else {
                    let p = Int(random.next() % UInt64(regionPages))
                    try region.withPage(p, for: .read) { guard matches($0, page: p) else { fatalError("page \(p) is wrong") } }
                }
            }
        case .swapOff:
            let space = try SwapSpace(
                .init(memory: budget, devices: [.file(path: path), .memory(bytes: 2 * regionPages * SwapPage.size, priority: -1)]))
            let region = try space.makeRegion(bytes: regionPages * SwapPage.size)
            for p in 0..<regionPages { try region.withPage(p) { fill($0, page: p) } }
            startKiller()
            while true {
                let file = try #require(space.devices.first { $0.priority == 0 })
                try space.swapOff(file)
                // Back in service: the next pass writes every page, and eviction prefers the file.
                var added = false
                while !added {
                    do {
                        _ = try space.swapOn(.file(path: path, priority: 0))
                        added = true
                    } catch { usleep(1_000) }
                }
                for p in 0..<regionPages { try region.withPage(p) { fill($0, page: p) } }
            }
        case .writeBack:
            let (_, file) = try SwapFile.open(path: path)
            // Sealed below the pool, so that the pool holds compressible pages and what it
            // writes back reaches the file sealed.
            let tier = try CompressedTier(lower: EncryptedTier(lower: file), poolBytes: 64 * 1024)
            let space = try SwapSpace(.init(memory: budget, devices: [.backend(tier)], encryption: .none))
            let region = try space.makeRegion(bytes: regionPages * SwapPage.size)
            startKiller()
            var generation = 0
            while true {
                for p in 0..<regionPages { try region.withPage(p) { TierPages.text($0, page: p, generation: generation) } }
                generation += 1
            }
        }
    }

    /// The Redis child: a region four times its budget written over and over to a private
    /// server (sealed pages, the default).
    static func childOverRedis() throws {
        let environment = ProcessInfo.processInfo.environment
        let socket: String = try #require(environment["USERSWAP_KILL_TEST_SOCKET"])
        let namespace: String = try #require(environment["USERSWAP_KILL_TEST_NAMESPACE"])
        var configuration = RedisBackend.Configuration(
            socketPath: socket, password: environment[RedisBackend.Configuration.passwordEnvironmentVariable])
        configuration.namespace = namespace
        let backend = try RedisBackend(pageCount: 1 + 4 * 512, configuration: configuration)
        let space = try SwapSpace(.init(memory: budgetPages * SwapPage.size, devices: [.backend(backend)]))
        let region = try space.makeRegion(bytes: regionPages * SwapPage.size)
        for p in 0..<regionPages { try region.withPage(p) { fill($0, page: p) } }
        startKiller()
        var generation = 0
        var random = SeededRandom(seed: 11)
        while true {
            generation += 1
            for _ in 0..<regionPages {
                let p = Int(random.next() % UInt64(regionPages))
                try region.withPage(p) { fill($0, page: p, generation: generation) }
            }
        }
    }

    /// Marks the start of the traffic for the parent, then kills this process after the delay
    /// the parent chose, from a thread of its own.
    static func startKiller() {
        let environment = ProcessInfo.processInfo.environment
        if let started = environment["USERSWAP_KILL_TEST_STARTED"] {
            _ = FileManager.default.createFile(atPath: started, contents: nil)
        }
        let delay = UInt32(environment["USERSWAP_KILL_TEST_DELAY_US"].flatMap(Int.init) ?? 100_000)
        let thread = Thread {
            usleep(delay)
            kill(getpid(), SIGKILL)
        }
        thread.start()
    }

    // MARK: The parent's checks

    /// A new space on the swap file at `path`: nothing in use at the start, every page of a
    /// region four times its budget written and read back, invariants clean.
    static func verifyNewSpace(on path: String, context: String) throws {
        let space = try SwapSpace(.init(memory: budgetPages * SwapPage.size, devices: [.file(path: path)]))
        #expect(space.devices[0].usedPages == 0, "\(context): the new space found slots in use")
        try verifyPass(space, context: context)
    }

    static func verifyPass(_ space: SwapSpace, context: String) throws {
        let region = try space.makeRegion(bytes: regionPages * SwapPage.size)
        for p in 0..<regionPages { try region.withPage(p) { fill($0, page: p, generation: 5) } }
        var wrong = 0
        for p in 0..<regionPages { try region.withPage(p, for: .read) { if !matches($0, page: p, generation: 5) { wrong += 1 } } }
        #expect(wrong == 0, "\(context): \(wrong) pages read back wrong")
        #expect(space.statistics[.swapOuts] > 0, "\(context): nothing swapped, so nothing was checked")
        #expect(space.checkInvariants() == [], "\(context)")
    }

    /// Pages of the file past its header that hold a page as the child wrote it in clear
    /// (`fill`'s pattern or the tier test's text): none may, since every page leaves the
    /// process sealed.
    static func plaintextPages(_ path: String) throws -> Int {
        let fd = open(path, O_RDONLY | O_NOFOLLOW)
        try #require(fd >= 0)
        defer { close(fd) }
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: SwapPage.size, alignment: 8)
        defer { page.deallocate() }
        let sentence = Array("the quick brown fox".utf8)
        var found = 0
        var offset = off_t(SwapPage.size)
        while pread(fd, page.baseAddress, SwapPage.size, offset) == SwapPage.size {
            let words = page.bindMemory(to: UInt64.self)
            // `fill` writes consecutive words that differ by one.
            if words[0] != 0 && words[1] &- words[0] == 1 && words[2] &- words[1] == 1 && words[3] &- words[2] == 1 { found += 1 }
            let bytes = UnsafeRawBufferPointer(page)
            if bytes.firstRange(of: sentence) != nil { found += 1 }
            offset += off_t(SwapPage.size)
        }
        return found
    }

    /// Everything under `folder`.
    static func leftovers(_ folder: String) -> [String] {
        (try? FileManager.default.subpathsOfDirectory(atPath: folder))?.sorted() ?? ["<cannot list \(folder)>"]
    }

    /// A private folder (mkdtemp) for one round, removed afterwards.
    static func withFolder(_ body: (String) async throws -> Void) async throws {
        var template = Array((NSTemporaryDirectory() + "userswap-kill-test-XXXXXX").utf8CString)
        try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil })
        let folder = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try await body(folder)
    }
}
