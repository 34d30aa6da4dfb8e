import UserSwap

/// `userswap bench zipf|random|seq|usemem|hashtable|multiget`: the workloads of `userswap run`
/// (`Workloads/`), sized to finish in seconds (64 MiB of budget, 256 MiB of data: 4× over;
/// the hash table 32 MiB and 128 MiB), on a swap file in a scratch folder, two threads, 5 s of
/// accesses for the open workloads. Every run ends with the workload's full verification.
///
/// Parameters (`--param KEY=VALUE`):
/// - `policy=frequency|workingset|active_inactive|second_chance|all`: the reclaim policy
///   (`ReclaimPolicy`, default frequency); `all` runs each in one invocation, same seed and the
///   same operations on each thread (the later runs replay the first's per-thread counts), and
///   reports their swap-ins side by side in `policy_comparison`.
/// - `ops=N`: a fixed number of accesses instead of `--seconds` (open workloads).
/// - `write_ratio=R` (open workloads, default 0.2; `seq` 0, see `SeqScenario`), `theta=T` (zipf, default 0.99),
///   `load=F` (hashtable fill, default 0.5).
/// - `device=file|memory`: swap to a file (default) or to process memory (also `--device`).
/// - `repeats=N` (1, 2, 4 … 64): each page repeats its first 4096/N bytes N times, so that it
///   compresses to about 1/N (default 1: the pattern does not compress at all).
/// - With `--tier compressed|encrypted|compressed+encrypted` (`WorkloadSwap`): `codec=lz4|zstd|zstd-N`
///   and `pool=SIZE` (the compressed pool, default the budget); `encryption=none|randomKey`
///   seals every device of the space (`SwapSpace.Configuration.encryption`). `--device redis`
///   starts a private `redis-server` for the run; `--device redis://HOST:PORT` uses that one;
///   `--device redis+cluster://HOST:PORT,…` a Redis Cluster, with `durability=primary|replicated`.
///   The report's `swap` object holds the device, the tier and each tier's figures.
/// - `io=automatic|io_uring|thread_pool|synchronous`: the device's I/O engine (default automatic:
///   io_uring for a file, falling back to the thread pool; the calling thread for memory).
/// - `reads=caller|engine`: a fault's read done by the faulting thread (default) or submitted to
///   the engine like every write. `writes_in_flight=N`: write-backs in flight at once (default 2).
/// - `swap_size=SIZE`: the swap device's size, header included (default twice the data and a
///   page: `WorkloadConfiguration.swapBytes`); `bench/kernel-compare` gives both sides the same.
/// - `folio=SIZE`: the explicit region's folio size (default 4K; 8K…2M, a power of two): whole
///   folios are swapped out, read back and read ahead.
///
/// `--mode transparent` runs it on a transparent region: plain loads and stores through a
/// pointer, faults served by userfaultfd (`TransparentPageStore`); `faults=handler_threads`
/// (default, 4 threads; `handler_threads:N` for N) or `faults=faulting_thread` chooses who
/// resolves them (`TransparentRegion.FaultService`). `--mode kernel` runs the same
/// workload on plain memory swapped by the kernel (`WorkloadScenarios+Kernel.swift`).
enum WorkloadBench {
    /// `policy=…`: the reclaim policy; with `allowingAll`, `all` runs each.
    static func policy(allowingAll: Bool) -> BenchParameter {
        .choice(
            "policy", ReclaimPolicy.allCases.map(\.benchName) + (allowingAll ? ["all"] : []), default: ReclaimPolicy.frequency.benchName,
            "the reclaim policy" + (allowingAll ? "; all: each in turn over the same operations" : ""))
    }
    static let ops = BenchParameter.integer(
        "ops", 1...Int.max, default: nil, "a fixed number of accesses instead of --seconds (open workloads)")
    static let writeRatio = BenchParameter.number(
        "write_ratio", 0...1, default: nil,
        "the share of accesses that write (default 0.2; seq 0)")
    static let theta = BenchParameter(
        "theta", type: "number above 0 and below 1", default: String(WorkloadConfiguration.defaultTheta), "Zipf's θ"
    ) { text in
        Double(text).map { $0 > 0 && $0 < 1 } ?? false
    }
    static let load = BenchParameter(
        "load", type: "number above 0, at most 0.9", default: String(WorkloadConfiguration.defaultLoadFactor), "the hash table's fill"
    ) { text in
        Double(text).map { $0 > 0 && $0 <= 0.9 } ?? false
    }
    static let repeats = BenchParameter.choice(
        "repeats", ["1", "2", "4", "8", "16", "32", "64"], default: "1",
        "each page repeats its first 4096/N bytes N times (compresses to about 1/N)")
    static let io = BenchParameter.choice(
        "io", ["automatic", "auto", "io_uring", "thread_pool", "synchronous"], default: "automatic",
        "the device's I/O engine")
    static let reads = BenchParameter.choice(
        "reads", ["caller", "engine"], default: "caller",
        "a fault's read done by the faulting thread or submitted to the engine")
    static let writesInFlight = BenchParameter.integer(
        "writes_in_flight", 1...4096, default: IOEngineOptions().maxWritesInFlight,
        "write-backs in flight at once")
    static let faults = BenchParameter(
        "faults", type: "handler_threads|handler_threads:N|faulting_thread", default: "handler_threads",
        "who resolves a transparent region's faults (handler_threads: 4 threads)"
    ) { text in
        (try? transparentFaults(text)) != nil
    }
    static let folio = BenchParameter(
        "folio", type: "size, a power of two 4K…2M", default: "4K",
        "the explicit region's folio size"
    ) { text in
        guard case .success(let size) = ByteSize.parse(text) else { return false }
        return size >= 4096 && size <= 2 << 20 && size & (size - 1) == 0
    }
    static let swapSize = BenchParameter.size(
        "swap_size", 2 << 20...1 << 44, default: nil,
        "the swap device's size, header included (default: twice the data and a page)")
    static let device = BenchParameter(
        "device", type: "file|memory|redis|redis://HOST:PORT|unix:///SOCKET", default: "file",
        "where swapped pages go (also --device)"
    ) { WorkloadDevice($0) != nil }

