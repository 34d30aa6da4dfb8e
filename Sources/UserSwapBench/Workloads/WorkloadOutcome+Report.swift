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
