import Foundation
import UserSwap
import UserSwapCompression
import UserSwapEncryption
import UserSwapRedis

/// `--tier`: what the workload benchmarks stack on their swap device.
public enum WorkloadTier: String, CaseIterable, Sendable {
    case none
    case compressed
    case encrypted
    /// Compressed in memory, sealed on the way to the device (the order that lets both work).
    case compressedEncrypted = "compressed+encrypted"
}

/// `--device`: where a workload benchmark's swapped pages go.
public enum WorkloadDevice: Equatable, Sendable {
    /// A swap file in the scratch folder (`--dir`), read and written with O_DIRECT.
    case file
    /// Process memory: the engine (and any tier) without a disk.
    case memory
    /// A Redis server: the one at `url`, or a private `redis-server` the run starts and stops.
    case redis(url: String?)
    /// A Redis Cluster reached through the seeds of `url` (`redis+cluster://HOST:PORT,…`;
    /// `scripts/redis-cluster start DIR` prints one).
    case redisCluster(url: String)

    public init?(_ text: String) {
        switch text {
        case "file": self = .file
        case "memory": self = .memory
        case "redis": self = .redis(url: nil)
        default:
            if text.hasPrefix("redis+cluster://") {
                self = .redisCluster(url: text)
                return
            }
            guard text.hasPrefix("redis://") || text.hasPrefix("unix://") else { return nil }
            self = .redis(url: text)
        }
    }

    /// The device as reports show it: a URL without its user and password.
    var name: String {
        switch self {
        case .file: "file"
        case .memory: "memory"
        case .redis(let url):
            url.map { (try? RedisBackend.Configuration(url: $0))?.urlWithoutCredentials ?? RedisBackend.Configuration.redacted($0) }
                ?? "redis"
        case .redisCluster(let url):
            (try? RedisClusterBackend.Configuration(url: url))?.urlWithoutCredentials ?? RedisBackend.Configuration.redacted(url)
        }
    }
}

/// The swap of one workload run: the device, the tier over it, and the space's encryption,
/// made from `--device`, `--tier` and `--param codec=|pool=|encryption=|swap_file=`; it keeps
/// the tiers so that their figures can be reported after the run.
struct WorkloadSwap {
    static let codec = BenchParameter(
        "codec", type: "lz4|zstd|zstd-N (N 1…19)", default: "lz4",
        "the compressed tier's codec"
    ) { CompressionCodec($0) != nil }
    static let pool = BenchParameter.size("pool", 64 << 10...1 << 40, default: nil, "the compressed pool's limit (default: the budget)")
    static let encryption = BenchParameter.choice(
        "encryption", ["none", "randomKey", "random-key"], default: nil,
        "seal every device of the space (default randomKey, none for --device memory or --no-encryption)")
    static let swapFile = BenchParameter.choice(
        "swap_file", ["allocated", "written"], default: "allocated",
        "the swap file's blocks only allocated, or written once when it is made")
    static let durability = BenchParameter.choice(
        "durability", ["primary", "replicated"], default: nil,
        "--device redis+cluster://: a write counts once a replica has it (replicated, the default with replicas) or at once (primary)")
    static let parameters = [codec, pool, encryption, swapFile, durability]

    let device: WorkloadDevice
    let tier: WorkloadTier
    let codec: CompressionCodec
    /// The compressed pool's limit (default: the RAM budget, a zswap `max_pool_percent` of 100).
    let poolBytes: Int?
    let encryption: SwapSpace.Encryption
    /// `--param swap_file=written`: the swap file written out in full when it is made
    /// (`SwapFile.format(writeOut:)`); `allocated` (the default) only allocates its blocks.
    let writtenOut: Bool
    /// `--param durability=primary|replicated` for `--device redis+cluster://…` (default: the
    /// device's, replicated when every master has a replica).
    let durability: RedisClusterBackend.Durability?

