import UserSwap

/// `userswap bench seq`: a sequential stream over data 4× the budget (64 MiB of budget, 256 MiB
/// of data, two threads, 5 s), and how close its swap-in comes to the device's sequential read
/// bandwidth, measured in the same run (the goal: ≥ 80 % of the raw sequential read bandwidth
/// of the device).
///
/// The stream: every page is written once (untimed), then the threads walk the pages in order,
/// wrapping around (LRU's worst case: each page comes back from swap on every pass), reading and
/// checking each. Read-only by default (`write_ratio=0`), since the comparison is with the raw
/// *read* bandwidth: the pages a pass evicts are clean and dropped without a write, so the
/// device does nothing but the stream's reads. `--param write_ratio=R` mixes in writes (the
/// other workloads' default is 0.2); every write-back then shares the device with the reads,
/// and the share measures both. The region gets no advice: readahead finds the stream by
/// itself. Other parameters are the workloads' (`WorkloadBench`).
///
/// Figures (JSON keys):
/// - `seq_swap_in_mib_per_s`: pages swapped in (read from the device) during the timed accesses
///   × 4 KiB ÷ their time;
/// - `raw`: the swap file's file system (`--dir`) read and written with `O_DIRECT` in 1 MiB
///   transfers, as many threads as the stream, over a scratch file of the data's size, measured
///   after the stream (`RawSequentialBandwidth`, as `bench device-limits` does), the reads also
///   into scattered 4 KiB pages;
/// - `shares.sequential_swap_in_of_sequential_read`: the first ÷ the raw sequential read
///   (goal ≥ 0.8). Only for a plain swap file (no `--tier`, `--device file`): over a tier or
///   another device the bytes read are not the pages swapped in, or there is no disk;
/// - `shares.sequential_swap_in_of_4k_page_read`: the first ÷ the raw read into scattered 4 KiB
///   pages, the ceiling of a 4 KiB stream on a disk that pays per segment.
///
/// `--mode kernel` runs the same stream on memory the kernel swaps (no raw comparison).
enum SeqScenario: BenchScenario {
    static let name = "seq"
    static let summary =
        "read-only sequential stream over data 4× the budget; swap-in MiB/s as a share of the disk's raw sequential read (same run)"

    /// `write_ratio` unless given: a read-only stream (see the type's comment).
    static let defaultWriteRatio = 0.0

    static func parameters(mode: BenchMode?) -> [BenchParameter] { WorkloadBench.parameters(mode: mode) }

    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        var report = try WorkloadBench.run(.seq, options: options, harness: harness)
        guard harness.mode() != .kernel, try WorkloadSwap(options: options).isPlainFile else { return report }
        let seconds = report.seconds
        let swapIns = report.swapIns
        let streamMiBPerSecond = seconds > 0 ? Double(swapIns) * 4096 / 1_048_576 / seconds : 0
        let raw = try harness.withScratchDirectory { folder in
            try RawSequentialBandwidth.measure(folder: folder, bytes: report.dataBytes, threads: report.threads, harness: harness)
        }
        let share = raw.readMiBPerSecond > 0 ? streamMiBPerSecond / raw.readMiBPerSecond : 0
        let pageShare = raw.scatteredReadMiBPerSecond > 0 ? streamMiBPerSecond / raw.scatteredReadMiBPerSecond : 0
        var rawJSON = raw.json
        rawJSON["io"] =
            "O_DIRECT pread/pwrite on a fallocated scratch file of the data's size in the swap file's folder, as many threads as the stream, each its own share"
        report.extras["raw"] = .object(rawJSON)
        report.extras["seq_swap_in_mib_per_s"] = JSONValue(streamMiBPerSecond)
        report.extras["shares"] = [
            "sequential_swap_in_of_sequential_read": JSONValue(share),
            "sequential_swap_in_of_4k_page_read": JSONValue(pageShare),
            "note":
                "UserSwap's sequential stream: pages swapped in during the timed accesses × 4 KiB ÷ their time, ÷ raw O_DIRECT 1 MiB sequential reads of the same file system by as many threads, same run (goal ≥ 0.8); _of_4k_page_read: ÷ the same reads into 256 scattered 4 KiB pages each, the requests a 4 KiB stream makes",
        ]
        harness.log(
            "swap-in \(trim(streamMiBPerSecond)) MiB/s = \(trim(share * 100)) % of sequential read \(trim(raw.readMiBPerSecond)) MiB/s (raw O_DIRECT 1 MiB, same file system, same run), \(trim(pageShare * 100)) % of the same read into scattered 4 KiB pages (\(trim(raw.scatteredReadMiBPerSecond)) MiB/s)"
        )
        return report
    }

    static func trim(_ value: Double) -> String { LatencySummary.trimmed(value) }
}
