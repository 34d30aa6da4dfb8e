import UserSwap
import UserSwapBench

/// The options of `userswap run`, validated by the parser.
public struct RunOptions: Equatable, Sendable {
    /// Where the run swaps to.
    public enum Swap: Equatable, Sendable {
        /// An unnamed swap file in the temporary folder (the default): nothing to remove.
        case temporaryFile
        /// `--swap FILE`: used if it exists, created (formatted) if not; kept afterwards.
        case file(String)
        /// Pages in this process's memory: for tests (no flag selects it).
        case memory
    }

    /// `--workload`.
    public var workload: WorkloadKind = .zipf
    /// `--memory`: the RAM budget.
    public var memoryBytes: Int64 = 256 << 20
    /// `--data`: the workload's data, larger than the budget by default: the point is to swap.
    public var dataBytes: Int64 = 1 << 30
    /// `--threads`.
    public var threads = 2
    /// `--ops N` or `--seconds S`; nil: `defaultSeconds` (open workloads only).
    public var limit: WorkloadLimit?
    public var swap: Swap = .temporaryFile
    /// `--protocol`.
    public var swapProtocol: BenchProtocol = .swapcache
    /// `--mode`: pins on an explicit region, or plain loads and stores on a transparent one.
    public var mode: BenchMode = .explicit
    /// `--faults`: who serves a transparent region's faults.
    public var transparentFaults: TransparentRegion.FaultService = .handlerThreads(4)
    /// `--policy`: how reclaim picks pages.
    public var reclaimPolicy: ReclaimPolicy = .frequency
    /// `--write-ratio`; nil: `WorkloadConfiguration.defaultWriteRatio`.
    public var writeRatio: Double?
    /// `--seed`.
    public var seed: UInt64 = WorkloadConfiguration.defaultSeed
    /// `--json [FILE]`.
    public var json: JSONDestination?
    /// `false` with `--no-progress`.
    public var showsProgress = true
    /// `false` with `--no-encryption`: pages go to the swap file in clear. Sealed by default
    /// (`SwapSpace.Encryption.randomKey`).
    public var encryption = true
    /// `--dir DIR`: the folder of the unnamed swap file; nil: `TMPDIR`, else /tmp.
    public var directory: String?
    #if DEBUG
    /// Tests only (see `WorkloadConfiguration.swapDeviceOverride`); no option sets it.
    public var swapDeviceOverride: SwapDeviceOverride?
    #endif

    /// The length of the access phase without `--ops` or `--seconds`: with populate and
    /// verification, `make run` takes 20–40 s on two cores.
    public static let defaultSeconds = 20.0

    public init() {}

    /// The workload run these options describe.
    public var configuration: WorkloadConfiguration {
        var c = WorkloadConfiguration(
            kind: workload, memoryBytes: memoryBytes, dataBytes: dataBytes, threads: threads,
            limit: limit ?? .seconds(Self.defaultSeconds),
            writeRatio: writeRatio ?? WorkloadConfiguration.defaultWriteRatio,
            seed: seed, swapProtocol: swapProtocol)
        c.transparentFaults = transparentFaults
        c.reclaimPolicy = reclaimPolicy
        #if DEBUG
        c.swapDeviceOverride = swapDeviceOverride
        #endif
        return c
    }
}

