import CUserSwap
import UserSwap

/// The times of N iterations of a fixed job, after warm-up: min, median and p90, as the house
/// style asks for jobs that are timed whole rather than per operation.
public struct IterationTimings: Sendable, Equatable {
    /// Seconds per iteration, in the order they ran.
    public let samples: [Double]

    public init(samples: [Double]) {
        require(!samples.isEmpty, "timings need at least one iteration")
        self.samples = samples
    }

    public var min: Double { samples.min()! }

    /// The middle sample (the mean of the two middle ones for an even count).
    public var median: Double {
        let sorted = samples.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// Nearest rank: the smallest sample with at least 90 % of the samples at or below it.
    public var p90: Double {
        let sorted = samples.sorted()
        let rank = Int((0.9 * Double(sorted.count)).rounded(.up))
        return sorted[Swift.max(rank, 1) - 1]
    }

    /// `{"iterations": 5, "min_s": …, "median_s": …, "p90_s": …}`, for a report's extras.
    public var json: JSONValue {
        ["iterations": JSONValue(samples.count), "min_s": .double(min), "median_s": .double(median), "p90_s": .double(p90)]
    }

    /// "5 iterations: min 1.2 ms, median 1.3 ms, p90 1.5 ms".
    public var text: String {
        "\(samples.count) iterations: min \(LatencySummary.format(min * 1e6)), median \(LatencySummary.format(median * 1e6)), p90 \(LatencySummary.format(p90 * 1e6))"
    }

    /// Runs `body` `warmup` times untimed, then `iterations` times timed.
    public static func measure(
        warmup: Int, iterations: Int, progress: ProgressReporter? = nil, _ body: () throws -> Void
    ) rethrows -> IterationTimings {
        require(warmup >= 0 && iterations >= 1, "at least one timed iteration")
        for _ in 0..<warmup { try body() }
        var samples: [Double] = []
        samples.reserveCapacity(iterations)
        for index in 0..<iterations {
            let start = cus_monotonic_ns()
            try body()
            samples.append(Double(cus_monotonic_ns() &- start) / 1e9)
            progress?.update(Double(index + 1) / Double(iterations))
        }
        progress?.finish()
        return IterationTimings(samples: samples)
    }
}

extension BenchHarness {
    /// Warm-up then timed iterations of a fixed job, on the calling thread: `--warmup` (default
    /// `warmup`) untimed runs of `body`, then `--iterations` (default `iterations`) timed ones.
    public func measure(
        _ label: String, warmup: Int = 1, iterations: Int = 5, _ body: () throws -> Void
    ) rethrows -> IterationTimings {
        try IterationTimings.measure(
            warmup: options.warmup ?? warmup,
            iterations: options.iterations ?? iterations,
            progress: progress(label),
            body
        )
    }
}
