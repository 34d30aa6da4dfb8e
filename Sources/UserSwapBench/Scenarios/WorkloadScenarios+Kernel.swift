import Foundation
import UserSwap

/// `userswap bench zipf|random|seq|usemem|hashtable --mode kernel`: the same workload code over
/// plain anonymous memory (`AnonymousPageStore`), with no UserSwap engine: the kernel swaps it
/// because the process runs in a memory cgroup limited below the data. `bench/kernel-compare`
/// makes the cgroup and the swap file, runs this, then the explicit mode with the same budget,
/// data, threads, seed and duration, and reports the two side by side.
///
/// The report has `"mode": "kernel"` and no `protocol`; `budget_bytes` is the cgroup's limit;
/// `swap_ins`/`swap_outs` (and `device_reads`/`device_writes`, the same numbers: each is a page
/// read from or written to swap) are the cgroup's `pswpin`/`pswpout` over the measured phases;
/// `peak_resident_bytes` is the cgroup's peak charge (`memory.max_usage_in_bytes` or
/// `memory.peak`), else the process's VmHWM. Extras under `kernel`: the cgroup, the major faults
/// (the kernel's swap-in faults, without readahead), the machine's swap traffic, the swap
/// devices and the readahead setting.
///
/// Parameters: `ops`, `write_ratio`, `theta`, `load`, `repeats` as in explicit mode; `thp=on` lets
/// transparent huge pages back the memory (default off: 4 KiB pages, as UserSwap's regions);
/// `cgroup=optional` runs even without a limiting cgroup (the kernel then does not swap).
extension WorkloadBench {
    static let thp = BenchParameter.choice("thp", ["on", "off"], default: "off", "transparent huge pages for the data")
    static let cgroup = BenchParameter.choice(
        "cgroup", ["required", "optional"], default: "required",
        "whether a memory cgroup limited to the budget must hold the run")
    /// The kernel's workingset detection cannot be turned off: `on` is the only value.
    static let workingset = BenchParameter.choice("workingset", ["on"], default: "on", "the kernel's workingset detection (always on)")
    /// What `--mode kernel` takes: the workload's shape and the kernel's own knobs.
    static var kernelParameters: [BenchParameter] {
        [ops, writeRatio, theta, load, thp, cgroup, workingset, repeats, io, reads, writesInFlight]
    }

    static func runKernel(_ kind: WorkloadKind, options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        guard options.protocols.count == 1 else {
            throw BenchError("--protocol both: the kernel's swap has no protocol to choose; run --mode kernel once")
        }
        var configuration = try configuration(kind, options: options, harness: harness)
        let thp: String = try options.value(Self.thp)
        let cgroupRule: String = try options.value(Self.cgroup)

        let (cgroup, limit, swaps) = try kernelSwap(dataBytes: configuration.dataBytes, rule: cgroupRule)
        if let limit {
            if let asked = options.memoryBytes, asked != limit {
                harness.log("the cgroup's limit (\(ByteSize.format(limit))) is the budget, not --memory \(ByteSize.format(asked))")
            }
            configuration.memoryBytes = limit
        }
        if let cgroup, let swapLimit = cgroup.swapLimitBytes, swapLimit < configuration.dataBytes {
            harness.log("warning: cgroup \(cgroup.path) may use only \(ByteSize.format(swapLimit)) of swap, less than the data")
        }
        harness.log(
            "kernel's swap: \(ByteSize.format(configuration.dataBytes)) of anonymous memory, \(cgroup.map { "cgroup \($0.path) (v\($0.version.rawValue))" } ?? "no cgroup"), limit \(limit.map { ByteSize.format($0) } ?? "none"), swap on \(swaps.isEmpty ? "no device" : swaps.map(\.path).joined(separator: ", "))"
        )

        let run = try WorkloadSession.runOnKernelSwap(
            configuration, cgroup: cgroup, hugePages: thp == "on", console: harness.console,
            showsProgress: harness.options.showsProgress, label: "\(kind.rawValue) kernel")
        let outcome = run.outcome
        if !outcome.verified { harness.log(outcome.verificationLine) }

        var report = harness.report(outcome.measured, mode: .kernel)
        outcome.fill(&report)
        report.deviceReads = report.swapIns
        report.deviceWrites = report.swapOuts
        // The cgroup's peak, when the cgroup is the run's own (it has the limit); a shared one
        // holds other processes too, so the process's VmHWM (set by `report`) stays.
        if limit != nil, let peak = cgroup?.peakBytes { report.peakResidentBytes = peak }
        report.extras["counters_total"] = nil
        report.extras["kernel"] = Self.kernelFacts(run, swaps: swaps, thp: thp == "on")
        // The swap files' sizes as UserSwap counts its own: /proc/swaps leaves out the header page.
        report.extras["swap_bytes"] = JSONValue(swaps.reduce(Int64(0)) { $0 + $1.sizeBytes + 4096 })
        return report
    }

