import UserSwap

/// The raw sequential bandwidth of the file system under a swap file: a scratch file of `bytes`
/// in `folder`, `fallocate`d (`DirectIOFile`), written and then read whole in 1 MiB `O_DIRECT`
/// transfers, one thread (queue depth 1). What `bench device-limits` and `bench seq` compare
/// UserSwap's sequential swap-out and swap-in with, measured in the same run.
struct RawSequentialBandwidth {
    static let transfer = 1 << 20

    var write: TimedRun
    var read: TimedRun

    /// One op is 1 MiB, so ops/s is MiB/s.
    var writeMiBPerSecond: Double { write.opsPerSecond }
    var readMiBPerSecond: Double { read.opsPerSecond }

    /// The keys of `raw` in the reports (`bench device-limits` adds its random reads to them).
    var json: [String: JSONValue] {
        [
            "sequential_write_mib_per_s": JSONValue(write.opsPerSecond),
            "sequential_write_latency_us_per_mib": JSONValue(write.latency),
            "sequential_read_mib_per_s": JSONValue(read.opsPerSecond),
            "sequential_read_latency_us_per_mib": JSONValue(read.latency),
            "transfer_bytes": JSONValue(Self.transfer),
        ]
    }

    /// Measures `file` (created by the caller, who may use it for more afterwards): a
    /// whole-file write pass, then a whole-file read pass. The write comes first: reads of
    /// never-written blocks would not reach the disk.
    static func measure(_ file: DirectIOFile, harness: BenchHarness) throws -> RawSequentialBandwidth {
        let chunks = Int(file.bytes / Int64(transfer))
        let write = try harness.runTimed("sequential write", threads: 1, limit: .callsPerThread(chunks),
                                         setUp: { _ in (AlignedBuffer(count: transfer), 0) },
                                         operation: { state in
                                             try file.write(UnsafeRawBufferPointer(state.0.bytes), at: Int64(state.1) * Int64(transfer))
                                             state.1 += 1
                                         })
        let read = try harness.runTimed("sequential read", threads: 1, limit: .callsPerThread(chunks),
                                        setUp: { _ in (AlignedBuffer(count: transfer), 0) },
                                        operation: { state in
                                            try file.read(into: state.0.bytes, at: Int64(state.1) * Int64(transfer))
                                            state.1 += 1
                                        })
        return RawSequentialBandwidth(write: write, read: read)
    }

    /// Measures a scratch file of `bytes` (rounded down to whole MiB, at least one) in
    /// `folder`, removed afterwards.
    static func measure(folder: String, bytes: Int64, harness: BenchHarness) throws -> RawSequentialBandwidth {
        let size = max(Int64(transfer), bytes / Int64(transfer) * Int64(transfer))
        let file = try DirectIOFile(path: folder + "/raw", bytes: size)
        return try measure(file, harness: harness)
    }
}
