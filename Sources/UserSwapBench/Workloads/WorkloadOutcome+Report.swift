import UserSwap

/// A workload outcome in the shapes people and scripts read: the BENCH-JSON fields, and the
/// text report of `userswap run`.
extension WorkloadOutcome {
    /// Copies what the run measured into `report` (made by `BenchHarness.report(measured)` or
    /// directly): budget, data, the swap counters of the measured phases, `verified`, and extras
    /// describing the workload, every counter, each phase, and the frame high-water mark.
    public func fill(_ report: inout BenchReport) {
        let counters = counters
        report.budgetBytes = configuration.memoryBytes
        report.dataBytes = configuration.dataBytes
        report.swapIns = Int64(counters[.swapIns] ?? 0)
        report.swapOuts = Int64(counters[.swapOuts] ?? 0)
        report.deviceReads = Int64(counters[.deviceReads] ?? 0)
        report.deviceWrites = Int64(counters[.deviceWrites] ?? 0)
        report.verified = verified
        report.extras["workload"] = .string(configuration.kind.rawValue)
        report.extras["workload_summary"] = .string(summary)
        report.extras["seed"] = JSONValue(configuration.seed)
        if let swapReport { report.extras["swap"] = swapReport }
        if configuration.kind.isOpen {
            // multiget only reads.
            report.extras["write_ratio"] = JSONValue(configuration.kind == .multiget ? 0 : configuration.writeRatio)
        }
        report.extras["page_repeats"] = JSONValue(configuration.pageRepeats)
        report.extras["folio_bytes"] = JSONValue(configuration.folioBytes)
        if configuration.kind == .zipf { report.extras["theta"] = JSONValue(configuration.theta) }
        if configuration.kind == .hashtable || configuration.kind == .multiget {
            report.extras["load_factor"] = JSONValue(configuration.loadFactor)
        }
        if configuration.kind == .multiget {
            report.extras["batch"] = JSONValue(configuration.batch)
            report.extras["prefetch"] = .bool(configuration.prefetch)
            if let batchLatency = phases.first(where: \.measured)?.stepLatency {
                report.extras["batch_latency_us"] = JSONValue(batchLatency)
            }
        }
        report.extras["workingset_detection"] = .bool(configuration.workingsetDetection)
        report.extras["reclaim_policy"] = .string(configuration.reclaimPolicy.benchName)
        if let ioEngine {
            report.extras["io_engine"] = [
                "kind": .string(ioEngine.kind.rawValue), "reason": .string(ioEngine.reason),
                "fault_reads": .string(configuration.ioReadsInCaller ? "caller" : "engine"),
                "max_writes_in_flight": JSONValue(configuration.ioMaxWritesInFlight),
            ]
        }
        report.extras["peak_resident_frames_bytes"] = JSONValue(Int64(peakResidentFrames) * 4096)
        report.addProcessMemory(sampledPeak: processMemoryAtPeak)
        if !processMemoryStages.isEmpty {
            report.extras["rss_stages"] = .array(
                processMemoryStages.map { name, memory in
                    guard case .object(var fields) = memory.splitJSON else { return .null }
                    fields["stage"] = .string(name)
                    return .object(fields)
                })
        }
        if let faultWaitTimes { report.extras["fault_wait"] = Self.json(faultWaitTimes) }
        if let handoffs = Self.handoffsJSON(counters) { report.extras["handoffs"] = handoffs }
        report.extras["context_switches"] = contextSwitchesJSON
        report.extras["counters"] = Self.json(counters)
        report.extras["counters_total"] = Self.json(totals)
        report.extras["phases"] = .array(
            (phases + [verification]).map { phase in
                [
                    "name": .string(phase.name), "measured": .bool(phase.measured), "ops": JSONValue(phase.run.ops),
                    "seconds": JSONValue(phase.run.seconds), "ops_per_s": JSONValue(phase.run.opsPerSecond),
                    "latency_us": JSONValue(phase.run.latency),
                    "swap_ins": JSONValue(phase.counters[.swapIns] ?? 0), "swap_outs": JSONValue(phase.counters[.swapOuts] ?? 0),
                ]
            })
        report.extras["reads_checked"] = JSONValue(readsChecked)
        report.extras["verified_units"] = JSONValue(verifiedUnits)
        report.extras["verified_unit"] = .string(verifiedUnit)
        if !verified {
            report.extras["verification_failures"] = .array((failures + invariantProblems).prefix(10).map { .string($0) })
        }
    }

