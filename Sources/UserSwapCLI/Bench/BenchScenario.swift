/// A benchmark `userswap bench NAME` can run. A scenario is a type with a name and a `run`
/// that uses the harness for everything that is not its workload: timing threads, histograms,
/// warm-up and iterations, progress, the report's common fields.
///
/// `run` is called once per protocol: for `--protocol both` the bench command calls it with a
/// `.swapcache` harness and then a `.legacy` one, and writes the two reports as a comparison.
/// A scenario that has no protocol to choose ignores `harness.swapProtocol`.
///
/// To add one: write `enum AllocScenario: BenchScenario { … }` in `Bench/Scenarios/` and list it
/// in `BenchRegistry.all`.
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
        ]
    }

    /// The scenarios users see.
    public static var listed: [any BenchScenario.Type] { all.filter { $0.isListed } }

    static var listedNames: [String] { listed.map { $0.name } }

    /// The scenario called `name`, listed or not.
    public static func scenario(named name: String) -> (any BenchScenario.Type)? {
        all.first { $0.name == name }
    }
}
