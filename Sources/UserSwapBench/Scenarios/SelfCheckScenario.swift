import UserSwap

/// An internal scenario that checks the harness itself, not the engine: threads that each walk
/// a known pseudo-random sequence, timed by `runTimed`, plus a `measure` of a fixed job. It
/// verifies that every thread's sequence ends where it must and that the histogram counted every
/// operation. Not listed for users; `userswap bench _selfcheck --seconds 0.2` runs it.
enum SelfCheckScenario: BenchScenario {
    static let name = "_selfcheck"
    static let summary = "checks the benchmark harness (threads, clock, histogram, JSON)"
    static let isListed = false

    /// Steps of the xorshift sequence one call walks.
    static let steps = BenchParameter.integer("steps", 1...1 << 20, default: 64, "xorshift steps one timed call walks")
    static func parameters(mode: BenchMode?) -> [BenchParameter] { [steps] }

    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        let threads = harness.threads(default: 2)
        let seconds = harness.seconds(default: 0.2)
        let seed = options.seed ?? 0x9E37_79B9_7F4A_7C15
        let stepsPerCall: Int = try options.value(Self.steps)

        let run = try harness.runTimed(
            "threads",
            threads: threads,
            limit: .seconds(seconds),
            setUp: { thread in Walker(state: seed &+ UInt64(thread) | 1) },
            operation: { walker in walker.step(stepsPerCall) },
            tearDown: { walker in
                // Replaying the same number of steps from the seed must land on the same value.
                var replay = Walker(state: walker.start)
                replay.step(Int(walker.steps))
                guard replay.state == walker.state else {
                    throw BenchError("self-check: thread state diverged after \(walker.steps) steps")
                }
            }
        )
        let timings = harness.measure("iterations", warmup: 1, iterations: 5) {
            var walker = Walker(state: seed)
            walker.step(10_000)
            require(walker.state != 0, "xorshift never reaches zero")
        }

        var report = harness.report(run)
        report.verified = run.histogram.count == UInt64(run.ops) && run.opsPerThread.reduce(0, +) == run.ops
        report.extras["iterations"] = timings.json
        report.extras["seed"] = JSONValue(seed)
        return report
    }

    /// xorshift64: a sequence whose value after n steps is reproducible.
    struct Walker {
        let start: UInt64
        var state: UInt64
        var steps: UInt64 = 0

        init(state: UInt64) {
            start = state
            self.state = state
        }

        mutating func step(_ count: Int) {
            for _ in 0..<count {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
            }
            steps &+= UInt64(count)
        }
    }
}