    init(options: BenchOptions) throws {
        let deviceText = options.device ?? options.parameters["device"] ?? "file"
        guard let device = WorkloadDevice(deviceText) else {
            throw BenchError(
                "--device \(RedisBackend.Configuration.redacted(deviceText)): use file, memory, redis, redis://HOST:PORT, unix:///PATH or redis+cluster://HOST:PORT[,HOST:PORT…]"
            )
        }
        self.device = device
        let tierText = options.tier ?? "none"
        guard let tier = WorkloadTier(rawValue: tierText) else {
            throw BenchError("--tier \(tierText): use \(WorkloadTier.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.tier = tier
        let codecText: String = try options.value(Self.codec)
        guard let codec = CompressionCodec(codecText) else {
            throw BenchError("--param codec=\(codecText): use lz4, zstd or zstd-N (N 1…19)")
        }
        self.codec = codec
        if let text = options.parameters["pool"] {
            guard case .success(let size) = ByteSize.parse(text) else { throw BenchError("--param pool=\(text): a size, e.g. 64M") }
            poolBytes = Int(size)
        } else {
            poolBytes = nil
        }
        // Sealed by default, as every space; --no-encryption (or --param encryption=none) for
        // pages in clear; the kernel's swap (--mode kernel) never encrypts.
        // Process memory (--device memory) keeps its pages in the process: in clear unless asked.
        let sealedByDefault = options.encryption && options.mode != .kernel && device != .memory
        switch try options.parameter("encryption", default: sealedByDefault ? "randomKey" : "none") as String {
        case "none": encryption = .none
        case "randomKey", "random-key":
            guard options.encryption else { throw BenchError("--param encryption=randomKey contradicts --no-encryption") }
            encryption = .randomKey
        case let other: throw BenchError("--param encryption=\(other): use none or randomKey (the space seals every device)")
        }
        switch try options.value(Self.swapFile) as String {
        case "allocated": writtenOut = false
        case "written": writtenOut = true
        case let other:
            throw BenchError(
                "--param swap_file=\(other): use allocated (fallocate only, the default) or written (every block written once when the file is made)"
            )
        }
        if writtenOut && device != .file { throw BenchError("--param swap_file=written is for --device file") }
        switch options.parameters["durability"] {
        case nil: durability = nil
        case "primary"?: durability = .primaryOnly
        case "replicated"?: durability = .replicated(1)
        case let other?:
            throw BenchError("--param durability=\(other): use primary or replicated (one replica's copy before a write counts)")
        }
        if durability != nil {
            guard case .redisCluster = device else { throw BenchError("--param durability is for --device redis+cluster://…") }
        }
        if tier != .none || (options.parameters["encryption"] ?? "none") != "none" || device != .file || writtenOut, options.mode == .kernel
        {
            throw BenchError("--tier, --device and --param encryption are UserSwap's; --mode kernel swaps where the machine does")
        }
    }

    /// A swap file with no `--tier` stacked on it (the space may seal its pages): one read of
    /// the device per page swapped in.
    var isPlainFile: Bool { device == .file && tier == .none }

    /// Runs `body` with the device configuration for a space of `configuration`, in a scratch
    /// folder (`harness`) or against a Redis server started for it; everything made is removed
    /// afterwards. `body` gets the tiers made, for their statistics.
    func with<T>(
        _ configuration: WorkloadConfiguration, harness: BenchHarness,
        _ body: (SwapSpace.DeviceConfiguration, Tiers) throws -> T
    ) throws -> T {
        let swapBytes = Int(configuration.swapBytes)
        switch device {
        case .file:
            // An unnamed file in the scratch folder: nothing of it outlives the run.
            return try harness.withScratchDirectory { folder in
                if tier == .none && !writtenOut {
                    return try body(.temporary(size: Int64(swapBytes), directory: folder), Tiers())
                }
                let (_, file) = try SwapFile.openTemporary(bytes: Int64(swapBytes), in: folder, writeOut: writtenOut)
                let (top, tiers) = try stack(over: file, budget: configuration.memoryBytes)
                return try body(.backend(top), tiers)
            }
        case .memory:
            // Pages that never leave the process: `.memory`, which the space never seals, unless
            // a tier or --param encryption=randomKey asks for a backend to stack on.
            guard tier != .none || encryption.name != "none" else { return try body(.memory(bytes: swapBytes), Tiers()) }
            let memory = MemoryBackend(pageCount: swapBytes / SwapPage.size)
            let (top, tiers) = try stack(over: memory, budget: configuration.memoryBytes)
            return try body(.backend(top), tiers)
        case .redis(let url):
            var (redis, server) = try BenchRedisServer.connect(
                url: url, harness: harness,
                missing: "--device redis: redis-server is not installed (scripts/bootstrap installs it); or give --device redis://HOST:PORT"
            )
            defer { server?.kill() }
            redis.maxConnections = max(configuration.threads, 2) * 2
            let backend = try RedisBackend(pageCount: swapBytes / SwapPage.size, configuration: redis)
            // Best effort: a failed cleanup must not hide the run's own result or error.
            defer { _ = try? backend.removeAllPages() }
            if server == nil {
                // A server of the user's keeps what a killed run swapped there: say how to remove it.
                harness.log(
                    "swapping to \(redis.urlWithoutCredentials) in namespace \(backend.namespace); if this run is killed, `userswap redis-clean \(redis.urlWithoutCredentials) --namespace \(backend.namespace)` removes its pages"
                )
            }
            let (top, stacked) = try stack(over: backend, budget: configuration.memoryBytes)
            var tiers = stacked
            tiers.redis = backend
            return try body(.backend(top), tiers)
        case .redisCluster(let url):
            var cluster = try RedisClusterBackend.Configuration(url: url, environment: ProcessInfo.processInfo.environment)
            if (try? RedisClusterBackend.Configuration(url: url))?.password != nil {
                harness.log(
                    "warning: the password in the Redis URL is visible to every user of this machine (ps, /proc); give it in \(RedisBackend.Configuration.passwordEnvironmentVariable)"
                )
            }
            cluster.maxConnectionsPerNode = max(configuration.threads, 2) * 2
            cluster.durability = durability
            let backend = try RedisClusterBackend(pageCount: swapBytes / SwapPage.size, configuration: cluster)
            defer { _ = try? backend.removeAllPages() }
            harness.log(
                "swapping to \(cluster.urlWithoutCredentials) (\(backend.masters.count) masters, durability \(backend.durability)) in namespace \(backend.namespace); if this run is killed, `userswap redis-clean \(cluster.urlWithoutCredentials) --namespace \(backend.namespace)` removes its pages"
            )
            let (top, stacked) = try stack(over: backend, budget: configuration.memoryBytes)
            var tiers = stacked
            tiers.redisCluster = backend
            return try body(.backend(top), tiers)
        }
    }

    /// `--tier` over `lower`: the backend the space uses, and the tiers made.
    private func stack(over lower: any SwapBackend, budget: Int64) throws -> (top: any SwapBackend, tiers: Tiers) {
        var tiers = Tiers()
        var top = lower
        // With the space's encryption on, a compressed pool's write-backs are sealed below it
        // (the space does not seal a tier that already seals: sealed pages do not compress).
        let sealBelowPool = tier == .compressed && encryption.name != "none" && !(lower is MemoryBackend)
        if tier == .encrypted || tier == .compressedEncrypted || sealBelowPool {
            let sealed = try EncryptedTier(lower: top)
            tiers.encrypted = sealed
            top = sealed
        }
        if tier == .compressed || tier == .compressedEncrypted {
            let pool = try CompressedTier(lower: top, poolBytes: poolBytes ?? Int(budget), codec: codec)
            tiers.compressed = pool
            top = pool
        }
        return (top, tiers)
    }

    /// The backends of one run, kept for their figures.
    struct Tiers {
        var compressed: CompressedTier?
        var encrypted: EncryptedTier?
        var redis: RedisBackend?
        var redisCluster: RedisClusterBackend?
    }

    /// The run's swap in the report: what it was, and each tier's figures at the end of the run.
    func json(_ tiers: Tiers, space: SwapSpace?) -> JSONValue {
        var object: [String: JSONValue] = [
            "device": .string(device.name), "tier": .string(tier.rawValue),
            "encryption": .string(encryption.name),
        ]
        if device == .file { object["swap_file"] = .string(writtenOut ? "written" : "allocated") }
        if let c = tiers.compressed?.statistics {
            object["codec"] = .string("\(codec)")
            object["compressed"] = [
                "stored_pages": JSONValue(c.storedPages), "same_filled_pages": JSONValue(c.sameFilledPages),
                "pool_bytes": JSONValue(c.poolBytes), "peak_pool_bytes": JSONValue(c.peakPoolBytes), "pool_limit": JSONValue(c.poolLimit),
                "compression_ratio": c.cumulativeCompressionRatio.map { JSONValue($0) } ?? .null,
                "stores": JSONValue(c.stores), "same_filled_stores": JSONValue(c.sameFilledStores),
                "rejects": JSONValue(c.rejects), "pool_limit_rejects": JSONValue(c.poolLimitRejects),
                "write_backs": JSONValue(c.writeBacks), "loads": JSONValue(c.loads),
                "lower_reads": JSONValue(c.lowerReads), "lower_writes": JSONValue(c.lowerWrites),
            ]
        }
        var sealed = tiers.encrypted.map { [$0] } ?? []
        if let space { sealed += space.devices.compactMap { $0.backend as? EncryptedTier } }
        if !sealed.isEmpty {
            let e = sealed.map(\.statistics)
            object["encrypted"] = [
                "sealed_pages": JSONValue(e.reduce(0) { $0 + $1.sealedPages }),
                "opened_pages": JSONValue(e.reduce(0) { $0 + $1.openedPages }),
                "authentication_failures": JSONValue(e.reduce(0) { $0 + $1.authenticationFailures }),
            ]
        }
        if let r = tiers.redis?.statistics {
            object["redis"] = [
                "pages_read": JSONValue(r.pagesRead), "read_calls": JSONValue(r.readCalls),
                "pages_written": JSONValue(r.pagesWritten), "write_calls": JSONValue(r.writeCalls),
                "failed_calls": JSONValue(r.failedCalls), "retries": JSONValue(r.retries),
            ]
        }
        if let cluster = tiers.redisCluster {
            let r = cluster.statistics
            object["redis_cluster"] = [
                "durability": .string(cluster.durability.description), "masters": JSONValue(cluster.masters.count),
                "pages_read": JSONValue(r.pagesRead), "read_calls": JSONValue(r.readCalls),
                "pages_written": JSONValue(r.pagesWritten), "write_calls": JSONValue(r.writeCalls),
                "waits": JSONValue(r.waits), "degraded_writes": JSONValue(r.degradedWrites),
                "moved": JSONValue(r.movedRedirections), "ask": JSONValue(r.askRedirections),
                "failed_calls": JSONValue(r.failedCalls), "retry_rounds": JSONValue(r.retryRounds),
            ]
        }
        return .object(object)
    }

    /// One line for the log.
    func summary(_ tiers: Tiers) -> String? {
        guard let c = tiers.compressed?.statistics else { return nil }
        return
            "compressed tier (\(codec)): \(c.storedPages) pages in \(c.poolBytes >> 10) KiB (peak \(c.peakPoolBytes >> 10) KiB), ratio \(c.cumulativeCompressionRatio.map { LatencySummary.trimmed($0) } ?? "n/a"), \(c.sameFilledStores) same-filled, \(c.rejects) rejects, \(c.writeBacks) write-backs, \(c.loads) loads"
    }
}
