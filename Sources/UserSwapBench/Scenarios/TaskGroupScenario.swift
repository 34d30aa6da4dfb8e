import Dispatch
import Synchronization
import UserSwap

/// `userswap bench taskgroup`: a server's shape on Swift concurrency. `tasks` (1,000) tasks on
/// the default executor each loop over random pages of a region 4× the budget (`--data`,
/// default 4 × `--memory`, default 32 MiB), through async pins (`try await region.pin`): 80 %
/// reads, 20 % writes (`write_ratio`), for `--seconds` (5). Beside them a heartbeat task sleeps
/// 1 ms again and again and records how late it wakes: with blocking pins the cooperative
/// threads sit in reads and the heartbeat waits behind them; with async pins they suspend and
/// leave the threads free. The swap file is a temporary one in `--dir`.
///
/// The report's latency is per access (pin, touch, unpin, suspension included);
/// `heartbeat_late_us` is the heartbeat's lateness (p50, p99, max) and `pin_mode` says which
/// access ran (`async`, or `blocking` with `--param pins=blocking`, the same loop calling the
/// blocking pin from the tasks, for comparison).
enum TaskGroupScenario: BenchScenario {
    static let name = "taskgroup"
    static let summary =
        "N tasks on the default executor, random reads and 20 % writes through async pins, data 4× the budget, with a 1 ms heartbeat's lateness"

    static let tasks = BenchParameter.integer("tasks", 1...100_000, default: 1000, "tasks on the default executor")
    static let writeRatio = BenchParameter.integer("write_ratio", 0...100, default: 20, "percent of accesses that write")
    static let pins = BenchParameter.choice("pins", ["async", "blocking"], default: "async", "which pin the tasks call")
    static func parameters(mode: BenchMode?) -> [BenchParameter] { [tasks, writeRatio, pins] }

    /// What the tasks report back.
    private struct Outcome: Sendable {
        var histogram = LatencyHistogram()
        var ops: Int64 = 0
        var wrong = 0
    }

    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        let taskCount: Int = try options.value(Self.tasks)
        let writes: Int = try options.value(Self.writeRatio)
        let blocking = try options.value(Self.pins) as String == "blocking"
        let seconds = harness.seconds(default: 5)
        let memory = Int(options.memoryBytes ?? 32 << 20)
        let data = Int(options.dataBytes ?? Int64(4 * memory))
        let pages = data / SwapPage.size
        let seed = options.seed ?? 0x7a5c_6009_7a5c_6009
        return try harness.withScratchDirectory { dir in
            let space = try SwapSpace(
                .init(
                    memory: memory, devices: [.temporary(size: Int64(2 * data + (4 << 20)), directory: dir)],
                    sync: harness.swapProtocol.sync(), encryption: options.encryption ? .randomKey : .none))
            let region = try space.makeRegion(bytes: pages * SwapPage.size)
            let fill = harness.progress("fill")
            for p in 0..<pages {
                try region.withPage(p) { $0.storeBytes(of: UInt64(p), as: UInt64.self) }
                if p % 4096 == 0 { fill.update(Double(p) / Double(pages)) }
            }
            fill.finish()
            harness.log("\(taskCount) tasks, \(blocking ? "blocking" : "async") pins, \(pages) pages in a budget of \(memory >> 20) MiB")

            let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
            let start = DispatchTime.now().uptimeNanoseconds
            let (outcome, heartbeat) = waitFor {
                await withTaskGroup(of: Outcome.self) { group in
                    for t in 0..<taskCount {
                        group.addTask {
                            var rng = SplitMix64(seed: seed &+ UInt64(t))
                            var o = Outcome()
                            while DispatchTime.now().uptimeNanoseconds < deadline {
                                let page = Int(rng.next() % UInt64(pages))
                                let write = Int(rng.next() % 100) < writes
                                let before = DispatchTime.now().uptimeNanoseconds
                                do {
                                    let pin =
                                        blocking
                                        ? try blockingPin(region, page, write ? .write : .read)
                                        : try await region.pin(page, for: write ? .write : .read)
                                    if pin.bytes.load(as: UInt64.self) != UInt64(page) { o.wrong += 1 }
                                    if write { pin.bytes.storeBytes(of: UInt64(page), as: UInt64.self) }
                                } catch {
                                    o.wrong += 1
                                }
                                o.histogram.record(DispatchTime.now().uptimeNanoseconds - before)
                                o.ops += 1
                            }
                            return o
                        }
                    }
                    // The heartbeat: sleeps 1 ms, records how much later than that it woke.
                    group.addTask {
                        var o = Outcome()
                        while DispatchTime.now().uptimeNanoseconds < deadline {
                            let before = DispatchTime.now().uptimeNanoseconds
                            try? await Task.sleep(nanoseconds: 1_000_000)
                            let slept = DispatchTime.now().uptimeNanoseconds - before
                            o.histogram.record(slept > 1_000_000 ? slept - 1_000_000 : 0)
                            o.ops = -1
                        }
                        return o
                    }
                    var all = Outcome()
                    var heartbeat = LatencyHistogram()
                    for await o in group {
                        if o.ops < 0 {
                            heartbeat = o.histogram
                        } else {
                            all.histogram.merge(o.histogram)
                            all.ops += o.ops
                            all.wrong += o.wrong
                        }
                    }
                    return (all, heartbeat)
                }
            }
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            var intact = outcome.wrong == 0
            for p in 0..<pages where intact {
                intact = try region.withPage(p, for: .read) { $0.load(as: UInt64.self) == UInt64(p) }
            }
            let problems = space.checkInvariants()
            let run = TimedRun(
                threads: taskCount, calls: outcome.ops, ops: outcome.ops, seconds: elapsed, histogram: outcome.histogram,
                opsPerThread: [])
            var report = harness.report(run)
            report.fill(from: space, budget: Int64(memory), data: Int64(pages * SwapPage.size))
            report.verified = intact && problems.isEmpty
            report.extras["tasks"] = JSONValue(taskCount)
            report.extras["pin_mode"] = .string(blocking ? "blocking" : "async")
            report.extras["write_ratio"] = JSONValue(writes)
            report.extras["heartbeat_late_us"] = [
                "p50": .double(Double(heartbeat.value(atQuantile: 0.5)) / 1000),
                "p99": .double(Double(heartbeat.value(atQuantile: 0.99)) / 1000),
                "max": .double(Double(heartbeat.value(atQuantile: 1)) / 1000),
                "count": JSONValue(Int(heartbeat.count)),
            ]
            harness.log(
                "\(outcome.ops) accesses in \(String(format: "%.2f", elapsed)) s; access p99 \(outcome.histogram.value(atQuantile: 0.99) / 1000) µs; heartbeat late p50 \(heartbeat.value(atQuantile: 0.5) / 1000) µs, p99 \(heartbeat.value(atQuantile: 0.99) / 1000) µs"
            )
            if !report.verified { harness.log("NOT verified: \(outcome.wrong) wrong accesses, invariants \(problems.prefix(3))") }
            return report
        }
    }

    /// The blocking pin, from a synchronous function: in `async` code the compiler picks the
    /// `async` form of `pin(_:for:)`.
    private static func blockingPin(_ region: Region, _ page: Int, _ access: PageAccess) throws(SwapError) -> Pin {
        try region.pin(page, for: access)
    }

    /// Runs `body` on the default executor and waits for it on this (non-cooperative) thread.
    private static func waitFor<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let result = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            let value = await body()
            result.withLock { $0 = value }
            done.signal()
        }
        done.wait()
        return result.withLock { $0! }
    }
}
