import CUserSwap
import Glibc
import Synchronization
import UserSwap

/// `userswap bench device-limits` (`bench/device-limits` calls it): what the disk under the swap
/// file and the memory bus can do, and how close UserSwap comes to it, in one run.
///
/// Raw, on a scratch file in `--dir` (the swap file's file system) of `--data` bytes (1G),
/// `fallocate`d and read and written with `O_DIRECT`:
/// - sequential write, then sequential read, of the whole file in 1 MiB transfers, 1 thread;
/// - 4 KiB random reads for `--seconds` (3) at queue depth 1 (1 thread), at the workload's
///   `--threads` (2), and at depth 32 (32 threads doing `pread`: blocking I/O, one request in
///   flight per thread, which is what UserSwap's faulting threads do);
/// - 4 KiB random reads for `--seconds` at queue depths 1, 2 and 32 on one io_uring
///   (`RawRandomReads`): what one fault in flight, two faulting threads, and a batched or
///   asynchronous swap-in can get from the disk;
/// - `memcpy` of 64 MiB buffers, 1 thread, GiB/s.
///
/// UserSwap, on a swap file in the same folder, `--memory` (64M) of budget, `--data` of pages:
/// - sequential swap-out: `--threads` threads write their shares of the region in order; the
///   pages leave through reclaim's batched writes. The first budget's worth is written before
///   the clock starts (it only fills memory), so the timed phase is steady-state swap-out, each
///   page written evicting one. `swap_out_mib_per_s` = pages written to the
///   device during it × 4 KiB ÷ its time;
/// - sequential swap-in: then `--threads` threads read their shares back in order, every page
///   checked, with `advise(.sequential)` (the application says it streams: the largest
///   readahead windows). `seq_swap_in_mib_per_s` = pages read from the device × 4 KiB ÷ the
///   phase's time. A read-only stream, so that the figure is the swap-in path, not a
///   workload's writes (`bench seq` mixes in 20 % writes and reports those);
/// - random swap-in: `--threads` threads read uniformly random pages for `--seconds`, readahead
///   off (`advise(.random)`: every miss is one 4 KiB read, as the raw random reads).
///   `swap_in_per_s` = pages read from the device per second.
///
/// `shares`: UserSwap's swap-out ÷ the raw sequential write bandwidth (goal ≥ 0.9), its
/// sequential swap-in ÷ the raw sequential read bandwidth (goal ≥ 0.8), and its random
/// swap-ins/s ÷ the raw random-read IOPS at the same thread count (goal ≥ 0.8). The headline
/// (`ops_per_s`, `latency_us`) is UserSwap's random phase (accesses, hits included).
enum DeviceLimitsScenario: BenchScenario {
    static let name = "device-limits"
    static let summary = "the disk's O_DIRECT IOPS and MiB/s and memcpy GiB/s, with UserSwap's swap-out and swap-in as shares of them"

    static let transfer = RawSequentialBandwidth.transfer

