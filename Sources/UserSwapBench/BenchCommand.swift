import Foundation
import UserSwap

/// `userswap bench SCENARIO …`: runs the scenario once per requested protocol, prints a summary,
/// and writes the JSON report (a single run, or a comparison of two). A run whose data did not
/// verify still writes its report (`verified: false`, without comparison ratios, which would
/// compare a broken run) and exits 1, so `make bench` stops there.
package enum BenchCommand {
    package static func run(_ options: BenchOptions, console: Console) -> Int32 {
        #if DEBUG
        // Debug builds run the engine 10–100× slower, with checks on every step: their numbers
        // would mislead anyone who reads them.
        console.errorLine("userswap: benchmarks need a release build: make bench")
        return ExitCode.failure
        #else
        return exitStatus(options, console: console)
        #endif
    }

    /// `run` without the release-build check: the status of `perform`, its error on stderr.
    static func exitStatus(_ options: BenchOptions, console: Console) -> Int32 {
        do {
            try perform(options, console: console)
            return ExitCode.success
        } catch {
            let text = (error as? SwapError)?.description(for: .commandLine) ?? "\(error)"
            console.errorLine("userswap: bench \(options.scenario): \(text)")
            return ExitCode.failure
        }
    }

    /// The work of `run` without the release-build check, so tests can drive the whole path in
    /// a debug build.
    @discardableResult
    static func perform(_ options: BenchOptions, console: Console) throws -> BenchOutput {
        guard let scenario = BenchRegistry.scenario(named: options.scenario) else {
            // The parser checks the name; only a direct caller can get here.
            throw BenchError("unknown scenario '\(options.scenario)'")
        }
        // The paths it will write, before any work: a bad one fails now, in words.
        if case .file(let path) = options.json { try PathCheck.writableFile(path, named: "--json") }
        if let folder = options.directory {
            try PathCheck.writableFolder(folder, named: "--dir")
        } else {
            try PathCheck.writableFolder(SwapFile.temporaryDirectory, named: getenv("TMPDIR") != nil ? "TMPDIR" : "the temporary folder")
        }
        if options.tier != nil || options.device != nil, WorkloadKind(rawValue: scenario.name) == nil {
            throw BenchError(
                "--tier and --device apply to the workload scenarios (\(WorkloadKind.allCases.map(\.rawValue).joined(separator: ", "))); \(scenario.name) chooses its own devices"
            )
        }
        var resultsDirectory: String?
        if case .file(let path) = options.json {
            resultsDirectory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        }
        let machine = MachineInfo.current(directory: resultsDirectory)

        var reports: [BenchReport] = []
        for swapProtocol in options.protocols {
            // Peak RSS per run, not per process, when the kernel lets us reset it.
            ResidentMemory.resetPeak()
            let harness = BenchHarness(
                scenario: scenario.name, options: options, swapProtocol: swapProtocol, machine: machine, console: console)
            var report = try scenario.run(options: options, harness: harness)
            // Every report says what `top` saw (the workloads wrote it with their sampled peak).
            report.addProcessMemory()
            reports.append(report)
        }
        let output: BenchOutput =
            reports.count >= 2
            ? .comparison(ComparisonReport(ours: reports[0], others: Array(reports.dropFirst())))
            : .single(reports[0])

        // The summary goes where the JSON does not.
        let summary = output.text()
        if options.json == .stdout {
            console.errorLine(summary)
        } else {
            console.line(summary)
        }
        if let destination = options.json {
            try JSONOutput.write(output, to: destination, console: console)
            if case .file(let path) = destination {
                console.line("wrote \(path)")
            }
        }
        guard output.verified else {
            let failed = reports.filter { !$0.verified }.map { $0.swapProtocol?.rawValue ?? $0.mode.rawValue }
            throw BenchError(
                "the data did not verify (\(failed.joined(separator: ", "))): the figures above measure a broken run; the report says verified: false and has no comparison ratios"
            )
        }
        return output
    }
}

/// What one bench command produces: one report, or two side by side.
enum BenchOutput: Encodable, Equatable {
    case single(BenchReport)
    case comparison(ComparisonReport)

    func encode(to encoder: any Encoder) throws {
        switch self {
        case .single(let report): try report.encode(to: encoder)
        case .comparison(let comparison): try comparison.encode(to: encoder)
        }
    }

    func text() -> String {
        switch self {
        case .single(let report): report.text()
        case .comparison(let comparison): comparison.text()
        }
    }

    /// Whether every run's data verified.
    var verified: Bool {
        switch self {
        case .single(let report): report.verified
        case .comparison(let comparison): comparison.verified
        }
    }
}
