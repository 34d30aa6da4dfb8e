import UserSwap

/// `userswap bench pin`: the cost of the explicit-access fast path, pin + unpin of a resident
/// page on one thread (design goal: ≤ 50 ns). A few pages are made resident, then a tight loop
/// pins them in turn and drops each pin at once, in batches of `batch` (256) per timed call so
/// that the clock read (~25 ns) is amortised. Once for `.read`, once for `.write`, each for
/// `--seconds` (1 s). The headline (`latency_us`, `ops_per_s`) is the read run.
///
/// The histogram holds per-batch averages, so `pin_ns.p99` is the p99 of batch means: it shows
/// interference (interrupts, migrations) rather than single slow pins.
///
/// Parameters: `pages=16` (cycled through), `batch=256`.
enum PinScenario: BenchScenario {
    static let name = "pin"
    static let summary = "ns per pin + unpin of a resident page, one thread (read and write)"

    static let pages = BenchParameter.integer("pages", 1...4096, default: 16, "resident pages pinned in turn")
    static let batch = BenchParameter.integer("batch", 1...1_000_000, default: 256, "pins timed together")
    static func parameters(mode: BenchMode?) -> [BenchParameter] { [pages, batch] }

    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        let pages: Int = try options.value(Self.pages)
        let batch: Int = try options.value(Self.batch)
        let seconds = harness.seconds(default: 1)
        let seed = options.seed ?? 0x0919_0919_0919_0919
        if let threads = options.threads, threads != 1 {
            harness.log("pin is a one-thread measurement; ignoring --threads \(threads)")
        }

        let sync: SwapInSync = harness.swapProtocol.sync()
        let memory = Int(options.memoryBytes ?? Int64((pages + 16) * SwapPage.size))
        let space = try SwapSpace(.init(memory: memory, sync: sync))
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        for page in 0..<pages {
            try region.withPage(page, for: .write) { RaceScenario.Pattern.fill($0, page: page, seed: seed) }
        }

        func timed(_ access: PageAccess, _ label: String) throws -> TimedRun {
            try harness.runTimed(label, threads: 1, limit: .seconds(seconds), opsPerCall: batch, setUp: { _ in 0 }) { next in
                var page = next
                for _ in 0..<batch {
                    // Pinned and dropped at once: the guard's deinit is the unpin.
                    _ = try region.pin(page, for: access)
                    page += 1
                    if page == pages { page = 0 }
                }
                next = page
            }
        }
        let read = try timed(.read, "read")
        let write = try timed(.write, "write")

        // Pins must not have moved, changed or leaked anything.
        var intact = true
        for page in 0..<pages {
            intact =
                try region.withPage(page, for: .read) {
                    RaceScenario.Pattern.matches(UnsafeRawBufferPointer($0), page: page, seed: seed)
                } && region.state(ofPage: page) == .resident && intact
        }
        let problems = space.checkInvariants()

        var report = harness.report(read)
        report.fill(from: space, budget: Int64(memory), data: Int64(pages * SwapPage.size))
        report.verified =
            intact && problems.isEmpty && space.residentFrames == pages
            && read.histogram.count == UInt64(read.ops) && write.histogram.count == UInt64(write.ops)
        report.extras["pin_ns"] = nanoseconds(read)
        report.extras["pin_write_ns"] = nanoseconds(write)
        report.extras["pin_write_ops_per_s"] = JSONValue(write.opsPerSecond)
        report.extras["pages"] = JSONValue(pages)
        report.extras["batch"] = JSONValue(batch)
        if !problems.isEmpty { report.extras["invariant_problems"] = .array(problems.prefix(10).map { .string($0) }) }
        if !report.verified {
            harness.log(
                "NOT verified: pages intact \(intact), \(space.residentFrames) frames resident for \(pages) pages, invariants \(problems.prefix(3))"
            )
        }
        harness.log(
            "pin+unpin: read p50 \(read.histogram.value(atQuantile: 0.5)) ns, write p50 \(write.histogram.value(atQuantile: 0.5)) ns")
        return report
    }

    /// `{"p50": …, "p99": …, "mean": …}` in nanoseconds, per docs/BENCH-JSON.md's `pin_ns`.
    static func nanoseconds(_ run: TimedRun) -> JSONValue {
        [
            "p50": JSONValue(run.histogram.value(atQuantile: 0.5)),
            "p99": JSONValue(run.histogram.value(atQuantile: 0.99)),
            "mean": .double((run.histogram.mean * 10).rounded() / 10),
        ]
    }
}