    /// `fault_wait`: faults timed, the seconds their threads waited, the mean and the p99 of
    /// one wait in microseconds.
    static func json(_ times: FaultWaitTimes) -> JSONValue {
        [
            "count": JSONValue(times.count), "seconds": JSONValue(Double(times.nanoseconds) / 1e9),
            "mean_us": JSONValue(times.meanNanoseconds / 1000),
            "p99_us": JSONValue(Double(times.percentileNanoseconds(0.99)) / 1000),
        ]
    }

    /// "waiting in faults (the whole run): 52 s over 1203331 faults, mean 43.1 µs, p99 410 µs".
    static func text(_ times: FaultWaitTimes) -> String {
        let mean = LatencySummary.format(times.meanNanoseconds / 1000)
        let p99 = LatencySummary.format(Double(times.percentileNanoseconds(0.99)) / 1000)
        return
            "  waiting in faults (the whole run): \(LatencySummary.trimmed(Double(times.nanoseconds) / 1e9)) s over \(times.count) faults, mean \(mean), p99 \(p99)"
    }

    /// The process's context switches over the measured phases.
    public var contextSwitches: ContextSwitches {
        phases.filter(\.measured).reduce(ContextSwitches()) { $0 + $1.contextSwitches }
    }

    /// Faults of a transparent region in the measured phases, major and minor (0 for the
    /// explicit API and for the kernel's memory).
    var measuredFaults: Int { (counters[.majorFaults] ?? 0) + (counters[.minorFaults] ?? 0) }

    /// `context_switches`: the process's over the measured phases, `voluntary` and
    /// `involuntary`, and with a transparent region's faults `voluntary_per_fault`.
    var contextSwitchesJSON: JSONValue {
        let switches = contextSwitches
        var object: [String: JSONValue] = [
            "voluntary": JSONValue(switches.voluntary), "involuntary": JSONValue(switches.involuntary),
        ]
        if measuredFaults > 0 { object["voluntary_per_fault"] = JSONValue(Double(switches.voluntary) / Double(measuredFaults)) }
        return .object(object)
    }

    /// The reasons a fault goes from its thread's SIGBUS handler to a worker, as counted.
    static let handoffReasons: [(name: String, words: String, counter: SwapStatistics.Counter)] = [
        ("no_frame", "no frame", .handoffsNoFrame), ("group_limit", "group limit", .handoffsGroupLimit),
        ("device", "device", .handoffsDevice), ("error", "error", .handoffsError), ("other", "other", .handoffsOther),
    ]

    /// `handoffs`, for a transparent region served on the faulting thread (nil otherwise): the
    /// faults its handler took (`faults`), those handed to a worker (`faults_handed_over`, and
    /// their `share`), each reason's count, the readahead handed over, the workers woken, and
    /// the seconds faulting threads waited for the workers (`wait_seconds`).
    static func handoffsJSON(_ c: [SwapStatistics.Counter: Int]) -> JSONValue? {
        let faults = c[.signalFaults] ?? 0
        guard faults > 0 else { return nil }
        let handed = handoffReasons.reduce(0) { $0 + (c[$1.counter] ?? 0) }
        var object: [String: JSONValue] = [
            "faults": JSONValue(faults), "faults_handed_over": JSONValue(handed),
            "share": JSONValue(Double(handed) / Double(faults)), "readahead": JSONValue(c[.handoffsReadahead] ?? 0),
            "worker_wakeups": JSONValue(c[.handoffWakeups] ?? 0),
            "wait_seconds": JSONValue(Double(c[.handoffWaitNanoseconds] ?? 0) / 1e9),
        ]
        for reason in handoffReasons { object[reason.name] = JSONValue(c[reason.counter] ?? 0) }
        return .object(object)
    }