    /// What the workload scenarios take, by mode: UserSwap's knobs, or the kernel's.
    static func parameters(mode: BenchMode?) -> [BenchParameter] {
        if mode == .kernel { return kernelParameters }
        return [
            policy(allowingAll: true), ops, writeRatio, theta, load, device, repeats, io, reads, writesInFlight, faults, folio, swapSize,
        ]
            + WorkloadSwap.parameters
    }

    /// The budget and data of a workload's benchmark when `--memory`/`--data` are not given.
    static func defaultSizes(_ kind: WorkloadKind) -> (memory: Int64, data: Int64) {
        // Every insert and lookup of the table is a random page: about 1.5 swap-ins per key at
        // 4×, so the table is half the others' size to stay within ~20 s.
        kind == .hashtable ? (32 << 20, 128 << 20) : (64 << 20, 256 << 20)
    }

    /// `--param faults=handler_threads[:N]|faulting_thread`: who serves a transparent region's faults.
    static func transparentFaults(_ options: BenchOptions) throws -> TransparentRegion.FaultService {
        try transparentFaults(try options.value(faults) as String)
    }

    static func transparentFaults(_ text: String) throws(BenchError) -> TransparentRegion.FaultService {
        if text == "faulting_thread" { return .faultingThread }
        let parts = text.split(separator: ":")
        if parts.first == "handler_threads" {
            if parts.count == 1 { return .handlerThreads(4) }
            if parts.count == 2, let n = Int(parts[1]), n > 0 { return .handlerThreads(n) }
        }
        throw BenchError("--param faults=\(text): use handler_threads, handler_threads:N or faulting_thread")
    }

    static func run(_ kind: WorkloadKind, options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        let swap = try WorkloadSwap(options: options)
        if harness.mode() == .kernel { return try runKernel(kind, options: options, harness: harness) }
        let configuration = try configuration(kind, options: options, harness: harness)
        guard options.parameters["policy"] == "all" else {
            let outcome = try runOnce(configuration, swap: swap, label: kind.rawValue, harness: harness)
            return report(outcome, harness: harness)
        }
        // Every policy over the same operations: the first run's count per thread, replayed
        // with the same seed, so each thread draws the same pages under each policy.
        var outcomes: [(ReclaimPolicy, WorkloadOutcome)] = []
        for policy in PolicyComparison.order {
            var one = configuration
            one.reclaimPolicy = policy
            if kind.isOpen, let first = outcomes.first { one.limit = .operationsPerThread(first.1.openOpsPerThread) }
            outcomes.append((policy, try runOnce(one, swap: swap, label: "\(kind.rawValue) policy \(policy.benchName)", harness: harness)))
        }
        let comparison = PolicyComparison(outcomes: outcomes)
        var report = report(outcomes[0].1, harness: harness)
        report.verified = outcomes.allSatisfy { $0.1.verified }
        report.extras["policy_comparison"] = comparison.json
        harness.log(comparison.text)
        return report
    }

