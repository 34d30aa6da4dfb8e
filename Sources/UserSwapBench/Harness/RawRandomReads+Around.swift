/// The raw reads measured around a workload, in the same run (`bench multiget`, `bench
/// taskgroup`): a shared disk's IOPS move by a factor from one minute to the next, and a share
/// of the slower pass would flatter UserSwap, so each depth is read before the workload and
/// again after it, and the faster of the two counts (as the faster sequential read pass counts
/// in `device-limits`).
extension RawRandomReads {
    /// Both passes and the faster one at each depth.
    struct Around {
        var before: [RawRandomReads]
        var after: [RawRandomReads]

        /// The faster of before and after, per depth.
        var best: [RawRandomReads] { zip(before, after).map { $0.iops >= $1.iops ? $0 : $1 } }

        /// The faster IOPS at `depth`, or nil when it was not measured.
        func iops(depth: Int) -> Double? { best.first { $0.depth == depth }?.iops }

        /// The report's `raw` object.
        var json: JSONValue {
            [
                "random_read_4k_io_uring": .array(best.map(\.json)),
                "random_read_4k_io_uring_before": .array(before.map(\.json)),
                "random_read_4k_io_uring_after": .array(after.map(\.json)),
                "note": .string(RawRandomReads.note + "; measured before and after the workload, the faster of the two counts"),
            ]
        }
    }

    /// Runs `body` between two passes of raw reads at `depths`, `seconds` each, on a written
    /// scratch file as large as the data (16 MiB to 256 MiB: reads spread as the swap-ins'
    /// are) in a folder of its own on the swap file's file system (`--dir`).
    static func around<R>(
        harness: BenchHarness, dataBytes: Int64, depths: [Int], seconds: Double, seed: UInt64, _ body: () throws -> R
    ) throws -> (R, Around) {
        try harness.withScratchDirectory { folder in
            let file = try writtenScratchFile(folder: folder, bytes: min(256 << 20, max(16 << 20, dataBytes)))
            let before = try measure(file, depths: depths, seconds: seconds, seed: seed, harness: harness)
            let result = try body()
            let after = try measure(file, depths: depths, seconds: seconds, seed: seed &+ 1, harness: harness)
            return (result, Around(before: before, after: after))
        }
    }
}
