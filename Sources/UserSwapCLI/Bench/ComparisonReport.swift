/// Two runs side by side: `{"runs": [ours, other], "ratios": {…}}` (docs/BENCH-JSON.md).
///
/// Every ratio is oriented so that bigger is better for "ours" (the swap-cache protocol, or
/// UserSwap against the kernel): throughput is ours ÷ other, latency is other ÷ ours. A ratio
/// whose denominator is zero is left out rather than written as infinity.
public struct ComparisonReport: Sendable, Equatable, Encodable {
    /// `[ours, other]`.
    public var runs: [BenchReport]
    /// `ops_per_s`, `p50`, `p99`, `p999`, `max`.
    public var ratios: [String: Double]

    public init(ours: BenchReport, other: BenchReport) {
        runs = [ours, other]
        ratios = Self.ratios(ours: ours, other: other)
    }

    /// The ratios of `ours` to `other`, bigger is better.
    public static func ratios(ours: BenchReport, other: BenchReport) -> [String: Double] {
        var ratios: [String: Double] = [:]
        func set(_ key: String, _ numerator: Double, _ denominator: Double) {
            if denominator > 0, numerator.isFinite { ratios[key] = numerator / denominator }
        }
        set("ops_per_s", ours.opsPerSecond, other.opsPerSecond)
        set("p50", other.latency.p50, ours.latency.p50)
        set("p99", other.latency.p99, ours.latency.p99)
        set("p999", other.latency.p999, ours.latency.p999)
        set("max", other.latency.max, ours.latency.max)
        return ratios
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: JSONKey.self)
        try container.encode(runs.first?.scenario ?? "", forKey: "scenario")
        try container.encode(runs, forKey: "runs")
        try container.encode(ratios, forKey: "ratios")
    }

    /// Both runs' summaries, then the ratios: "ours/other: ops/s ×1.8, p99.9 ×12.5 (bigger is better)".
    public func text() -> String {
        var lines = runs.map { $0.text() }
        let names = runs.map { $0.swapProtocol?.rawValue ?? $0.mode.rawValue }
        let order = ["ops_per_s", "p50", "p99", "p999", "max"]
        let labels = ["ops_per_s": "ops/s", "p999": "p99.9"]
        let parts = order.compactMap { key in ratios[key].map { "\(labels[key] ?? key) ×\(LatencySummary.trimmed($0))" } }
        lines.append("\(names.joined(separator: " vs ")): \(parts.joined(separator: ", ")) (bigger is better for \(names.first ?? "the first"))")
        return lines.joined(separator: "\n")
    }
}
