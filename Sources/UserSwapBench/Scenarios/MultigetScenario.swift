import UserSwap

/// `userswap bench multiget`: the hash table looked up in batches (`MultigetWorkload`), data 4×
/// the budget (64 MiB and 256 MiB unless `--memory`/`--data` say otherwise), and in the same
/// run the raw 4 KiB random-read IOPS of the disk under the swap files at queue depths 1, 2 and
/// 32 (`RawRandomReads`, on a scratch file in `--dir`, before and after the workload), so that
/// the swap-ins per second can be read as a share of what the disk does at each depth.
///
/// Parameters besides the workloads' own: `batch=B` (keys per batch, default 32),
/// `prefetch=on|off` (default on: each batch's pages are prefetched before its lookups; off:
/// the lookups fault them one by one), `raw=on|off` (the raw reads; default on, except in
/// `--mode kernel`, whose comparison measures them on the UserSwap side of the same run).
///
/// How each side prefetches is in the report (`prefetch_method`): the kernel's
/// `madvise(MADV_WILLNEED)` on each run of consecutive pages starts every read of the batch and
/// returns; UserSwap's `prefetch(pages:)` takes the whole batch, submits every read at once and
/// returns.
enum MultigetScenario: BenchScenario {
    static let name = "multiget"
    static let summary =
        "the hash table looked up in batches of B keys (hash all, prefetch all their pages, read each), data 4× the budget, beside the disk's raw random-read IOPS at depths 1, 2 and 32"

    static let batch = BenchParameter.integer("batch", 1...4096, default: 32, "keys looked up per batch")
    static let prefetch = BenchParameter.choice(
        "prefetch", ["on", "off"], default: "on", "prefetch each batch's pages before its lookups (kernel: MADV_WILLNEED)")
    static let raw = BenchParameter.choice(
        "raw", ["on", "off"], default: nil,
        "measure the disk's raw random-read IOPS at depths 1, 2, 32 in the same run (default on; off in --mode kernel)")

    static func parameters(mode: BenchMode?) -> [BenchParameter] { WorkloadBench.parameters(mode: mode) + [batch, prefetch, raw] }

    /// How a batch's pages are brought in, by mode, for the report.
    static func prefetchMethod(_ mode: BenchMode, prefetching: Bool) -> String {
        guard prefetching else { return "none: each lookup faults (or pins) its page when it reads it" }
        return switch mode {
        case .kernel: "madvise(MADV_WILLNEED) on each run of consecutive pages of the batch: the kernel starts the reads and returns"
        case .transparent:
            "TransparentRegion.prefetch(pages:) on the whole batch: every read submitted at once, nothing waited for"
        default:
            "Region.prefetch(pages:) on the whole batch: every read submitted at once (io_uring: one io_uring_enter), nothing waited for"
        }
    }

    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        let mode = harness.mode()
        let measuresRaw = (options.parameters["raw"] ?? (mode == .kernel ? "off" : "on")) == "on"
        guard measuresRaw else { return try runWorkload(options: options, harness: harness, mode: mode) }
        let seconds = min(2, max(0.5, harness.seconds(default: 5) / 3))
        let dataBytes = options.dataBytes ?? WorkloadBench.defaultSizes(.multiget).data
        let (workload, raw) = try RawRandomReads.around(
            harness: harness, dataBytes: dataBytes, depths: RawRandomReads.standardDepths, seconds: seconds, seed: 0x4D47
        ) { try runWorkload(options: options, harness: harness, mode: mode) }
        var report = workload
        report.extras["raw"] = raw.json
        let swapInsPerSecond = report.seconds > 0 ? Double(report.swapIns) / report.seconds : 0
        var shares: [String: JSONValue] = [
            "swap_ins_per_s": JSONValue(swapInsPerSecond),
            "note":
                "swap-ins per second of the timed phase ÷ the raw O_DIRECT 4 KiB random reads per second at each queue depth on io_uring (the faster of a pass before and a pass after the workload), same file system, same run",
        ]
        for reads in raw.best { shares["swap_in_of_random_read_iops_depth_\(reads.depth)"] = JSONValue(swapInsPerSecond / reads.iops) }
        report.extras["shares"] = .object(shares)
        let depth32 = raw.iops(depth: 32) ?? 0
        harness.log(
            "swap-ins \(LatencySummary.trimmed(swapInsPerSecond))/s = \(LatencySummary.trimmed(depth32 > 0 ? swapInsPerSecond / depth32 * 100 : 0)) % of the raw depth-32 IOPS (\(LatencySummary.trimmed(depth32)), the faster of before and after)"
        )
        return report
    }

    /// The workload, with how it prefetched.
    static func runWorkload(options: BenchOptions, harness: BenchHarness, mode: BenchMode) throws -> BenchReport {
        var report = try WorkloadBench.run(.multiget, options: options, harness: harness)
        let prefetching = (try options.value(Self.prefetch) as String) == "on"
        report.extras["prefetch_method"] = .string(prefetchMethod(mode, prefetching: prefetching))
        return report
    }
}