    static let largeFolio = BenchParameter(
        "large_folio", type: "size, a power of two 8K…2M", default: "64K",
        "the folio size of the large-folio swap-out and swap-in"
    ) { text in
        guard case .success(let large) = ByteSize.parse(text) else { return false }
        return large > 4096 && large <= 2 << 20 && large & (large - 1) == 0
    }
    static func parameters(mode: BenchMode?) -> [BenchParameter] { [largeFolio, WorkloadBench.policy(allowingAll: false)] }

    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        let policy = try options.reclaimPolicy()
        let largeText: String = try options.value(Self.largeFolio)
        guard case .success(let large) = ByteSize.parse(largeText), large > 4096, large <= 2 << 20, large & (large - 1) == 0 else {
            throw BenchError("--param large_folio=\(largeText): give a power of two from 8K to 2M")
        }
        let dataBytes = (options.dataBytes ?? 1 << 30) / Int64(transfer) * Int64(transfer)
        let memory = Int(options.memoryBytes ?? 64 << 20)
        guard dataBytes >= 16 << 20, Int64(memory) * 2 <= dataBytes else {
            throw BenchError("--data must be at least 16M and twice --memory (the swap-out must be mostly swap-out)")
        }
        let threads = harness.threads(default: 2)
        let seconds = harness.seconds(default: 3)
        return try harness.withScratchDirectory { folder in
            let raw = try measureRaw(folder: folder, bytes: dataBytes, threads: threads, seconds: seconds, harness: harness)
            let swap = try measureUserSwap(
                folder: folder, memory: memory, dataBytes: dataBytes, threads: threads,
                seconds: seconds, folioSize: 4096, policy: policy, harness: harness)
            // The same streams with large folios (the kernel's mTHP swap-out): one reclaim
            // decision, one swap cache insert and one slot run per folio instead of per page.
            let largeSwap = try measureUserSwap(
                folder: folder, memory: memory, dataBytes: dataBytes, threads: threads,
                seconds: 0, folioSize: Int(large), policy: policy, harness: harness)
            var report = harness.report(swap.random ?? swap.stream)
            report.budgetBytes = Int64(memory)
            report.dataBytes = dataBytes
            report.swapIns = swap.swapIns
            report.swapOuts = swap.swapOuts
            report.deviceReads = swap.deviceReads
            report.deviceWrites = swap.deviceWrites
            report.verified = swap.verified && largeSwap.verified
            report.extras["raw"] = raw.json
            report.extras["userswap"] = swap.json
            report.extras["userswap_large_folios"] = largeSwap.json
            let writeShare = swap.swapOutMiBPerSecond / raw.sequentialWriteMiBPerSecond
            let pageWriteShare = swap.swapOutMiBPerSecond / raw.sequential.scatteredWriteMiBPerSecond
            let largeWriteShare = largeSwap.swapOutMiBPerSecond / raw.sequentialWriteMiBPerSecond
            let largeReadShare = largeSwap.sequentialSwapInMiBPerSecond / raw.sequentialReadMiBPerSecond
            let readShare = swap.swapInPerSecond / raw.randomReadIOPS(threads: threads)
            let sequentialReadShare = swap.sequentialSwapInMiBPerSecond / raw.sequentialReadMiBPerSecond
            let pageReadShare = swap.sequentialSwapInMiBPerSecond / raw.sequential.scatteredReadMiBPerSecond
            report.extras["shares"] = [
                "swap_out_of_sequential_write": JSONValue(writeShare),
                "swap_out_of_4k_page_write": JSONValue(pageWriteShare),
                "sequential_swap_in_of_sequential_read": JSONValue(sequentialReadShare),
                "sequential_swap_in_of_4k_page_read": JSONValue(pageReadShare),
                "swap_in_of_random_read_iops": JSONValue(readShare),
                "swap_in_of_random_read_iops_io_uring_depth_32": JSONValue(swap.swapInPerSecond / raw.ringReadIOPS(depth: 32)),
                "swap_out_of_sequential_write_large_folios": JSONValue(largeWriteShare),
                "sequential_swap_in_of_sequential_read_large_folios": JSONValue(largeReadShare),
                "large_folio_bytes": JSONValue(Int(large)),
                "threads": JSONValue(threads),
                "note":
                    "UserSwap's sequential swap-out (MiB/s written to its swap file) ÷ raw O_DIRECT 1 MiB sequential writes (goal ≥ 0.9), and ÷ the same writes from 256 scattered 4 KiB pages each (_of_4k_page_write); UserSwap's sequential swap-in (MiB/s read from its swap file by a read-only stream, advise(.sequential)) ÷ raw O_DIRECT 1 MiB sequential reads (goal ≥ 0.8), and ÷ the same reads into 256 scattered 4 KiB pages each (_of_4k_page_read: the requests a 4 KiB stream makes); UserSwap's random swap-ins/s ÷ raw O_DIRECT 4 KiB random reads/s at the same thread count (goal ≥ 0.8), and ÷ the raw reads at queue depth 32 on io_uring (_io_uring_depth_32: how far faults are from the disk's deep-queue limit); *_large_folios: the same streams over a region of large_folio_bytes folios (userswap_large_folios); same file system, same run",
            ]
            report.extras["file_system_dir"] = .string(folder)
            harness.log(
                "swap-out \(trim(swap.swapOutMiBPerSecond)) MiB/s = \(trim(writeShare * 100)) % of sequential write \(trim(raw.sequentialWriteMiBPerSecond)) MiB/s (\(trim(pageWriteShare * 100)) % of it from 4 KiB pages, \(trim(raw.sequential.scatteredWriteMiBPerSecond)) MiB/s); sequential swap-in \(trim(swap.sequentialSwapInMiBPerSecond)) MiB/s = \(trim(sequentialReadShare * 100)) % of sequential read \(trim(raw.sequentialReadMiBPerSecond)) MiB/s (\(trim(pageReadShare * 100)) % of it into 4 KiB pages, \(trim(raw.sequential.scatteredReadMiBPerSecond)) MiB/s); swap-in \(trim(swap.swapInPerSecond))/s = \(trim(readShare * 100)) % of random read \(trim(raw.randomReadIOPS(threads: threads)))/s at \(threads) threads"
            )
            harness.log(
                "with \(largeText) folios: swap-out \(trim(largeSwap.swapOutMiBPerSecond)) MiB/s = \(trim(largeWriteShare * 100)) % of sequential write; sequential swap-in \(trim(largeSwap.sequentialSwapInMiBPerSecond)) MiB/s = \(trim(largeReadShare * 100)) % of sequential read"
            )
            return report
        }
    }

    static func trim(_ value: Double) -> String { LatencySummary.trimmed(value) }

    // MARK: Raw

    struct Raw {
        var sequential: RawSequentialBandwidth
        /// Random 4 KiB reads by thread count.
        var randomReads: [(threads: Int, run: TimedRun)]
        /// Random 4 KiB reads by queue depth on one io_uring.
        var ringReads: [RawRandomReads]
        var memcpyGiBPerSecond: Double

        var sequentialWriteMiBPerSecond: Double { sequential.writeMiBPerSecond }
        var sequentialReadMiBPerSecond: Double { sequential.readMiBPerSecond }
        func randomReadIOPS(threads: Int) -> Double { randomReads.first { $0.threads == threads }?.run.opsPerSecond ?? 0 }
        func ringReadIOPS(depth: Int) -> Double { ringReads.first { $0.depth == depth }?.iops ?? 0 }

        var json: JSONValue {
            var object = sequential.json
            object["random_read_4k"] = .array(
                randomReads.map { entry in
                    [
                        "threads": JSONValue(entry.threads), "iops": JSONValue(entry.run.opsPerSecond),
                        "mib_per_s": JSONValue(entry.run.opsPerSecond * 4096 / 1_048_576), "latency_us": JSONValue(entry.run.latency),
                    ]
                })
            object["random_read_4k_io_uring"] = .array(ringReads.map(\.json))
            object["random_read_4k_io_uring_note"] = .string(RawRandomReads.note)
            object["memcpy_gib_per_s"] = JSONValue(memcpyGiBPerSecond)
            object["io"] =
                "O_DIRECT pread/pwrite on a fallocated file; sequential: 1 MiB transfers by sequential_threads threads, each its own share; random reads: one blocking pread per thread (queue depth = threads)"
            return .object(object)
        }
    }

    static func measureRaw(folder: String, bytes: Int64, threads: Int, seconds: Double, harness: BenchHarness) throws -> Raw {
        let file = try DirectIOFile(path: folder + "/raw", bytes: bytes)
        let sequential = try RawSequentialBandwidth.measure(file, threads: threads, harness: harness)
        let pages = UInt64(bytes / 4096)
        var random: [(Int, TimedRun)] = []
        for count in Set([1, threads, 32]).sorted() {
            let run = try harness.runTimed(
                "random 4K reads × \(count)", threads: count, limit: .seconds(seconds),
                setUp: { thread in (AlignedBuffer(count: 4096), Xoshiro256StarStar(seed: 0xD15C ^ UInt64(thread))) },
                operation: { state in
                    let page = state.1.next() % pages
                    try file.read(into: state.0.bytes, at: Int64(page) * 4096)
                })
            random.append((count, run))
        }
        // The file was written whole by the sequential passes (the last into reallocated
        // extents), so every read reaches the disk.
        let ring = try RawRandomReads.measure(file, depths: RawRandomReads.standardDepths, seconds: seconds, seed: 0xD15C, harness: harness)
        return Raw(
            sequential: sequential, randomReads: random, ringReads: ring, memcpyGiBPerSecond: memcpyRate(seconds: min(seconds, 1)))
    }

    /// GiB/s of `memcpy` between two 64 MiB buffers (larger than any cache), one thread.
    static func memcpyRate(seconds: Double) -> Double {
        let size = 64 << 20
        let source = AlignedBuffer(count: size, fill: 1)
        let target = AlignedBuffer(count: size, fill: 2)
        memcpy(target.bytes.baseAddress!, source.bytes.baseAddress!, size)  // fault both in
        var copies = 0
        let start = cus_monotonic_ns()
        var elapsed: UInt64 = 0
        repeat {
            memcpy(target.bytes.baseAddress!, source.bytes.baseAddress!, size)
            copies += 1
            elapsed = cus_monotonic_ns() &- start
        } while Double(elapsed) < seconds * 1e9
        return Double(copies * size) / (Double(elapsed) / 1e9) / Double(1 << 30)
    }

    // MARK: UserSwap

    struct Swap {
        var fill: TimedRun
        var stream: TimedRun
        var streamSwapIns: Int64
        var streamDeviceReads: Int64
        /// Nil when the random phase was skipped (a large-folio run).
        var random: TimedRun?
        var fillSwapOuts: Int64
        var fillDeviceWrites: Int64
        /// Times a writing thread found no free frame and reclaimed itself during the fill.
        var fillDirectReclaims: Int64
        var randomSwapIns: Int64
        var swapIns: Int64
        var swapOuts: Int64
        var deviceReads: Int64
        var deviceWrites: Int64
        var verified: Bool
        var folioBytes: Int

        var swapOutMiBPerSecond: Double { Double(fillSwapOuts) * 4096 / 1_048_576 / fill.seconds }
        var swapInPerSecond: Double { random.map { Double(randomSwapIns) / $0.seconds } ?? 0 }
        var sequentialSwapInMiBPerSecond: Double { Double(streamSwapIns) * 4096 / 1_048_576 / stream.seconds }

        var json: JSONValue {
            var fields: [String: JSONValue] = [
                "swap_out_mib_per_s": JSONValue(swapOutMiBPerSecond),
                "fill_mib_per_s": JSONValue(Double(fill.ops) * 4096 / 1_048_576 / fill.seconds),
                "fill_seconds": JSONValue(fill.seconds), "fill_swap_outs": JSONValue(fillSwapOuts),
                "fill_device_writes": JSONValue(fillDeviceWrites), "fill_direct_reclaims": JSONValue(fillDirectReclaims),
                "pages_per_write": JSONValue(fillDeviceWrites > 0 ? Double(fillSwapOuts) / Double(fillDeviceWrites) : 0),
                "seq_swap_in_mib_per_s": JSONValue(sequentialSwapInMiBPerSecond),
                "seq_seconds": JSONValue(stream.seconds), "seq_swap_ins": JSONValue(streamSwapIns),
                "seq_device_reads": JSONValue(streamDeviceReads),
                "seq_pages_per_read": JSONValue(streamDeviceReads > 0 ? Double(streamSwapIns) / Double(streamDeviceReads) : 0),
                "seq_latency_us": JSONValue(stream.latency), "seq_advice": "sequential",
                "folio_bytes": JSONValue(folioBytes), "threads": JSONValue(fill.threads),
            ]
            if let random {
                fields["swap_in_per_s"] = JSONValue(swapInPerSecond)
                fields["random_accesses_per_s"] = JSONValue(random.opsPerSecond)
                fields["random_swap_ins"] = JSONValue(randomSwapIns)
                fields["random_seconds"] = JSONValue(random.seconds)
                fields["random_latency_us"] = JSONValue(random.latency)
            }
            return .object(fields)
        }
    }

    /// UserSwap's phases over a region of `folioSize` folios; the random phase is skipped when
    /// `seconds` is 0.
    static func measureUserSwap(
        folder: String, memory: Int, dataBytes: Int64, threads: Int, seconds: Double,
        folioSize: Int, policy: ReclaimPolicy, harness: BenchHarness
    ) throws -> Swap {
        let pages = Int(dataBytes / 4096)
        // Its own unnamed file per run, gone when the space is.
        var device: SwapSpace.DeviceConfiguration = .temporary(size: dataBytes * 2 + 4096, directory: folder)
        #if DEBUG
        if let override = harness.options.swapDeviceOverride { device = override.make(dataBytes * 2 + 4096) }
        #endif
        let space = try SwapSpace(
            .init(
                memory: memory, devices: [device],
                sync: harness.swapProtocol.sync(),
                reclaimPolicy: policy, encryption: harness.options.spaceEncryption))
        let region = try space.makeRegion(bytes: Int(dataBytes), folioSize: folioSize)
        let label = folioSize == 4096 ? "" : " (\(folioSize >> 10) KiB folios)"
        let stats = space.statistics
        let share = (pages + threads - 1) / threads
        // Every page is filled with its own pattern (`PagePattern`) and every page read back is
        // checked whole, so a wrong byte anywhere in a page fails the run.
        let seed: UInt64 = 0xD1_5C
        let wrong = Atomic<Int>(0)
        @Sendable func write(_ page: Int) throws {
            try region.withPage(page, for: .write) { bytes in PagePattern.fill(bytes, page: page, version: 1, seed: seed) }
        }
        @Sendable func check(_ page: Int) throws {
            try region.withPage(page, for: .read) { bytes in
                if !PagePattern.check(UnsafeRawBufferPointer(bytes), page: page, version: 1, seed: seed) {
                    wrong.add(1, ordering: .relaxed)  // Relaxed: a count read after the threads joined
                }
            }
        }
        // The first budget's worth of the shares fills memory without swapping anything out:
        // written before the clock starts, so that the timed phase is all swap-out (steady
        // state: each page written evicts one), as the raw write is all writing.
        let warm = min(share, memory / SwapPage.size / threads)
        for thread in 0..<threads {
            for page in (thread * share)..<min(pages, thread * share + warm) { try write(page) }
        }
        let before = (outs: stats[.swapOuts], writes: stats[.deviceWrites], direct: stats[.directReclaims])
        // Each thread writes the rest of its share in order.
        let fill = try harness.runTimed(
            "UserSwap sequential swap-out" + label, threads: threads, limit: .callsPerThread(share - warm),
            setUp: { thread in thread * share + warm },
            operation: { page in
                if page < pages { try write(page) }
                page += 1
            })
        let fillOuts = Int64(stats[.swapOuts] - before.outs)
        let fillWrites = Int64(stats[.deviceWrites] - before.writes)
        let fillDirect = Int64(stats[.directReclaims] - before.direct)
        // Read back in the same order (the first pages of each share left memory first).
        try region.advise(.sequential)
        let streamBefore = (ins: stats[.swapIns], reads: stats[.deviceReads])
        let stream = try harness.runTimed(
            "UserSwap sequential swap-in" + label, threads: threads, limit: .callsPerThread(share),
            setUp: { thread in thread * share },
            operation: { page in
                if page < pages { try check(page) }
                page += 1
            })
        let streamIns = Int64(stats[.swapIns] - streamBefore.ins)
        let streamReads = Int64(stats[.deviceReads] - streamBefore.reads)
        try region.advise(.random)
        let inBefore = stats[.swapIns]
        let random =
            seconds <= 0
            ? nil
            : try harness.runTimed(
                "UserSwap random swap-in", threads: threads, limit: .seconds(seconds),
                setUp: { thread in Xoshiro256StarStar(seed: 0x5A1D ^ UInt64(thread)) },
                operation: { generator in
                    try check(Int(generator.next() % UInt64(pages)))
                })
        let randomIns = Int64(stats[.swapIns] - inBefore)
        // Relaxed: the workers were joined by runTimed.
        let mismatches = wrong.load(ordering: .relaxed)
        if mismatches > 0 { harness.log("\(mismatches) pages read back wrong") }
        return Swap(
            fill: fill, stream: stream, streamSwapIns: streamIns, streamDeviceReads: streamReads, random: random, fillSwapOuts: fillOuts,
            fillDeviceWrites: fillWrites, fillDirectReclaims: fillDirect, randomSwapIns: randomIns,
            swapIns: Int64(stats[.swapIns]), swapOuts: Int64(stats[.swapOuts]),
            deviceReads: Int64(stats[.deviceReads]), deviceWrites: Int64(stats[.deviceWrites]),
            verified: mismatches == 0 && space.checkInvariants().isEmpty, folioBytes: folioSize)
    }
}
