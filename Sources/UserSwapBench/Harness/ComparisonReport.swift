import UserSwap

/// Runs side by side: `{"runs": [ours, other, …], "ratios": {…}}` (docs/BENCH-JSON.md).
///
/// Every ratio is oriented so that bigger is better for "ours" (the swap-cache protocol, or
/// UserSwap against the kernel): throughput is ours ÷ other, latency is other ÷ ours. A ratio
/// whose denominator is zero is left out rather than written as infinity. `ratios` compares
/// ours with the first other run; with more than one other run (`--protocol all`),
/// `ratios_by_baseline` compares ours with each, keyed by the other run's protocol. Unless every
/// run verified its data there are no ratios at all: a broken run's speed compares nothing.
public struct ComparisonReport: Sendable, Equatable, Encodable {
    /// `[ours, other, …]`.
    public var runs: [BenchReport]
    /// `ops_per_s`, `p50`, `p99`, `p999`, `max`, of ours against the first other run.
    public var ratios: [String: Double]
    /// The same against each other run, by its name (only with more than one other run).
    public var ratiosByBaseline: [String: [String: Double]]

    public init(ours: BenchReport, other: BenchReport) {
        self.init(ours: ours, others: [other])
    }

    public init(ours: BenchReport, others: [BenchReport]) {
        require(!others.isEmpty, "a comparison needs another run")
        runs = [ours] + others
        ratios = [:]
        ratiosByBaseline = [:]
        guard verified else { return }
        ratios = Self.ratios(ours: ours, other: others[0])
        if others.count > 1 {
            for other in others { ratiosByBaseline[Self.name(other)] = Self.ratios(ours: ours, other: other) }
        }
    }

    /// Whether every run verified its data; only then are there ratios.
    public var verified: Bool { runs.allSatisfy(\.verified) }

    private static func name(_ run: BenchReport) -> String { run.swapProtocol?.rawValue ?? run.mode.rawValue }

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
        try container.encode(verified, forKey: "verified")
        if verified { try container.encode(ratios, forKey: "ratios") }
        if !ratiosByBaseline.isEmpty { try container.encode(ratiosByBaseline, forKey: "ratios_by_baseline") }
    }

    /// Every run's summary, then the ratios, one line per other run: "swapcache vs legacy:
    /// ops/s ×1.8, p99.9 ×12.5 (bigger is better for swapcache)".
    public func text() -> String {
        var lines = runs.map { $0.text() }
        let names = runs.map(Self.name)
        let order = ["ops_per_s", "p50", "p99", "p999", "max"]
        let labels = ["ops_per_s": "ops/s", "p999": "p99.9"]
        guard verified else {
            lines.append("no ratios: \(runs.filter { !$0.verified }.map(Self.name).joined(separator: ", ")) did not verify")
            return lines.joined(separator: "\n")
        }
        for (other, name) in zip(runs.dropFirst(), names.dropFirst()) {
            let r = ratiosByBaseline.isEmpty ? ratios : Self.ratios(ours: runs[0], other: other)
            let parts = order.compactMap { key in r[key].map { "\(labels[key] ?? key) ×\(LatencySummary.trimmed($0))" } }
            lines.append("\(names[0]) vs \(name): \(parts.joined(separator: ", ")) (bigger is better for \(names[0]))")
        }
        return lines.joined(separator: "\n")
    }
}
