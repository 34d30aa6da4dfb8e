import UserSwap

/// `userswap bench taskgroup`: a server's shape on Swift concurrency. `tasks` (1,000) tasks on
/// the default executor each loop over random pages of a region 4× the budget (`--data`,
/// default 4 × `--memory`, default 32 MiB), through async pins (`try await region.pin`): 80 %
/// reads, 20 % writes (`write_ratio`), for `--seconds` (5). Beside them a heartbeat task sleeps
/// 1 ms again and again and records how late it wakes: with blocking pins the cooperative
/// threads sit in reads and the heartbeat waits behind them; with async pins they suspend and
/// leave the threads free. The swap file is a temporary one in `--dir` (`swap_size`, default
/// twice the data and 4 MiB). The loop is `TaskGroupLoop`, the same in `--mode kernel`
/// (`TaskGroupScenario+Kernel.swift`), where the tasks fault on anonymous memory instead.
///
/// In the same run, before and after the tasks, the disk's raw 4 KiB random-read IOPS at
/// depth 32 on `--dir`'s file system (`RawRandomReads`; `raw=off` leaves it out): the report's
/// `raw_iops_depth32`, and `swap_in_rate_of_raw_depth32`, the timed phase's device reads per
/// second ÷ that.
///
/// The report's latency is per access (pin, touch, unpin, suspension included);
/// `heartbeat_late_us` is the heartbeat's lateness (p50, p99, max) and `pin_mode` says which
/// access ran (`async`, or `blocking` with `--param pins=blocking`, the same loop calling the
/// blocking pin from the tasks, for comparison). Swap traffic is the timed phase's, and so is
/// `io_inline`: transfers done by the calling thread for want of a free request slot of the
/// device's I/O engine (on a cooperative thread, a read that blocks it).
enum TaskGroupScenario: BenchScenario {
    static let name = "taskgroup"
    static let summary =
        "N tasks on the default executor, random reads and 20 % writes through async pins, data 4× the budget, with a 1 ms heartbeat's lateness"

    static let tasks = BenchParameter.integer("tasks", 1...100_000, default: 1000, "tasks on the default executor")
    static let writeRatio = BenchParameter.integer("write_ratio", 0...100, default: 20, "percent of accesses that write")
    static let pins = BenchParameter.choice("pins", ["async", "blocking"], default: "async", "which pin the tasks call")
    static let raw = BenchParameter.choice(
        "raw", ["on", "off"], default: "on", "measure the disk's raw random-read IOPS at depth 32 before and after the tasks")
    static func parameters(mode: BenchMode?) -> [BenchParameter] {
        if mode == .kernel { return [tasks, writeRatio, WorkloadBench.cgroup] }
        return [tasks, writeRatio, pins, raw, WorkloadBench.swapSize]
    }

