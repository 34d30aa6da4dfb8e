import Foundation

/// What a scenario gets to run with: the options, the protocol of this run, the machine, and the
/// tools that every benchmark needs (`runTimed` for threads against a clock, `measure` for
/// warm-up plus timed iterations, `progress`, `report`, `log`, `withScratchDirectory`).
///
/// A value type: cheap to pass, safe to capture in worker closures.
public struct BenchHarness: Sendable {
    /// The scenario's name, copied into every report.
    public let scenario: String
    public let options: BenchOptions
    /// The protocol of this run (one of `options.protocols`).
    public let swapProtocol: BenchProtocol
    /// Read once per command; every report carries it.
    public let machine: MachineInfo
    /// Where `log` and progress go; scenarios should not print to stdout, which may carry JSON.
    public let console: Console

    public init(scenario: String, options: BenchOptions, swapProtocol: BenchProtocol, machine: MachineInfo, console: Console) {
        self.scenario = scenario
        self.options = options
        self.swapProtocol = swapProtocol
        self.machine = machine
        self.console = console
    }

    /// `--threads`, or `value` when the user gave none.
    public func threads(default value: Int) -> Int { options.threads ?? value }

    /// `--seconds`, or `value` when the user gave none.
    public func seconds(default value: Double) -> Double { options.seconds ?? value }

    /// `--mode`, or `value`.
    public func mode(default value: BenchMode = .explicit) -> BenchMode { options.mode ?? value }

    /// A note for the user on stderr, prefixed with the scenario's name.
    public func log(_ message: String) {
        console.errorLine("\(scenario): \(message)")
    }

    /// A progress display for one phase (silent with `--no-progress`). Call `update` with the
    /// fraction done and `finish` at the end. `runTimed` and `measure` draw their own.
    public func progress(_ label: String) -> ProgressReporter {
        ProgressReporter(label: "\(scenario) \(label)", console: console, enabled: options.showsProgress)
    }

    /// A report with everything a timed run knows filled in: scenario, mode, this protocol
    /// (none for `.kernel`), threads, ops, seconds, latency, peak RSS now, the machine. Set
    /// `budgetBytes`, `dataBytes`, the swap counters, `verified` and `extras` on the result.
    /// The extras start with `latency_cdf` (`[[quantile, µs], …]`), which scripts/plot draws.
    public func report(_ run: TimedRun, mode: BenchMode? = nil) -> BenchReport {
        let mode = mode ?? self.mode()
        return BenchReport(
            scenario: scenario,
            mode: mode,
            swapProtocol: mode == .kernel ? nil : swapProtocol,
            threads: run.threads,
            ops: run.ops,
            seconds: run.seconds,
            latency: run.latency,
            budgetBytes: options.memoryBytes ?? 0,
            dataBytes: options.dataBytes ?? 0,
            peakResidentBytes: ResidentMemory.peakBytes(),
            machine: machine,
            extras: ["latency_cdf": run.histogram.cdf]
        )
    }

    /// A fresh folder for swap files (under `--dir` if given, else the system's temporary
    /// folder), removed when `body` returns or throws.
    public func withScratchDirectory<T>(_ body: (_ path: String) throws -> T) throws -> T {
        try ScratchDirectory.with(prefix: "userswap-bench-\(scenario)", in: options.directory, body)
    }
}