    /// "faults on their own threads: 170k, 2.35 % handed to a worker (no frame 3990, group
    /// limit 0, device 0, error 0, other 1) for 0.42 s, 12 readahead windows handed over, 3411
    /// workers woken", for a region served on the faulting thread; nil otherwise.
    static func handoffsText(_ c: [SwapStatistics.Counter: Int]) -> String? {
        let faults = c[.signalFaults] ?? 0
        guard faults > 0 else { return nil }
        let handed = handoffReasons.reduce(0) { $0 + (c[$1.counter] ?? 0) }
        let reasons = handoffReasons.map { "\($0.words) \(c[$0.counter] ?? 0)" }
        return
            "  faults on their own threads: \(BenchReport.count(Double(faults))), \(LatencySummary.trimmed(100 * Double(handed) / Double(faults))) % handed to a worker (\(reasons.joined(separator: ", "))) for \(LatencySummary.trimmed(Double(c[.handoffWaitNanoseconds] ?? 0) / 1e9)) s, \(c[.handoffsReadahead] ?? 0) readahead windows handed over, \(c[.handoffWakeups] ?? 0) workers woken"
    }

    /// Counters by their Swift names (`swapIns`), like `SwapStatistics.snapshot`.
    static func json(_ counters: [SwapStatistics.Counter: Int]) -> JSONValue {
        .object(Dictionary(uniqueKeysWithValues: counters.map { ("\($0.key)", JSONValue($0.value)) }))
    }

    /// The report `userswap run` prints after its phases: throughput, latency, swap traffic,
    /// reclaim, memory, and the verification line. `processPeakRSS` is VmHWM in bytes.
    public func text(processPeakRSS: Int64) -> String {
        let split = processMemoryAtPeak.map {
            " (at the largest sample: anon \(ByteSize.format($0.anonBytes)), file \(ByteSize.format($0.fileBytes)), shmem \(ByteSize.format($0.shmemBytes)))"
        }
        let run = measured
        let c = counters
        func n(_ counter: SwapStatistics.Counter) -> Int { c[counter] ?? 0 }
        var lines: [String] = []
        for phase in phases + [verification] {
            lines.append(
                "  \(phase.name.padded(to: 9)) \(BenchReport.count(Double(phase.run.ops))) ops in \(LatencySummary.trimmed(phase.run.seconds)) s (\(BenchReport.count(phase.run.opsPerSecond)) ops/s), swap-ins \(phase.counters[.swapIns] ?? 0), swap-outs \(phase.counters[.swapOuts] ?? 0)\(phase.measured ? "" : ", not measured")"
            )
        }
        let measuredNames = phases.filter(\.measured).map(\.name).joined(separator: " + ")
        lines.append(
            "result (\(measuredNames)): \(BenchReport.count(run.opsPerSecond)) operations/s: \(run.ops) in \(LatencySummary.trimmed(run.seconds)) s on \(run.threads == 1 ? "1 thread" : "\(run.threads) threads")"
        )
        lines.append("  latency per operation: \(run.latency.text), mean \(LatencySummary.format(run.latency.mean))")
        lines.append(
            "  swap-ins \(n(.swapIns)), swap-outs \(n(.swapOuts)) (device reads \(n(.deviceReads)), writes \(n(.deviceWrites))); swap-cache hits \(n(.cacheHits)), clean drops \(n(.cleanDrops))"
        )
        if let ioEngine { lines.append("  I/O engine \(ioEngine)") }
        if let faultWaitTimes { lines.append(Self.text(faultWaitTimes)) }
        if let handoffs = Self.handoffsText(c) { lines.append(handoffs) }
        let switches = contextSwitches
        lines.append(
            "  context switches (the process, measured phases): \(switches.voluntary) voluntary, \(switches.involuntary) involuntary\(measuredFaults > 0 ? ", \(LatencySummary.trimmed(Double(switches.voluntary) / Double(measuredFaults))) voluntary per fault" : "")"
        )
        lines.append("  refaults \(n(.refaults)), activations \(n(.activations)), restores \(n(.restores)), evictions \(n(.evictions))")
        lines.append(
            "  reclaim: scanned \(n(.reclaimScanned)), freed \(n(.reclaimFreed)), second chances \(n(.reclaimActivated)), direct reclaims \(n(.directReclaims)), background wake-ups \(n(.kswapdWakeups))"
        )
        lines.append(
            "  peak resident \(ByteSize.format(Int64(peakResidentFrames) * 4096)) of the \(ByteSize.format(Int64(frameCount) * 4096)) budget (frames high-water, sampled); process RSS peak \(ByteSize.format(processPeakRSS))\(split ?? "")"
        )
        lines.append(verificationLine)
        return lines.joined(separator: "\n")
    }
}