    /// The options, the scenario's defaults and the `--param`s, as a workload configuration.
    static func configuration(_ kind: WorkloadKind, options: BenchOptions, harness: BenchHarness) throws -> WorkloadConfiguration {
        let sizes = defaultSizes(kind)
        var limit = WorkloadLimit.seconds(harness.seconds(default: 5))
        if options.parameters["ops"] != nil {
            limit = .operations(try options.value(Self.ops))
        }
        var configuration = WorkloadConfiguration(
            kind: kind, memoryBytes: options.memoryBytes ?? sizes.memory, dataBytes: options.dataBytes ?? sizes.data,
            threads: harness.threads(default: 2), limit: limit,
            writeRatio: try options.parameter(
                "write_ratio", default: kind == .seq ? SeqScenario.defaultWriteRatio : WorkloadConfiguration.defaultWriteRatio),
            theta: try options.value(Self.theta),
            loadFactor: try options.value(Self.load),
            seed: options.seed ?? WorkloadConfiguration.defaultSeed,
            swapProtocol: harness.swapProtocol)
        configuration.pageRepeats = try options.value(Self.repeats)
        if kind == .multiget {
            configuration.batch = try options.value(MultigetScenario.batch)
            configuration.prefetch = (try options.value(MultigetScenario.prefetch) as String) == "on"
        }
        let io: String = try options.value(Self.io)
        guard let engine = IOEngineChoice(rawValue: io == "auto" ? "automatic" : io) else {
            throw BenchError("--param io=\(io): use automatic, io_uring, thread_pool or synchronous")
        }
        configuration.ioEngine = engine
        let reads: String = try options.value(Self.reads)
        guard reads == "caller" || reads == "engine" else { throw BenchError("--param reads=\(reads): use caller or engine") }
        configuration.ioReadsInCaller = reads == "caller"
        let writes: Int = try options.value(Self.writesInFlight)
        guard writes >= 1 else { throw BenchError("--param writes_in_flight=\(writes): give at least 1") }
        configuration.ioMaxWritesInFlight = writes
        configuration.transparentFaults = try transparentFaults(options)
        if let text = options.parameters["folio"] {
            guard case .success(let size) = ByteSize.parse(text), size <= 2 << 20 else {
                throw BenchError("--param folio=\(text): a size, a power of two from 4K to 2M (e.g. 64K)")
            }
            guard harness.mode() == .explicit || size == Int64(SwapPage.size) else {
                throw BenchError(
                    "--param folio=\(text) is for the explicit API: transparent regions and the kernel's memory use 4 KiB pages here")
            }
            configuration.folioBytes = Int(size)
        }
        if let text = options.parameters["swap_size"] {
            guard case .success(let size) = ByteSize.parse(text) else {
                throw BenchError("--param swap_size=\(text): a size, e.g. 2G")
            }
            configuration.swapSizeBytes = size
        }
        if options.parameters["policy"] != "all" {
            configuration.reclaimPolicy = try options.reclaimPolicy(orAlso: ["all"])
        }
        #if DEBUG
        configuration.swapDeviceOverride = options.swapDeviceOverride
        #endif
        let problems = configuration.problems()
        guard problems.isEmpty else { throw BenchError(problems.joined(separator: "; ")) }
        return configuration
    }

    /// One run on a fresh swap device (`swap`: a file in the scratch folder, removed
    /// afterwards, process memory or Redis, with its tiers); the swap's figures go in the
    /// outcome's `swapReport`.
    static func runOnce(_ configuration: WorkloadConfiguration, swap: WorkloadSwap, label: String, harness: BenchHarness) throws
        -> WorkloadOutcome
    {
        let outcome = try swap.with(configuration, harness: harness) { device, tiers in
            var figures: JSONValue = .null
            var outcome = try WorkloadSession.run(
                configuration, device: device, encryption: swap.encryption,
                console: harness.console, showsProgress: harness.options.showsProgress,
                label: label, transparent: harness.mode() == .transparent,
                inspect: { space in figures = swap.json(tiers, space: space) })
            outcome.swapReport = figures
            if let line = swap.summary(tiers) { harness.log(line) }
            return outcome
        }
        if !outcome.verified { harness.log(outcome.verificationLine) }
        return outcome
    }

    static func report(_ outcome: WorkloadOutcome, harness: BenchHarness) -> BenchReport {
        var report = harness.report(outcome.measured)
        outcome.fill(&report)
        if harness.mode() == .transparent { report.extras["fault_service"] = .string(outcome.configuration.transparentFaults.name) }
        report.extras["swap_bytes"] = JSONValue(outcome.configuration.swapBytes)
        return report
    }
}

