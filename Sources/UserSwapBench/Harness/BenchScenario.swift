/// A benchmark `userswap bench NAME` can run. A scenario is a type with a name and a `run`
/// that uses the harness for everything that is not its workload: timing threads, histograms,
/// warm-up and iterations, progress, the report's common fields.
///
/// `run` is called once per protocol: for `--protocol both` the bench command calls it with a
/// `.swapcache` harness and then a `.legacy` one (`all`: then `.legacyWQ` and `.legacyBypass`
/// too), and writes the reports as a comparison.
/// A scenario that has no protocol to choose ignores `harness.swapProtocol`.
///
/// To add one: write the type in `Sources/UserSwapBench/Scenarios/`, declare its `--param`s, and
/// list it in `BenchRegistry.all`:
///
/// ```swift
/// enum AllocScenario: BenchScenario {
///     static let name = "alloc"
///     static let summary = "swap-slot allocate + free, by thread count"
///     static let batch = BenchParameter.integer("batch", 1...4096, default: 256, "runs held before they are freed")
///     static func parameters(mode: BenchMode?) -> [BenchParameter] { [batch] }
///
///     static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
///         let batch: Int = try options.value(Self.batch)          // the parser checked it
///         let device = try SwapDevice(backend: MemoryBackend(pageCount: 1 << 20))
///         let run = try harness.runTimed(
///             "order 0", threads: harness.threads(default: 2),
///             limit: .seconds(harness.seconds(default: 1)), opsPerCall: batch,
///             setUp: { _ in [SwapEntry]() },
///             operation: { (held: inout [SwapEntry]) in
///                 held.removeAll(keepingCapacity: true)
///                 for _ in 0..<batch { held.append(try device.allocate(order: 0)) }
///                 for e in held { device.put(e, count: 1) }
///             })
///         var report = harness.report(run)    // scenario, protocol, ops, latency, RSS, machine
///         report.extras["metadata_bytes_per_slot"] = JSONValue(SwapDevice.metadataBytesPerSlot)
///         report.verified = device.usedPages == 0 && device.checkInvariants().isEmpty
///         return report
///     }
/// }
/// ```
public protocol BenchScenario {
    /// What users type: `userswap bench alloc`. Lower case, no spaces.
    static var name: String { get }
    /// One line for `userswap help bench`.
    static var summary: String { get }
    /// Whether `bench --list` and `help bench` show it; internal checks say `false`.
    static var isListed: Bool { get }
    /// The `--param`s it understands when run in `mode` (nil: no `--mode` given). The parser
    /// rejects any other key, and any value a parameter does not accept, as a usage error.
    static func parameters(mode: BenchMode?) -> [BenchParameter]
    /// Runs the scenario once for `harness.swapProtocol` and returns its report. Throw a
    /// `SwapError` from the engine or a `BenchError` for anything else (a verification
    /// mismatch, a bad `--param`): the command prints it and exits with status 1.
    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport
}

extension BenchScenario {
    public static var isListed: Bool { true }
    public static func parameters(mode: BenchMode?) -> [BenchParameter] { [] }
}

/// Every scenario `userswap bench` knows.
public enum BenchRegistry {
    /// Add new scenarios here (listed ones in the order `make bench` should run them).
    public static var all: [any BenchScenario.Type] {
        [
            SelfCheckScenario.self,
            AllocScenario.self,
            PinScenario.self,
            RaceScenario.self,
            FaultsScenario.self,
            ZipfScenario.self,
            RandomScenario.self,
            SeqScenario.self,
            UsememScenario.self,
            HashTableScenario.self,
            MultigetScenario.self,
            TiersScenario.self,
            RedisScenario.self,
            DeviceLimitsScenario.self,
            ArrayScenario.self,
            TaskGroupScenario.self,
        ]
    }

    /// The scenarios users see.
    public static var listed: [any BenchScenario.Type] { all.filter { $0.isListed } }

    package static var listedNames: [String] { listed.map { $0.name } }

    /// The scenario called `name`, listed or not.
    public static func scenario(named name: String) -> (any BenchScenario.Type)? {
        all.first { $0.name == name }
    }
}
