import Glibc
import Synchronization
import UserSwap

/// `userswap bench faults`: what one fault costs a thread touching a transparent region, by
/// kind, one access at a time on one thread (each access is timed alone):
/// - `minor`: the page is in memory but unmapped from the application's view (as reclaim's
///   access tracking leaves it): one userfaultfd round trip, no I/O;
/// - `major`: the page is on the swap device: the round trip plus the read;
/// - `first_touch`: a page never touched: the round trip plus a zero fill;
/// - for reference, `explicit_major`: a pin of a swapped-out page of an explicit region on the
///   same device (the major fault without userfaultfd), and `kernel_first_touch`: the kernel's
///   own fault on fresh anonymous memory.
/// Pages are visited in a random order with readahead off, and the budget holds all of them, so
/// that no access pays for another's readahead or reclaim. The headline is `major`.
///
/// Parameters: `pages=4096`, `device=file|memory` (default file: a swap file in the scratch
/// folder, read with O_DIRECT), `faults=handler_threads|faulting_thread` (who resolves them).
enum FaultsScenario: BenchScenario {
    static let name = "faults"
    static let summary =
        "µs per fault on a transparent region: minor (resident), major (swapped), first touch; explicit and kernel for reference"

    static let pages = BenchParameter.integer("pages", 16...1 << 20, default: 4096, "pages faulted in each phase")
    static let device = BenchParameter.choice(
        "device", ["file", "memory"], default: "file", "swap to a file (O_DIRECT) or to process memory")
    static func parameters(mode: BenchMode?) -> [BenchParameter] { [pages, device, WorkloadBench.faults] }

    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        let pages: Int = try options.value(Self.pages)
        let device: String = try options.value(Self.device)
        let faults = try WorkloadBench.transparentFaults(options)
        let seed = options.seed ?? 0xfa17
        let memory = Int(options.memoryBytes ?? Int64(4 * pages * SwapPage.size))
        let swapBytes = Int64(4 * pages * SwapPage.size)
        return try harness.withScratchDirectory { folder in
            let swap: SwapSpace.DeviceConfiguration =
                device == "memory"
                ? .memory(bytes: Int(swapBytes)) : .temporary(size: swapBytes, directory: folder)
            let space = try SwapSpace(.init(memory: memory, devices: [swap], encryption: options.spaceEncryption))
            var order = Array(0..<pages)
            var random = SplitMix64(seed: seed)
            order.shuffle(using: &random)

            // Transparent: first touch (zero fill by a write), then swap out and read back
            // (major), then unmap from the view and read again (minor).
            let region = try space.makeTransparentRegion(bytes: pages * SwapPage.size, faults: faults)
            try region.advise(.random)
            let base = region.base
            let firstTouch = timeEach(order) { page in store(base, page, UInt64(page) &+ seed) }
            try region.swapOut(pages: 0..<pages)
            var intact = true
            let major = timeEach(order) { page in intact = load(base, page) == UInt64(page) &+ seed && intact }
            try region.deactivate(pages: 0..<pages)
            let minor = timeEach(order) { page in intact = load(base, page) == UInt64(page) &+ seed && intact }
            let transparentCounters = space.statistics.snapshot

            // Explicit: the same major fault through a pin.
            let explicit = try space.makeRegion(bytes: pages * SwapPage.size)
            try explicit.advise(.random)
            for page in 0..<pages { try explicit.withPage(page) { $0.storeBytes(of: UInt64(page), as: UInt64.self) } }
            try explicit.swapOut(pages: 0..<pages)
            var explicitMajor = LatencyHistogram()
            for page in order {
                let start = now()
                let pin = try explicit.pin(page, for: .read)
                let value = pin.bytes.load(as: UInt64.self)
                explicitMajor.record(now() - start)
                intact = value == UInt64(page) && intact
            }

            // The kernel's own anonymous fault.
            let kernel = try AnonymousPageStore(pages: pages)
            let kernelFirstTouch = timeEach(order) { page in
                kernel.withPage(page, for: .write) { $0.storeBytes(of: 1, as: UInt64.self) }
            }

            let problems = space.checkInvariants()
            let run = TimedRun(
                threads: 1, calls: Int64(pages), ops: Int64(pages), seconds: Double(major.sum) / 1e9,
                histogram: major, opsPerThread: [Int64(pages)])
            var report = harness.report(run, mode: .transparent)
            report.fill(from: space, budget: Int64(memory), data: Int64(pages * SwapPage.size))
            report.verified = intact && problems.isEmpty && region.lastFaultError == nil
            report.extras["fault_us"] = [
                "minor": microseconds(minor), "major": microseconds(major), "first_touch": microseconds(firstTouch),
                "explicit_major": microseconds(explicitMajor), "kernel_first_touch": microseconds(kernelFirstTouch),
            ]
            report.extras["device"] = .string(device)
            report.extras["pages"] = JSONValue(pages)
            report.extras["tracks_writes"] = .bool(region.tracksWrites)
            report.extras["fault_service"] = .string(faults.name)
            report.extras["handles_kernel_faults"] = .bool(region.handlesKernelFaults)
            report.extras["transparent_counters"] = .object(transparentCounters.filter { $0.value != 0 }.mapValues { JSONValue($0) })
            if !problems.isEmpty { report.extras["invariant_problems"] = .array(problems.prefix(10).map { .string($0) }) }
            for (label, h) in [
                ("minor", minor), ("major", major), ("first touch", firstTouch),
                ("explicit major", explicitMajor), ("kernel first touch", kernelFirstTouch),
            ] {
                harness.log(
                    "\(label): p50 \(LatencySummary.format(Double(h.value(atQuantile: 0.5)) / 1000)), p99 \(LatencySummary.format(Double(h.value(atQuantile: 0.99)) / 1000))"
                )
            }
            return report
        }
    }

    private static func timeEach(_ order: [Int], _ body: (Int) -> Void) -> LatencyHistogram {
        var histogram = LatencyHistogram()
        for page in order {
            let start = now()
            body(page)
            histogram.record(now() - start)
        }
        return histogram
    }

    @inline(never)
    private static func load(_ base: UnsafeMutableRawPointer, _ page: Int) -> UInt64 {
        // Relaxed: a timed touch of the page, no data handed between threads
        (base + page * SwapPage.size).assumingMemoryBound(to: Atomic<UInt64>.self).pointee.load(ordering: .relaxed)
    }

    @inline(never)
    private static func store(_ base: UnsafeMutableRawPointer, _ page: Int, _ value: UInt64) {
        // Relaxed: as `load`
        (base + page * SwapPage.size).assumingMemoryBound(to: Atomic<UInt64>.self).pointee.store(value, ordering: .relaxed)
    }

    private static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    static func microseconds(_ h: LatencyHistogram) -> JSONValue {
        [
            "p50": JSONValue(Double(h.value(atQuantile: 0.5)) / 1000),
            "p99": JSONValue(Double(h.value(atQuantile: 0.99)) / 1000),
            "mean": JSONValue((h.mean / 100).rounded() / 10),
        ]
    }
}