extension CommandLineTool {
    /// `userswap run [options]`: every option is optional; the combinations that make no sense
    /// are usage errors (`--ops` with `--seconds`; a limit or write ratio for a fixed job).
    static func parseRun(_ parsed: ParsedArguments) throws(UsageError) -> RunOptions {
        let verb = Verb.run
        if let extra = parsed.positionals.first {
            throw UsageError("unexpected argument '\(extra)'; run takes only options", verb: verb)
        }
        var options = RunOptions()
        if let text = parsed.value("workload") {
            options.workload = try ArgumentParser.choice(text, option: "workload", verb: verb) as WorkloadKind
        }
        if let text = parsed.value("memory") {
            options.memoryBytes = try ArgumentParser.size(text, option: "memory", minimum: 64 << 10, verb: verb)
        }
        if let text = parsed.value("data") {
            options.dataBytes = try ArgumentParser.size(text, option: "data", minimum: 8 << 10, verb: verb)
        }
        if let text = parsed.value("threads") {
            options.threads = try ArgumentParser.integer(text, option: "threads", in: 1...1024, verb: verb)
        }
        if parsed.has("ops") && parsed.has("seconds") {
            throw UsageError("give --ops or --seconds, not both", verb: verb)
        }
        if let text = parsed.value("ops") {
            options.limit = .operations(try ArgumentParser.integer(text, option: "ops", in: 1...Int(Int64.max / 2), verb: verb))
        }
        if let text = parsed.value("seconds") {
            options.limit = .seconds(try ArgumentParser.seconds(text, option: "seconds", verb: verb))
        }
        if let text = parsed.value("write-ratio") {
            guard let ratio = Double(text.trimmingWhitespace()), (0...1).contains(ratio) else {
                throw UsageError("--write-ratio '\(text)' is not a fraction from 0 to 1 (e.g. 0.2)", verb: verb)
            }
            options.writeRatio = ratio
        }
        if !options.workload.isOpen {
            for option in ["ops", "seconds", "write-ratio"] where parsed.has(option) {
                throw UsageError(
                    "--\(option) does not apply to \(options.workload.rawValue): it is a fixed job whose length follows --data", verb: verb)
            }
        }
        if let text = parsed.value("swap") {
            guard !text.isEmpty else { throw UsageError("--swap needs a file name", verb: verb) }
            options.swap = .file(text)
        }
        if let text = parsed.value("dir") {
            guard !text.isEmpty else { throw UsageError("--dir needs a folder", verb: verb) }
            guard !parsed.has("swap") else {
                throw UsageError("give --swap FILE or --dir DIR, not both: --dir is where the unnamed swap file goes", verb: verb)
            }
            options.directory = text
        }
        if let text = parsed.value("mode") {
            guard text == "explicit" || text == "transparent" else {
                throw UsageError("--mode '\(text)' is not one of: explicit, transparent", verb: verb)
            }
            options.mode = text == "explicit" ? .explicit : .transparent
        }
        if let text = parsed.value("faults") {
            guard options.mode == .transparent else {
                throw UsageError("--faults applies to --mode transparent only", verb: verb)
            }
            switch text {
            case "handler-threads": options.transparentFaults = .handlerThreads(4)
            case "faulting-thread": options.transparentFaults = .faultingThread
            default: throw UsageError("--faults '\(text)' is not one of: handler-threads, faulting-thread", verb: verb)
            }
        }
        if let text = parsed.value("policy") {
            guard let policy = ReclaimPolicy(benchName: text.replacingOccurrences(of: "-", with: "_")) else {
                throw UsageError("--policy '\(text)' is not one of: frequency, workingset, active-inactive, second-chance", verb: verb)
            }
            options.reclaimPolicy = policy
        }
        if let text = parsed.value("protocol") {
            options.swapProtocol = try ArgumentParser.choice(text, option: "protocol", verb: verb) as BenchProtocol
        }
        if let text = parsed.value("seed") {
            guard let seed = UInt64(text) else {
                throw UsageError("--seed '\(text)' is not a whole number from 0 to \(UInt64.max)", verb: verb)
            }
            options.seed = seed
        }
        if parsed.has("json") {
            let file = parsed.value("json")
            options.json = (file == nil || file == "-") ? .stdout : .file(file!)
            if case .file(let path) = options.json, path.isEmpty {
                throw UsageError("--json= needs a file name (or `--json` alone for stdout)", verb: verb)
            }
        }
        options.showsProgress = !parsed.has("no-progress")
        options.encryption = !parsed.has("no-encryption")
        return options
    }
}
