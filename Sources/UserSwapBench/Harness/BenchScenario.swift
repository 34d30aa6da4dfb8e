/// A benchmark `userswap bench NAME` can run. A scenario is a type with a name and a `run`
/// that uses the harness for everything that is not its workload: timing threads, histograms,
/// warm-up and iterations, progress, the report's common fields.
///
/// `run` is called once per protocol: for `--protocol both` the bench command calls it with a
/// `.swapcache` harness and then a `.legacy` one (`all`: then `.legacyWQ` and `.legacyBypass`
/// too), and writes the reports as a comparison.
/// A scenario that has no protocol to choose ignores `harness.swapProtocol`.
///
/// To add one: write the type in `Sources/UserSwapBench/Scenarios/` and list it in `BenchRegistry.all`:
///
/// ```swift
/// enum AllocScenario: BenchScenario {
///     static let name = "alloc"
///     static let summary = "swap-slot allocate + free, by folio order and thread count"
///
///     static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
///         let device = try makeDevice()                    // the engine's, not the harness's
///         var results: [JSONValue] = []
///         var widest: TimedRun?
///         for order in [0, 2, 4, 9] {
///             for threads in options.threads.map({ [$0] }) ?? [1, harness.machine.cores] {
///                 let run = try harness.runTimed("order \(order) × \(threads)", threads: threads,
///                                                limit: .seconds(harness.seconds(default: 1))) { _ in
///                     let entry = try device.allocate(order: order)
///                     try device.free(entry, order: order)
///                 }
///                 results.append(["order": JSONValue(order), "threads": JSONValue(threads),
///                                 "ops_per_s": JSONValue(run.opsPerSecond), "latency_us": JSONValue(run.latency)])
///                 if order == 0 { widest = run }               // the headline numbers
///             }
///         }
///         var report = harness.report(widest!)             // scenario, protocol, ops, latency, RSS, machine
///         report.extras["results"] = .array(results)
///         report.extras["metadata_bytes_per_slot"] = JSONValue(SwapDevice.metadataBytesPerSlot)
///         report.verified = device.usedPages == 0         // everything allocated was freed
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
    /// Runs the scenario once for `harness.swapProtocol` and returns its report. Throw a
    /// `SwapError` from the engine or a `BenchError` for anything else (a verification
    /// mismatch, a bad `--param`): the command prints it and exits with status 1.
    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport
}

extension BenchScenario {
    public static var isListed: Bool { true }
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
            TiersScenario.self,
            RedisScenario.self,
            DeviceLimitsScenario.self,
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
