import Foundation
import Synchronization
import Testing
import UserSwap

@testable import UserSwapBench
@testable import UserSwapCLI

extension CLI {
    /// The harness the scenarios are written against; runs in debug builds too (only the `bench`
    /// command refuses them).
    @Suite("Bench harness")
    struct BenchHarnessTests {
        static func harness(_ options: BenchOptions = BenchOptions(scenario: "_selfcheck", showsProgress: false)) -> BenchHarness {
            BenchHarness(
                scenario: options.scenario, options: options, swapProtocol: .swapcache,
                machine: BenchReportTests.machine, console: CapturedConsole().console)
        }

        @Test("the workload benchmarks take the explicit region's folio size as a --param; bad sizes and other modes are refused")
        func folioParameter() throws {
            let options = BenchOptions(scenario: "seq", parameters: ["folio": "64K"], showsProgress: false)
            #expect(try WorkloadBench.configuration(.seq, options: options, harness: Self.harness(options)).folioBytes == 64 << 10)
            let defaults = BenchOptions(scenario: "seq", showsProgress: false)
            #expect(try WorkloadBench.configuration(.seq, options: defaults, harness: Self.harness(defaults)).folioBytes == 4096)
            for bad in ["3K", "4M", "big"] {
                let o = BenchOptions(scenario: "seq", parameters: ["folio": bad], showsProgress: false)
                #expect(throws: BenchError.self) { try WorkloadBench.configuration(.seq, options: o, harness: Self.harness(o)) }
            }
            let transparent = BenchOptions(scenario: "seq", mode: .transparent, parameters: ["folio": "64K"], showsProgress: false)
            #expect(throws: BenchError.self) {
                try WorkloadBench.configuration(.seq, options: transparent, harness: Self.harness(transparent))
            }
        }

        @Test("the workload benchmarks take the I/O engine, where faults read, and the write limit as --params")
        func ioParameters() throws {
            let options = BenchOptions(
                scenario: "random", parameters: ["io": "thread_pool", "reads": "engine", "writes_in_flight": "4"],
                showsProgress: false)
            let c = try WorkloadBench.configuration(.random, options: options, harness: Self.harness(options))
            #expect(c.ioEngine == .threadPool && !c.ioReadsInCaller && c.ioMaxWritesInFlight == 4)
            let defaults = try WorkloadBench.configuration(
                .random, options: BenchOptions(scenario: "random", showsProgress: false),
                harness: Self.harness())
            #expect(defaults.ioEngine == .automatic && defaults.ioReadsInCaller && defaults.ioMaxWritesInFlight == 2)
            for bad in [["io": "aio"], ["reads": "kernel"], ["writes_in_flight": "0"]] {
                let o = BenchOptions(scenario: "random", parameters: bad, showsProgress: false)
                #expect(throws: BenchError.self) { try WorkloadBench.configuration(.random, options: o, harness: Self.harness(o)) }
            }
        }

        @Test("the workload benchmarks take the reclaim policy as a --param; all runs each over the same operations")
        func policyParameter() throws {
            let defaults = try WorkloadBench.configuration(
                .zipf, options: BenchOptions(scenario: "zipf", showsProgress: false),
                harness: Self.harness())
            #expect(defaults.reclaimPolicy == .frequency)
            for policy in ReclaimPolicy.allCases {
                let o = BenchOptions(scenario: "zipf", parameters: ["policy": policy.benchName], showsProgress: false)
                #expect(try WorkloadBench.configuration(.zipf, options: o, harness: Self.harness(o)).reclaimPolicy == policy)
            }
            let bad = BenchOptions(scenario: "zipf", parameters: ["policy": "lru"], showsProgress: false)
            #expect(throws: BenchError.self) { try WorkloadBench.configuration(.zipf, options: bad, harness: Self.harness(bad)) }

            // policy=all: four runs on a memory device, the later ones replaying the first's operations.
            let all = BenchOptions(
                scenario: "zipf", memoryBytes: 1 << 20, dataBytes: 4 << 20,
                parameters: ["policy": "all", "device": "memory", "ops": "20000"], showsProgress: false)
            let report = try WorkloadBench.run(.zipf, options: all, harness: Self.harness(all))
            #expect(report.verified)
            guard case .object(let comparison)? = report.extras["policy_comparison"] else {
                Issue.record("no policy_comparison in \(report.extras.keys.sorted())")
                return
            }
            #expect(Set(comparison.keys).isSuperset(of: ReclaimPolicy.allCases.map(\.benchName)))
            #expect(comparison["same_ops"] == .bool(true))
            guard case .object(let kernel)? = comparison["workingset"] else {
                Issue.record("no workingset side")
                return
            }
            #expect(kernel["swap_ins_ratio"] == JSONValue(1.0))
        }

