import UserSwap

/// The options of `userswap bench SCENARIO …`, validated by the parser. Every field a scenario
/// might not care about is optional, so that a scenario can pick its own default (or sweep
/// several values) when the user said nothing: `options.threads ?? 1`.
public struct BenchOptions: Equatable, Sendable {
    /// The scenario's registered name (`alloc`); the parser checked that it exists.
    public var scenario: String
    /// `--json [FILE]`; `nil`: no JSON, a human summary only.
    public var json: JSONDestination?
    /// `--threads N`, 1…4096.
    public var threads: Int?
    /// `--seconds S`: the length of each timed phase.
    public var seconds: Double?
    /// `--protocol`: `[.swapcache]` by default, both for `both` (the command runs the scenario
    /// once per protocol and writes a comparison).
    public var protocols: [BenchProtocol]
    /// `--mode`.
    public var mode: BenchMode?
    /// `--memory SIZE`: the RAM budget.
    public var memoryBytes: Int64?
    /// `--data SIZE`: the working set.
    public var dataBytes: Int64?
    /// `--iterations N`: timed iterations of a fixed job.
    public var iterations: Int?
    /// `--warmup N`: untimed iterations before them.
    public var warmup: Int?
    /// `--seed N`.
    public var seed: UInt64?
    /// `--dir DIR`: where swap files go.
    public var directory: String?
    /// `--tier none|compressed|encrypted|compressed+encrypted`: a tier stacked on the swap
    /// device (workload scenarios).
    public var tier: String?
    /// `--device file|memory|redis|redis://HOST:PORT`: where swapped pages go (workload scenarios).
    public var device: String?
    /// `--param KEY=VALUE`, repeated: settings only one scenario understands.
    public var parameters: [String: String]
    /// `false` with `--no-progress`.
    public var showsProgress: Bool
    /// `false` with `--no-encryption`: pages go to the swap device in clear (the kernel's swap,
    /// which benchmarks compare against, does not encrypt either). Sealed by default.
    public var encryption: Bool
    #if DEBUG
    /// Tests only (see `WorkloadConfiguration.swapDeviceOverride`); no option sets it.
    public var swapDeviceOverride: SwapDeviceOverride?
    #endif

    public init(
        scenario: String,
        json: JSONDestination? = nil,
        threads: Int? = nil,
        seconds: Double? = nil,
        protocols: [BenchProtocol] = [.swapcache],
        mode: BenchMode? = nil,
        memoryBytes: Int64? = nil,
        dataBytes: Int64? = nil,
        iterations: Int? = nil,
        warmup: Int? = nil,
        seed: UInt64? = nil,
        directory: String? = nil,
        tier: String? = nil,
        device: String? = nil,
        parameters: [String: String] = [:],
        showsProgress: Bool = true,
        encryption: Bool = true
    ) {
        self.encryption = encryption
        self.scenario = scenario
        self.json = json
        self.threads = threads
        self.seconds = seconds
        self.protocols = protocols
        self.mode = mode
        self.memoryBytes = memoryBytes
        self.dataBytes = dataBytes
        self.iterations = iterations
        self.warmup = warmup
        self.seed = seed
        self.directory = directory
        self.tier = tier
        self.device = device
        self.parameters = parameters
        self.showsProgress = showsProgress
    }

    /// The spaces' encryption: sealed by default, none with `--no-encryption`.
    public var spaceEncryption: SwapSpace.Encryption { encryption ? .randomKey : .none }

    /// A `--param` value parsed as `T` (`Int`, `Double`, `Bool`, `String`…), or `default` if the
    /// user did not give it. A value that does not parse is a `BenchError` naming the parameter.
    public func parameter<T: LosslessStringConvertible>(_ key: String, default value: T) throws(BenchError) -> T {
        guard let text = parameters[key] else { return value }
        guard let parsed = T(text) else {
            throw BenchError("--param \(key)=\(text): '\(text)' is not a valid \(T.self)")
        }
        return parsed
    }
}

/// The swap-in synchronization protocol a run uses: swap-cache synchronization, or one of the three
/// has-cache-bit protocols the kernel used before it (docs/KERNEL-FIDELITY.md).
public enum BenchProtocol: String, CaseIterable, Sendable, Encodable {
    case swapcache
    /// The kernel just before swap-cache synchronization: the folio inserted, then read; a racer finding the bit sleeps until
    /// the next tick.
    case legacy
    /// 6.12's synchronous-device bypass with `swapcache_wq`.
    case legacyWQ = "legacy-wq"
    /// The synchronous-device bypass before 6.12: a full tick's sleep.
    case legacyBypass = "legacy-bypass"

    /// The engine's protocol, with `tick` as the legacy protocols' jiffy.
    public func sync(tick: Duration = SwapInSync.kernelTick) -> SwapInSync {
        switch self {
        case .swapcache: .swapCache
        case .legacy: .hasCacheBit(tick: tick)
        case .legacyWQ: .hasCacheBitWaitQueue(tick: tick)
        case .legacyBypass: .hasCacheBitBypass(retryAfter: tick)
        }
    }

    /// What `--protocol` accepts besides one protocol: `both` (the swap cache and `legacy`) and
    /// `all`.
    public static func parse(_ text: String) -> [BenchProtocol]? {
        switch text {
        case "both": [.swapcache, .legacy]
        case "all": allCases
        default: BenchProtocol(rawValue: text).map { [$0] }
        }
    }
}

/// How the workload reaches its memory: explicit pins, transparent faults, or the kernel's swap.
public enum BenchMode: String, CaseIterable, Sendable, Encodable {
    case explicit
    case transparent
    case kernel
}

/// A failure inside a benchmark that is not the engine's (`SwapError`): a bad `--param`, a
/// verification mismatch. Reported like a `SwapError`: message on stderr, exit status 1.
public struct BenchError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