    /// The sizes and the loop both sides run, from the options.
    static func loop(options: BenchOptions, harness: BenchHarness) throws -> (loop: TaskGroupLoop, memory: Int) {
        let memory = Int(options.memoryBytes ?? 32 << 20)
        let data = Int(options.dataBytes ?? Int64(4 * memory))
        let loop = TaskGroupLoop(
            tasks: try options.value(Self.tasks), pages: max(1, data / SwapPage.size), writePercent: try options.value(Self.writeRatio),
            seed: options.seed ?? 0x7a5c_6009_7a5c_6009, seconds: harness.seconds(default: 5))
        return (loop, memory)
    }

    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        switch harness.mode() {
        case .kernel: return try runKernel(options: options, harness: harness)
        case .transparent:
            throw BenchError(
                "bench taskgroup has no --mode transparent: its tasks pin pages (--mode explicit) or fault on anonymous memory (--mode kernel)"
            )
        case .explicit: break
        }
        guard (try options.value(Self.raw) as String) == "on" else { return try runUserSwap(options: options, harness: harness) }
        let (loop, _) = try loop(options: options, harness: harness)
        let (workload, raw) = try RawRandomReads.around(
            harness: harness, dataBytes: Int64(loop.pages * SwapPage.size), depths: [32],
            seconds: min(2, max(0.5, loop.seconds / 3)), seed: 0x7A5C
        ) { try runUserSwap(options: options, harness: harness) }
        var report = workload
        report.extras["raw"] = raw.json
        let depth32 = raw.iops(depth: 32) ?? 0
        let readsPerSecond = report.seconds > 0 ? Double(report.deviceReads) / report.seconds : 0
        report.extras["raw_iops_depth32"] = JSONValue(depth32)
        report.extras["device_reads_per_s"] = JSONValue(readsPerSecond)
        report.extras["swap_in_rate_of_raw_depth32"] = JSONValue(depth32 > 0 ? readsPerSecond / depth32 : 0)
        harness.log(
            "device reads \(LatencySummary.trimmed(readsPerSecond))/s = \(LatencySummary.trimmed(depth32 > 0 ? readsPerSecond / depth32 * 100 : 0)) % of the raw depth-32 IOPS (\(LatencySummary.trimmed(depth32)), the faster of before and after)"
        )
        return report
    }

    /// The UserSwap side: a region of the data's size in a space of the budget.
    static func runUserSwap(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        let (loop, memory) = try loop(options: options, harness: harness)
        let blocking = try options.value(Self.pins) as String == "blocking"
        let pages = loop.pages
        var swapBytes = Int64(2 * pages * SwapPage.size + (4 << 20))
        if let text = options.parameters["swap_size"] {
            guard case .success(let size) = ByteSize.parse(text) else { throw BenchError("--param swap_size=\(text): a size, e.g. 2G") }
            swapBytes = size
        }
        return try harness.withScratchDirectory { dir in
            let space = try SwapSpace(
                .init(
                    memory: memory, devices: [.temporary(size: swapBytes, directory: dir)],
                    sync: harness.swapProtocol.sync(), encryption: options.encryption ? .randomKey : .none))
            let region = try space.makeRegion(bytes: pages * SwapPage.size)
            let fill = harness.progress("fill")
            for p in 0..<pages {
                try region.withPage(p) { $0.storeBytes(of: UInt64(p), as: UInt64.self) }
                if p % 4096 == 0 { fill.update(Double(p) / Double(pages)) }
            }
            fill.finish()
            harness.log("\(loop.tasks) tasks, \(blocking ? "blocking" : "async") pins, \(pages) pages in a budget of \(memory >> 20) MiB")

            let counters: [SwapStatistics.Counter] = [.swapIns, .swapOuts, .deviceReads, .deviceWrites, .ioInline]
            let before = counters.map { space.statistics[$0] }
            let outcome = loop.run { page, write in
                do {
                    let pin =
                        blocking
                        ? try blockingPin(region, page, write ? .write : .read)
                        : try await region.pin(page, for: write ? .write : .read)
                    guard pin.bytes.load(as: UInt64.self) == UInt64(page) else { return false }
                    if write { pin.bytes.storeBytes(of: UInt64(page), as: UInt64.self) }
                    return true
                } catch {
                    return false
                }
            }
            let after = counters.map { space.statistics[$0] }
            var intact = outcome.wrong == 0
            for p in 0..<pages where intact {
                intact = try region.withPage(p, for: .read) { $0.load(as: UInt64.self) == UInt64(p) }
            }
            let problems = space.checkInvariants()
            var report = harness.report(outcome.timedRun(tasks: loop.tasks))
            report.fill(from: space, budget: Int64(memory), data: Int64(pages * SwapPage.size))
            // The timed phase's traffic, without the fill's and the check's.
            report.swapIns = Int64(after[0] - before[0])
            report.swapOuts = Int64(after[1] - before[1])
            report.deviceReads = Int64(after[2] - before[2])
            report.deviceWrites = Int64(after[3] - before[3])
            report.verified = intact && problems.isEmpty
            // Transfers the caller did itself for want of a free request slot: on a cooperative
            // thread, a read that blocks it (and every task queued behind it).
            report.extras["io_inline"] = JSONValue(Int(after[4] - before[4]))
            report.extras["swap_bytes"] = JSONValue(swapBytes)
            report.extras["pin_mode"] = .string(blocking ? "blocking" : "async")
            outcome.fill(&report, loop: loop)
            harness.log(outcome.summary)
            if !report.verified { harness.log("NOT verified: \(outcome.wrong) wrong accesses, invariants \(problems.prefix(3))") }
            return report
        }
    }

    /// The blocking pin, from a synchronous function: in `async` code the compiler picks the
    /// `async` form of `pin(_:for:)`.
    private static func blockingPin(_ region: Region, _ page: Int, _ access: PageAccess) throws(SwapError) -> Pin {
        try region.pin(page, for: access)
    }
}

extension TaskGroupLoop.Outcome {
    /// The timed run for the harness's report: one op per access.
    func timedRun(tasks: Int) -> TimedRun {
        TimedRun(threads: tasks, calls: ops, ops: ops, seconds: seconds, histogram: histogram, opsPerThread: [])
    }

    /// The fields both sides report alike.
    func fill(_ report: inout BenchReport, loop: TaskGroupLoop) {
        report.extras["tasks"] = JSONValue(loop.tasks)
        report.extras["write_ratio"] = JSONValue(loop.writePercent)
        report.extras["wrong_accesses"] = JSONValue(wrong)
        report.extras["heartbeat_late_us"] = heartbeatJSON
    }
}