    /// The memory cgroup and the swap a `--mode kernel` run swaps with: the cgroup's limit is
    /// the budget. Throws when `rule` is `required` and no cgroup limits the process (the kernel
    /// would not swap `dataBytes`), or when a limit is set but no swap is on (the cgroup would
    /// kill the run at its limit).
    static func kernelSwap(dataBytes: Int64, rule: String) throws -> (cgroup: MemoryCgroup?, limit: Int64?, swaps: [SwapDeviceLine]) {
        let cgroup = MemoryCgroup.current()
        let limit = cgroup?.limitBytes
        if limit == nil && rule == "required" {
            let place = cgroup.map { "its memory cgroup \($0.path) (v\($0.version.rawValue)) has no limit" } ?? "it is in no memory cgroup"
            throw BenchError(
                """
                --mode kernel needs a memory cgroup limited to the budget, or the kernel will not swap \
                \(ByteSize.format(dataBytes)) of data, and \(place). Run it through \
                bench/kernel-compare (as root), which makes the cgroup and a swap file, or give \
                --param cgroup=optional to run without a limit
                """)
        }
        let swaps = Self.swapDevices()
        if limit != nil && swaps.isEmpty {
            throw BenchError(
                "no swap is on (/proc/swaps lists none): the cgroup would kill the run when it reaches its limit; bench/kernel-compare turns a swap file on"
            )
        }
        return (cgroup, limit, swaps)
    }

    /// The `kernel` object of a kernel-mode report.
    static func kernelFacts(_ run: WorkloadSession.KernelRun, swaps: [SwapDeviceLine], thp: Bool) -> JSONValue {
        kernelFacts(
            cgroup: run.cgroup, swapCounterSource: run.swapCounterSource, measured: run.measured, total: run.total, swaps: swaps,
            thp: thp)
    }

    /// The `kernel` object from its parts: the cgroup, where the swap counters came from, the
    /// samples over the measured phases and over the whole run.
    static func kernelFacts(
        cgroup: MemoryCgroup?, swapCounterSource: String, measured: KernelSample, total: KernelSample,
        swaps: [SwapDeviceLine], thp: Bool
    ) -> JSONValue {
        var facts: [String: JSONValue] = [
            "swap_counter_source": .string(swapCounterSource),
            "major_faults": JSONValue(measured.majorFaults),
            "machine_swap_ins": JSONValue(measured.machineSwapIns),
            "machine_swap_outs": JSONValue(measured.machineSwapOuts),
            "major_faults_total": JSONValue(total.majorFaults),
            "transparent_huge_pages": .bool(thp),
            "swap_devices": .array(
                swaps.map {
                    [
                        "path": .string($0.path), "type": .string($0.type), "size_bytes": JSONValue($0.sizeBytes),
                        "priority": JSONValue($0.priority),
                    ]
                }),
            "note":
                "swap_ins/swap_outs and device_reads/device_writes are pages read from and written to swap (pswpin/pswpout), readahead included; major_faults counts the faults that waited for a read",
        ]
        if let cluster = Self.procNumber("/proc/sys/vm/page-cluster") { facts["page_cluster"] = JSONValue(cluster) }
        if let swappiness = Self.procNumber("/proc/sys/vm/swappiness") { facts["vm_swappiness"] = JSONValue(swappiness) }
        if let cgroup {
            var object: [String: JSONValue] = ["version": JSONValue(cgroup.version.rawValue), "path": .string(cgroup.path)]
            if let limit = cgroup.limitBytes { object["limit_bytes"] = JSONValue(limit) }
            if let peak = cgroup.peakBytes { object["peak_bytes"] = JSONValue(peak) }
            if let swapLimit = cgroup.swapLimitBytes { object["swap_limit_bytes"] = JSONValue(swapLimit) }
            if let swappiness = cgroup.swappiness { object["swappiness"] = JSONValue(swappiness) }
            facts["cgroup"] = .object(object)
        }
        return .object(facts)
    }

    /// One line of /proc/swaps.
    struct SwapDeviceLine: Equatable {
        var path: String
        var type: String
        var sizeBytes: Int64
        var priority: Int
    }

    /// The swap devices the kernel uses now.
    static func swapDevices() -> [SwapDeviceLine] {
        ProcFile.text("/proc/swaps").map(parseSwaps) ?? []
    }

    /// /proc/swaps: a header, then `Filename Type Size(KiB) Used(KiB) Priority` per device.
    static func parseSwaps(_ text: String) -> [SwapDeviceLine] {
        text.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 5, let kib = Int64(fields[2]), let priority = Int(fields[4]) else { return nil }
            return SwapDeviceLine(path: String(fields[0]), type: String(fields[1]), sizeBytes: kib * 1024, priority: priority)
        }
    }

    static func procNumber(_ path: String) -> Int? {
        ProcFile.text(path).flatMap { Int($0.trimmingWhitespace()) }
    }
}
