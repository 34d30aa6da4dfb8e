import Foundation
import Glibc
import Testing

@testable import UserSwap
@testable import UserSwapRedis

/// Pages leave the process sealed unless the configuration says `encryption: .none`: a known
/// 64-byte pattern swapped out to a file or to Redis is nowhere in the file or in any value
/// with the default, and is there in clear with `.none` (each test shows both, so that the
/// search is known to find what is there). Forged pages on Redis, with valid trailers, are a
/// typed error when sealed.
@Suite("Sealed by default", .serialized)
struct SealedByDefaultTests {
    /// 64 bytes no page would hold by chance.
    static let pattern: [UInt8] = Array("UserSwap secret 64-byte pattern: 0123456789abcdefghijklmnopqrstu".utf8)

    /// Every page of `pages` filled with the pattern, one copy per 64 bytes.
    static func fill(_ region: Region, pages: Int) throws {
        for p in 0..<pages {
            try region.withPage(p) { bytes in
                for offset in stride(from: 0, to: SwapPage.size, by: 64) {
                    pattern.withUnsafeBytes { bytes.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: 64) }
                }
            }
        }
    }

    /// Whether `bytes` holds the pattern anywhere.
    static func holdsPattern(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= pattern.count else { return false }
        return bytes.withUnsafeBytes { raw in
            let first = pattern[0]
            var i = 0
            while i <= raw.count - pattern.count {
                if raw[i] == first && memcmp(raw.baseAddress! + i, pattern, pattern.count) == 0 { return true }
                i += 1
            }
            return false
        }
    }

    @Test("a swap file holds no swapped page's bytes by default; with encryption .none it does")
    func swapFile() throws {
        for encryption in [SwapSpace.Encryption.randomKey, .none] {
            let scratch = try DeviceScratchDirectory()
            let path = scratch.file("swap0")
            var configuration = SwapSpace.Configuration(
                memory: 32 * SwapPage.size,
                devices: [.file(path: path, size: Int64((1 + 512) * SwapPage.size))],
                backgroundReclaim: false)
            if encryption.name == "none" { configuration.encryption = .none }
            let space = try SwapSpace(configuration)
            #expect(space.configuration.encryption.name == encryption.name)
            let region = try space.makeRegion(bytes: 128 * SwapPage.size)
            try Self.fill(region, pages: 128)
            _ = try region.swapOut(pages: 0..<128)
            #expect((0..<128).allSatisfy { region.state(ofPage: $0) == .swapped })
            let contents = try #require(DeviceTestSupport.contents(path))
            if encryption.name == "none" {
                #expect(Self.holdsPattern(contents), "with encryption off the pages are in the file in clear: the search must find them")
            } else {
                #expect(space.devices[0].backend is EncryptedTier)
                #expect(!Self.holdsPattern(contents), "a swapped page's bytes are in the swap file in clear")
            }
            for p in 0..<128 { try region.withPage(p, for: .read) { #expect(Self.holdsPattern(Array($0.prefix(64)))) } }
        }
    }

    @Test(
        "no Redis value holds a swapped page's bytes by default; with encryption .none they do",
        .enabled(if: RedisServerProcess.executable != nil, "redis-server is not installed: run scripts/bootstrap"))
    func redisValues() throws {
        for sealed in [true, false] {
            let server = try RedisServerProcess()
            let redis = try RedisBackend(pageCount: 1 + 512, configuration: server.configuration)
            let space = try SwapSpace(
                .init(
                    memory: 32 * SwapPage.size, devices: [.backend(redis)], backgroundReclaim: false,
                    encryption: sealed ? .randomKey : .none))
            let region = try space.makeRegion(bytes: 128 * SwapPage.size)
            try Self.fill(region, pages: 128)
            _ = try region.swapOut(pages: 0..<128)
            #expect((0..<128).allSatisfy { region.state(ofPage: $0) == .swapped })
            let values = try Self.allValues(server)
            #expect(values.count > 64, "the swapped pages are on the server")
            let clear = values.filter { Self.holdsPattern($0.value) }.count
            if sealed {
                #expect(clear == 0, "\(clear) Redis values hold a swapped page in clear")
            } else {
                #expect(clear == values.count, "with encryption off every value holds its page in clear: the search must find them")
            }
        }
    }

    @Test(
        "forged pages on Redis, with valid trailers, are a typed error when sealed (accepted in clear without encryption)",
        .enabled(if: RedisServerProcess.executable != nil, "redis-server is not installed: run scripts/bootstrap"))
    func forgedPages() throws {
        for sealed in [true, false] {
            let server = try RedisServerProcess()
            let redis = try RedisBackend(pageCount: 1 + 512, configuration: server.configuration)
            let space = try SwapSpace(
                .init(
                    memory: 32 * SwapPage.size, devices: [.backend(redis)], backgroundReclaim: false,
                    encryption: sealed ? .randomKey : .none))
            let region = try space.makeRegion(bytes: 64 * SwapPage.size)
            try Self.fill(region, pages: 64)
            _ = try region.swapOut(pages: 0..<64)
            #expect((0..<64).allSatisfy { region.state(ofPage: $0) == .swapped })
            // The attacker reads a value (ciphertext and trailer, or the page and trailer), and
            // writes back a page of its choosing with the trailer recomputed: the trailer is an
            // unkeyed checksum over values it can read, so every forged value passes it.
            let forged = [UInt8](repeating: 0x66, count: SwapPage.size)
            let raw = try Self.connect(server)
            var rewritten = 0
            for (key, _) in try Self.allValues(server) {
                let page = try #require(Self.page(ofKey: key))
                var value = [UInt8](repeating: 0, count: RedisPageFormat.valueSize)
                forged.withUnsafeBytes { source in
                    value.withUnsafeMutableBytes { redis.format.encode(page: page, from: source.baseAddress!, into: $0.baseAddress!) }
                }
                try value.withUnsafeBytes { bytes in
                    var set = RedisCommand("SET")
                    set.append(key)
                    set.appendExternal(bytes)
                    _ = try raw.command(set)
                }
                rewritten += 1
            }
            #expect(rewritten == 64)
            var refused = 0, accepted = 0
            for p in 0..<64 {
                do {
                    try region.withPage(p, for: .read) { bytes in
                        if bytes.allSatisfy({ $0 == 0x66 }) { accepted += 1 }
                    }
                } catch let error as SwapError {
                    #expect(error.code == .ioError && error.message.contains("failed authentication"), "\(error)")
                    refused += 1
                }
            }
            if sealed {
                #expect(refused == 64 && accepted == 0, "sealed: \(refused) forged pages refused, \(accepted) accepted")
            } else {
                #expect(accepted == 64, "in clear the trailer cannot tell a forged page: \(accepted) accepted")
            }
        }
    }

    @Test("a page key that cannot be locked in RAM is a warning of the space, not silence")
    func unlockedKeyIsReported() async {
        await #expect(processExitsWith: .success) {
            // Root locks memory whatever the limit (CAP_IPC_LOCK): drop to nobody first.
            var none = rlimit(rlim_cur: 0, rlim_max: 0)
            guard setrlimit(__rlimit_resource_t(__RLIMIT_MEMLOCK.rawValue), &none) == 0 else { exit(10) }
            if geteuid() == 0 { guard setgid(65534) == 0, setuid(65534) == 0 else { exit(11) } }
            let space = try SwapSpace(
                .init(
                    memory: 16 * SwapPage.size, devices: [.backend(MemoryBackend(pageCount: 1 + 512))],
                    backgroundReclaim: false))
            guard space.warnings.count == 1, space.warnings[0].code == .permissionDenied,
                space.warnings[0].message.contains("ulimit -l")
            else { exit(12) }
            // Still sealed, and working.
            guard space.devices[0].backend is EncryptedTier else { exit(13) }
            let region = try space.makeRegion(bytes: 32 * SwapPage.size)
            for p in 0..<32 { try region.withPage(p) { $0.storeBytes(of: UInt64(p), as: UInt64.self) } }
            _ = try region.swapOut(pages: 0..<32)
            for p in 0..<32 { try region.withPage(p, for: .read) { if $0.load(as: UInt64.self) != UInt64(p) { exit(14) } } }
            // No key, nothing to lock.
            let clear = try SwapSpace(
                .init(
                    memory: 16 * SwapPage.size, devices: [.backend(MemoryBackend(pageCount: 1 + 512))],
                    backgroundReclaim: false, encryption: .none))
            guard clear.warnings.isEmpty else { exit(15) }
        }
        // With the limits this process has, the key is locked: no warning.
        let space = try? SwapSpace(.init(memory: 16 * SwapPage.size, devices: [.backend(MemoryBackend(pageCount: 1 + 512))]))
        #expect(space?.warnings.isEmpty == true)
    }

    // MARK: Helpers

    /// A plain authenticated connection to `server`.
    static func connect(_ server: RedisServerProcess) throws -> _RedisConnection {
        try _RedisConnection(
            RedisEndpoint(
                host: "", port: 0, socketPath: server.socketPath, username: nil, password: server.password,
                database: 0, connectTimeout: .seconds(1), commandTimeout: .seconds(5)))
    }

    /// Every key on `server` with its value.
    static func allValues(_ server: RedisServerProcess) throws -> [(key: String, value: [UInt8])] {
        let connection = try connect(server)
        var result: [(key: String, value: [UInt8])] = []
        var cursor = "0"
        repeat {
            var scan = RedisCommand("SCAN")
            scan.append(cursor)
            scan.append("COUNT")
            scan.append("1000")
            let reply = try connection.command(scan)
            cursor = reply.view.element(0).text
            let keys = reply.view.element(1)
            for i in 0..<keys.elementCount {
                let key = keys.element(i).text
                var get = RedisCommand("GET")
                get.append(key)
                let value = try connection.command(get)
                result.append((key, Array(value.view.bytes)))
            }
        } while cursor != "0"
        return result
    }

    /// The device page of a key `{namespace/group}slot`.
    static func page(ofKey key: String) -> Int? {
        guard let slash = key.lastIndex(of: "/"), let close = key.lastIndex(of: "}"),
            let group = Int(key[key.index(after: slash)..<close]), let slot = Int(key[key.index(after: close)...])
        else { return nil }
        return group * RedisPageFormat.groupPages + slot
    }
}
