import UserSwap

/// The raw sequential bandwidth of the file system under a swap file: a scratch file of `bytes`
/// in `folder`, `fallocate`d (`DirectIOFile`), written and then read whole in 1 MiB `O_DIRECT`
/// transfers by as many threads as the benchmark's (each its own share, one transfer in flight
/// per thread: queue depth 2 for the default two, the depth UserSwap's two streaming threads
/// reach; a single thread's reads vary far more on a virtual disk). What `bench device-limits`
/// and `bench seq` compare UserSwap's sequential swap-out and swap-in with, measured in the
/// same run.
///
/// Two passes of each. The write that counts is the first: it writes into `fallocate`d space
/// whose extents the file system still marks unwritten, as a fresh UserSwap swap file is
/// (created with `fallocate`; its slots' first writes). The second pass overwrites written
/// blocks, which ext4 does much faster: it is reported as `sequential_overwrite_mib_per_s`, for
/// what a swap file written out in full would allow. The read that counts is the faster pass: a
/// virtual disk's sequential read can vary widely from one pass to the next, and a share of the
/// slower would flatter UserSwap.
///
/// Then two more read passes whose 1 MiB transfers land in 256 scattered 4 KiB pages (one
/// `preadv` each), as a 4 KiB swap-in stream's readahead reads land in frames anywhere in the
/// arena, and (the file reallocated) one write pass of such transfers into unwritten extents,
/// as a 4 KiB swap-out writes. Each page is one segment of the request, and a virtio disk serves
/// segments at a cost of their own, whatever the queue depth or request size: these passes are
/// the ceiling of a 4 KiB stream (figures in docs/PERFORMANCE.md). Streams of 64 KiB folios,
/// whose pages are contiguous, are not bound by it.
struct RawSequentialBandwidth {
    static let transfer = 1 << 20

    /// The first write pass (into unwritten extents), and the overwrite that followed.
    var write: TimedRun
    var overwrite: TimedRun
    /// The faster read pass, and both passes' MiB/s.
    var read: TimedRun
    var readPasses: [Double]
    /// The faster of two read passes whose transfers are 256 scattered 4 KiB pages each (see
    /// `ScatteredPages`): what the device does with the requests a 4 KiB swap-in stream makes.
    var scatteredRead: TimedRun
    /// A write pass of such transfers into unwritten extents (the file reallocated first): the
    /// requests a 4 KiB swap-out makes.
    var scatteredWrite: TimedRun
    /// Threads streaming at once (transfers in flight).
    var threads: Int

    /// One op is 1 MiB, so ops/s is MiB/s.
    var writeMiBPerSecond: Double { write.opsPerSecond }
    var readMiBPerSecond: Double { read.opsPerSecond }
    var scatteredReadMiBPerSecond: Double { scatteredRead.opsPerSecond }
    var scatteredWriteMiBPerSecond: Double { scatteredWrite.opsPerSecond }

    /// The keys of `raw` in the reports (`bench device-limits` adds its random reads to them).
    var json: [String: JSONValue] {
        [
            "sequential_write_mib_per_s": JSONValue(write.opsPerSecond),
            "sequential_write_latency_us_per_mib": JSONValue(write.latency),
            "sequential_overwrite_mib_per_s": JSONValue(overwrite.opsPerSecond),
            "sequential_read_mib_per_s": JSONValue(read.opsPerSecond),
            "sequential_read_latency_us_per_mib": JSONValue(read.latency),
            "sequential_read_passes_mib_per_s": .array(readPasses.map { JSONValue($0) }),
            "sequential_read_4k_pages_mib_per_s": JSONValue(scatteredRead.opsPerSecond),
            "sequential_read_4k_pages_latency_us_per_mib": JSONValue(scatteredRead.latency),
            "sequential_write_4k_pages_mib_per_s": JSONValue(scatteredWrite.opsPerSecond),
            "sequential_write_4k_pages_latency_us_per_mib": JSONValue(scatteredWrite.latency),
            "transfer_bytes": JSONValue(Self.transfer),
            "sequential_threads": JSONValue(threads),
        ]
    }

    /// Measures `file` (created by the caller, who may use it for more afterwards): a
    /// whole-file write pass, then a whole-file read pass, twice each, by `threads` threads that
    /// each stream their own contiguous share in order — as the benchmarks' threads stream
    /// theirs (one transfer in flight per thread). The write comes first: reads of never-written
    /// blocks would not reach the disk.
    static func measure(_ file: DirectIOFile, threads: Int, harness: BenchHarness) throws -> RawSequentialBandwidth {
        let chunks = Int(file.bytes / Int64(transfer))
        let threads = max(1, min(threads, chunks))
        let share = chunks / threads
        /// One pass over the file: each thread streams its share, one transfer at a time, through
        /// a buffer of its own.
        @Sendable func pass<Buffer>(
            _ label: String, buffer: @escaping @Sendable () -> Buffer,
            _ body: @escaping @Sendable (Buffer, Int64) throws -> Void
        ) throws -> TimedRun {
            try harness.runTimed(
                label, threads: threads, limit: .callsPerThread(share),
                setUp: { t in (buffer(), t * share) },
                operation: { state in
                    try body(state.0, Int64(state.1) * Int64(transfer))
                    state.1 += 1
                })
        }
        @Sendable func pass(_ label: String, _ body: @escaping @Sendable (AlignedBuffer, Int64) throws -> Void) throws -> TimedRun {
            try pass(label, buffer: { AlignedBuffer(count: transfer) }, body)
        }
        @Sendable func scatteredPass(_ label: String, _ body: @escaping @Sendable (ScatteredPages, Int64) throws -> Void) throws -> TimedRun
        {
            try pass(label, buffer: { ScatteredPages(count: transfer / 4096) }, body)
        }
        let write = try pass("sequential write") { buffer, offset in try file.write(UnsafeRawBufferPointer(buffer.bytes), at: offset) }
        let overwrite = try pass("sequential overwrite") { buffer, offset in
            try file.write(UnsafeRawBufferPointer(buffer.bytes), at: offset)
        }
        let passes = try (1...2).map { n in
            try pass("sequential read (pass \(n))") { buffer, offset in try file.read(into: buffer.bytes, at: offset) }
        }
        let read = passes.max { $0.opsPerSecond < $1.opsPerSecond }!
        let scatteredReads = try (1...2).map { n in
            try scatteredPass("sequential read, 4 KiB pages (pass \(n))") { pages, offset in try file.read(into: pages, at: offset) }
        }
        try file.reallocate()
        let scatteredWrite = try scatteredPass("sequential write, 4 KiB pages") { pages, offset in try file.write(pages, at: offset) }
        return RawSequentialBandwidth(
            write: write, overwrite: overwrite, read: read, readPasses: passes.map(\.opsPerSecond),
            scatteredRead: scatteredReads.max { $0.opsPerSecond < $1.opsPerSecond }!,
            scatteredWrite: scatteredWrite, threads: threads)
    }

    /// Measures a scratch file of `bytes` (rounded down to whole MiB, at least one) in
    /// `folder`, removed afterwards.
    static func measure(folder: String, bytes: Int64, threads: Int, harness: BenchHarness) throws -> RawSequentialBandwidth {
        let size = max(Int64(transfer), bytes / Int64(transfer) * Int64(transfer))
        let file = try DirectIOFile(path: folder + "/raw", bytes: size)
        return try measure(file, threads: threads, harness: harness)
    }
}
