import CUserSwap
import CUserSwapURing
import Glibc
import UserSwap

/// The raw 4 KiB random-read IOPS of the disk under the swap files at a given queue depth:
/// one thread keeps `depth` `O_DIRECT` reads of random 4 KiB-aligned offsets of a
/// `DirectIOFile` in flight on an io_uring (as the I/O engine reads a swap file), reaping every
/// completion that is ready and submitting as many new reads in one `io_uring_enter`. Page
/// faults cannot go past one read in flight per faulting thread; a batched or asynchronous
/// swap-in can, up to the depth the device serves. `bench device-limits` and `bench multiget`
/// measure depths 1, 2 and 32 in the same run as their UserSwap figures.
///
/// The latency of a read is from its submission to its completion being reaped.
struct RawRandomReads {
    /// Requests kept in flight.
    var depth: Int
    /// Completions over `seconds`, and their latencies.
    var run: TimedRun

    var iops: Double { run.opsPerSecond }

    /// The depths the reports give: one fault, two faulting threads, and a deep queue.
    static let standardDepths = [1, 2, 32]

    var json: JSONValue {
        [
            "depth": JSONValue(depth), "iops": JSONValue(iops), "mib_per_s": JSONValue(iops * 4096 / 1_048_576),
            "latency_us": JSONValue(run.latency), "reads": JSONValue(run.ops), "seconds": JSONValue(run.seconds),
        ]
    }

    /// What `random_read_4k_io_uring` says about how it was measured.
    static let note =
        "O_DIRECT 4 KiB reads at uniformly random 4 KiB-aligned offsets of a written scratch file, one thread keeping `depth` reads in flight on one io_uring (readv, one submission per batch of completions reaped); latency from submission to completion"

    /// Reads `file` (its blocks written: reads of unwritten extents never reach the disk) at
    /// each of `depths` for `seconds` each.
    static func measure(_ file: DirectIOFile, depths: [Int], seconds: Double, seed: UInt64, harness: BenchHarness) throws
        -> [RawRandomReads]
    {
        try depths.map { depth in
            let run = try measure(file, depth: depth, seconds: seconds, seed: seed ^ UInt64(depth))
            harness.log(
                "raw random 4K reads at depth \(depth) (io_uring): \(LatencySummary.trimmed(run.opsPerSecond)) IOPS, latency \(run.latency.text)"
            )
            return RawRandomReads(depth: depth, run: run)
        }
    }

    /// One depth: `depth` reads in flight for `seconds`.
    static func measure(_ file: DirectIOFile, depth: Int, seconds: Double, seed: UInt64) throws -> TimedRun {
        require(depth >= 1 && seconds > 0, "depth \(depth) for \(seconds) s: at least 1, more than 0 s")
        let pages = UInt64(file.bytes / 4096)
        var ring: OpaquePointer?
        let created = cus_ring_create(UInt32(max(depth, 2)), &ring)
        guard created == 0, let ring else {
            throw BenchError("io_uring is not available (\(String(cString: strerror(-created)))): the raw deep-queue reads need it")
        }
        defer { cus_ring_destroy(ring) }
        // One buffer and one iovec per slot of the queue; a slot's index is its request's tag.
        let buffers = AlignedBuffer(count: depth * 4096)
        let vectors = UnsafeMutableBufferPointer<iovec>.allocate(capacity: depth)
        defer { vectors.deallocate() }
        var submittedAt = [UInt64](repeating: 0, count: depth)
        var generator = Xoshiro256StarStar(seed: seed)
        var histogram = LatencyHistogram()
        var completed: Int64 = 0

        func queue(_ slot: Int) throws {
            vectors[slot] = iovec(iov_base: buffers.bytes.baseAddress! + slot * 4096, iov_len: 4096)
            let offset = Int64(generator.next() % pages) * 4096
            let result = cus_ring_prep_rw(ring, 0, file.descriptor, vectors.baseAddress! + slot, 1, offset, UInt64(slot))
            // The ring has an entry per slot and every slot has at most one request: never full.
            require(result == 0, "io_uring submission queue full with \(depth) entries for \(depth) requests")
        }
        func submit() throws {
            var result: Int32
            repeat { result = cus_ring_submit(ring) } while result == -EINTR
            guard result >= 0 else { throw BenchError("io_uring submit: \(String(cString: strerror(-result)))") }
        }

        let start = cus_monotonic_ns()
        let deadline = start &+ UInt64(seconds * 1e9)
        for slot in 0..<depth {
            try queue(slot)
            submittedAt[slot] = start
        }
        try submit()
        var inFlight = depth
        var reaped: [Int] = []
        reaped.reserveCapacity(depth)
        var now = start
        var end = start
        while inFlight > 0 {
            var tag: UInt64 = 0
            var result: Int32 = 0
            var waited: Int32
            repeat { waited = cus_ring_wait(ring, &tag, &result) } while waited == -EINTR
            guard waited == 0 else { throw BenchError("io_uring wait: \(String(cString: strerror(-waited)))") }
            reaped.removeAll(keepingCapacity: true)
            now = cus_monotonic_ns()
            repeat {
                guard result == 4096 else {
                    throw BenchError(
                        "O_DIRECT read of \(file.path): \(result < 0 ? String(cString: strerror(-result)) : "\(result) of 4096 bytes")")
                }
                let slot = Int(tag)
                histogram.record(now &- submittedAt[slot])
                completed += 1
                inFlight -= 1
                reaped.append(slot)
            } while cus_ring_peek(ring, &tag, &result) == 0
            end = now
            // After the deadline the queue drains: the reads in flight complete and count, none
            // is added.
            guard now < deadline else { continue }
            for slot in reaped {
                try queue(slot)
                submittedAt[slot] = now
            }
            inFlight += reaped.count
            try submit()
        }
        return TimedRun(
            threads: 1, calls: completed, ops: completed, seconds: Double(end &- start) / 1e9, histogram: histogram,
            opsPerThread: [completed])
    }

    /// A scratch file of `bytes` in `folder`, written whole in 1 MiB `O_DIRECT` transfers (so
    /// that reads reach the disk), for `measure`. Removed when the returned file is released.
    static func writtenScratchFile(folder: String, bytes: Int64) throws -> DirectIOFile {
        let transfer = RawSequentialBandwidth.transfer
        let size = max(Int64(transfer), bytes / Int64(transfer) * Int64(transfer))
        let file = try DirectIOFile(path: folder + "/raw-random", bytes: size)
        let buffer = AlignedBuffer(count: transfer, fill: 0x5A)
        var offset: Int64 = 0
        while offset < size {
            try file.write(UnsafeRawBufferPointer(buffer.bytes), at: offset)
            offset += Int64(transfer)
        }
        return file
    }
}