        @Test("a fixed number of calls per thread gives exactly that many ops, all timed")
        func callsPerThread() throws {
            let run = try Self.harness().runTimed("count", threads: 3, limit: .callsPerThread(1000), opsPerCall: 2) { _ in }
            #expect(run.threads == 3)
            #expect(run.calls == 3000)
            #expect(run.ops == 6000)
            #expect(run.opsPerThread == [2000, 2000, 2000])
            #expect(run.histogram.count == 6000)
            #expect(run.seconds > 0)
        }

        @Test("a timed run lasts about as long as asked")
        func seconds() throws {
            let run = try Self.harness().runTimed("clock", threads: 2, limit: .seconds(0.05)) { _ in }
            #expect(run.seconds >= 0.05)
            #expect(run.seconds < 2)
            #expect(run.ops > 0)
        }

        @Test("per-thread state is made on its thread and torn down after the clock stops")
        func state() throws {
            let tornDown = Counter()
            let run = try Self.harness().runTimed(
                "state", threads: 2, limit: .callsPerThread(50),
                setUp: { thread in [thread] },
                operation: { list in list.append(list[0]) },
                tearDown: { list in
                    if list.count == 51 { tornDown.add() }
                }
            )
            #expect(run.ops == 100)
            #expect(tornDown.value == 2)
        }

        @Test("the first error stops every thread and is rethrown")
        func errors() {
            #expect(throws: BenchError("boom")) {
                try Self.harness().runTimed("fail", threads: 2, limit: .seconds(10)) { thread in
                    if thread == 1 { throw BenchError("boom") }
                }
            }
        }

        @Test("iteration timings: min, median and p90 by nearest rank")
        func iterationTimings() {
            let odd = IterationTimings(samples: [5, 1, 3, 2, 4])
            #expect(odd.min == 1)
            #expect(odd.median == 3)
            #expect(odd.p90 == 5)
            let even = IterationTimings(samples: [4, 1, 3, 2])
            #expect(even.median == 2.5)
            #expect(even.p90 == 4)
            let many = IterationTimings(samples: (1...20).map(Double.init))
            #expect(many.p90 == 18)
        }

        @Test("measure runs warm-up plus timed iterations, taking --iterations and --warmup")
        func measure() {
            let calls = Counter()
            let timings = Self.harness().measure("job", warmup: 2, iterations: 3) { calls.add() }
            #expect(timings.samples.count == 3)
            #expect(calls.value == 5)

            let fromOptions = Self.harness(BenchOptions(scenario: "_selfcheck", iterations: 4, warmup: 0, showsProgress: false))
            #expect(fromOptions.measure("job") {}.samples.count == 4)
        }

        @Test("the self-check scenario verifies the harness and fills the report")
        func selfCheck() throws {
            let options = BenchOptions(scenario: "_selfcheck", threads: 2, seconds: 0.05, seed: 7, showsProgress: false)
            let report = try SelfCheckScenario.run(options: options, harness: Self.harness(options))
            #expect(report.verified)
            #expect(report.threads == 2)
            #expect(report.ops > 0)
            #expect(report.latency.count == UInt64(report.ops))
            #expect(report.swapProtocol == .swapcache)
            #expect(report.extras["seed"] == 7)
            #expect(report.peakResidentBytes > 0)
        }

        @Test("the bench command writes a comparison for --protocol both")
        func benchCommandBoth() throws {
            try withTemporaryFolder { folder in
                let path = folder + "/selfcheck.json"
                var options = BenchOptions(scenario: "_selfcheck", json: .file(path), threads: 1, seconds: 0.02, showsProgress: false)
                options.protocols = [.swapcache, .legacy]
                let captured = CapturedConsole()
                let output = try BenchCommand.perform(options, console: captured.console)
                guard case .comparison(let comparison) = output else {
                    Issue.record("expected a comparison, got \(output)")
                    return
                }
                #expect(comparison.runs.map(\.swapProtocol) == [.swapcache, .legacy])
                let json = try jsonObject(Data(contentsOf: URL(fileURLWithPath: path)))
                #expect((json["runs"] as? [Any])?.count == 2)
                #expect(json["ratios"] is [String: Double])
                #expect(captured.stdout.contains("swapcache vs legacy"))
            }
        }

        @Test("--param values parse as the type asked for")
        func parameters() throws {
            let options = BenchOptions(scenario: "_selfcheck", parameters: ["theta": "0.99", "order": "x"])
            #expect(try options.parameter("theta", default: 0.5) == 0.99)
            #expect(try options.parameter("missing", default: 3) == 3)
            #expect(throws: BenchError.self) { try options.parameter("order", default: 0) }
        }
    }
}

/// A thread-safe counter for closures that run on worker threads.
final class Counter: Sendable {
    private let count = Mutex(0)
    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