/// One workload under every reclaim policy, over the same operations: what each policy swaps in
/// (`swap_ins_ratio` = the kernel's policy's swap-ins ÷ this one's, bigger is better).
struct PolicyComparison {
    /// The default first: the others replay its operation counts.
    static let order: [ReclaimPolicy] = [.frequency, .workingset, .activeInactive, .secondChance]
    let outcomes: [(ReclaimPolicy, WorkloadOutcome)]

    static func side(_ outcome: WorkloadOutcome) -> [String: JSONValue] {
        let c = outcome.counters
        let run = outcome.measured
        return [
            "swap_ins": JSONValue(c[.swapIns] ?? 0), "swap_outs": JSONValue(c[.swapOuts] ?? 0),
            "refaults": JSONValue(c[.refaults] ?? 0), "activations": JSONValue(c[.activations] ?? 0),
            "restores": JSONValue(c[.restores] ?? 0), "reclaim_scanned": JSONValue(c[.reclaimScanned] ?? 0),
            "ops": JSONValue(run.ops), "seconds": JSONValue(run.seconds), "ops_per_s": JSONValue(run.opsPerSecond),
            "latency_us": JSONValue(run.latency), "verified": .bool(outcome.verified),
            "swap_ins_per_1000_ops": JSONValue(run.ops > 0 ? Double(c[.swapIns] ?? 0) * 1000 / Double(run.ops) : 0),
        ]
    }

    func swapIns(_ policy: ReclaimPolicy) -> Int? {
        outcomes.first { $0.0 == policy }.map { $0.1.counters[.swapIns] ?? 0 }
    }

    var json: JSONValue {
        let kernel = swapIns(.workingset) ?? 0
        var object: [String: JSONValue] = [:]
        for (policy, outcome) in outcomes {
            var side = Self.side(outcome)
            let own = outcome.counters[.swapIns] ?? 0
            if own > 0 { side["swap_ins_ratio"] = JSONValue(Double(kernel) / Double(own)) }
            object[policy.benchName] = .object(side)
        }
        object["same_ops"] = .bool(Set(outcomes.map { $0.1.measured.ops }).count == 1)
        object["note"] =
            "each policy over the same operations per thread and seed; swap_ins_ratio = swap-ins of workingset (the kernel's lists with refault activation) ÷ this policy's: above 1 means fewer swap-ins than the kernel's policy"
        return .object(object)
    }

    var text: String {
        let kernel = swapIns(.workingset) ?? 0
        let parts = outcomes.map { policy, outcome in
            let own = outcome.counters[.swapIns] ?? 0
            let ratio = own > 0 ? " (×\(LatencySummary.trimmed(Double(kernel) / Double(own))))" : ""
            return "\(policy.benchName) \(own)\(ratio)"
        }
        return "swap-ins by policy over \(outcomes.first?.1.measured.ops ?? 0) operations each: " + parts.joined(separator: ", ")
            + "; (×) = workingset's ÷ the policy's"
    }
}

enum ZipfScenario: BenchScenario {
    static let name = "zipf"
    static let summary = "Zipf θ=0.99 accesses over data 4× the budget (--param policy=all: every reclaim policy over the same operations)"
    static func parameters(mode: BenchMode?) -> [BenchParameter] { WorkloadBench.parameters(mode: mode) }
    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        try WorkloadBench.run(.zipf, options: options, harness: harness)
    }
}

enum RandomScenario: BenchScenario {
    static let name = "random"
    static let summary = "uniform random accesses over data 4× the budget"
    static func parameters(mode: BenchMode?) -> [BenchParameter] { WorkloadBench.parameters(mode: mode) }
    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        try WorkloadBench.run(.random, options: options, harness: harness)
    }
}

enum UsememScenario: BenchScenario {
    static let name = "usemem"
    static let summary = "the kernel's usemem: write data 4× the budget, then read it all back"
    static func parameters(mode: BenchMode?) -> [BenchParameter] { WorkloadBench.parameters(mode: mode) }
    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        try WorkloadBench.run(.usemem, options: options, harness: harness)
    }
}

enum HashTableScenario: BenchScenario {
    static let name = "hashtable"
    static let summary = "an open-addressing hash table 4× the budget: insert, then look up every key"
    static func parameters(mode: BenchMode?) -> [BenchParameter] { WorkloadBench.parameters(mode: mode) }
    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        try WorkloadBench.run(.hashtable, options: options, harness: harness)
    }
}

extension TransparentRegion.FaultService {
    /// As `--param faults=` spells it.
    var name: String {
        switch self {
        case .handlerThreads(let n): n == 4 ? "handler_threads" : "handler_threads:\(n)"
        case .faultingThread: "faulting_thread"
        }
    }
}
