/// One benchmark run in the shape of docs/BENCH-JSON.md. The contract keys are fields with
/// fixed names; anything scenario-specific goes in `extras`, whose keys are written at the top
/// level beside them (`metadata_bytes_per_slot`, `results`, `pin_ns`).
///
/// `BenchHarness.report(_:)` fills the fields a timed run knows (scenario, protocol, threads,
/// ops, seconds, latency, peak RSS, machine); the scenario sets the rest.
public struct BenchReport: Sendable, Equatable, Encodable {
    /// `alloc`, `pin`, `race`, `random`, `seq`, `zipf`, `usemem`, `hashtable`, `run`.
    public var scenario: String
    public var mode: BenchMode
    /// `protocol`: absent for the kernel's swap.
    public var swapProtocol: BenchProtocol?
    public var threads: Int
    /// Accesses or operations in the timed phase.
    public var ops: Int64
    /// Length of the timed phase.
    public var seconds: Double
    /// `latency_us`.
    public var latency: LatencySummary
    /// The RAM budget (or the cgroup limit for the kernel).
    public var budgetBytes: Int64
    /// The working set.
    public var dataBytes: Int64
    /// Measured (VmHWM), not configured.
    public var peakResidentBytes: Int64
    public var swapIns: Int64
    public var swapOuts: Int64
    public var deviceReads: Int64
    public var deviceWrites: Int64
    /// Every page checked against its expected content. A scenario sets it only after checking.
    public var verified: Bool
    public var machine: MachineInfo
    /// Scenario-specific keys, written at the top level. A key that collides with a contract key
    /// is a bug in the scenario (checked in debug builds) and is not written.
    public var extras: [String: JSONValue]

    public init(
        scenario: String,
        mode: BenchMode = .explicit,
        swapProtocol: BenchProtocol? = .swapcache,
        threads: Int,
        ops: Int64,
        seconds: Double,
        latency: LatencySummary = .empty,
        budgetBytes: Int64 = 0,
        dataBytes: Int64 = 0,
        peakResidentBytes: Int64 = ResidentMemory.peakBytes(),
        swapIns: Int64 = 0,
        swapOuts: Int64 = 0,
        deviceReads: Int64 = 0,
        deviceWrites: Int64 = 0,
        verified: Bool = false,
        machine: MachineInfo,
        extras: [String: JSONValue] = [:]
    ) {
        self.scenario = scenario
        self.mode = mode
        self.swapProtocol = swapProtocol
        self.threads = threads
        self.ops = ops
        self.seconds = seconds
        self.latency = latency
        self.budgetBytes = budgetBytes
        self.dataBytes = dataBytes
        self.peakResidentBytes = peakResidentBytes
        self.swapIns = swapIns
        self.swapOuts = swapOuts
        self.deviceReads = deviceReads
        self.deviceWrites = deviceWrites
        self.verified = verified
        self.machine = machine
        self.extras = extras
    }

    /// `ops_per_s`: ops ÷ seconds (0 for an empty phase).
    public var opsPerSecond: Double { seconds > 0 ? Double(ops) / seconds : 0 }

    /// The keys every report has (`protocol` only when there is one), as docs/BENCH-JSON.md names them.
    public static let contractKeys: Set<String> = [
        "scenario", "mode", "protocol", "threads", "ops", "seconds", "ops_per_s", "latency_us",
        "budget_bytes", "data_bytes", "peak_resident_bytes", "swap_ins", "swap_outs",
        "device_reads", "device_writes", "verified", "machine",
    ]

    /// Extras that compare this run with something else (ratios and shares): written only when
    /// the run verified, since a broken run's speed compares nothing.
    static let comparisonKeys: Set<String> = ["comparison", "shares", "policy_comparison"]

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: JSONKey.self)
        try container.encode(scenario, forKey: "scenario")
        try container.encode(mode, forKey: "mode")
        try container.encodeIfPresent(swapProtocol, forKey: "protocol")
        try container.encode(threads, forKey: "threads")
        try container.encode(ops, forKey: "ops")
        try container.encode(seconds, forKey: "seconds")
        try container.encode(opsPerSecond, forKey: "ops_per_s")
        try container.encode(latency, forKey: "latency_us")
        try container.encode(budgetBytes, forKey: "budget_bytes")
        try container.encode(dataBytes, forKey: "data_bytes")
        try container.encode(peakResidentBytes, forKey: "peak_resident_bytes")
        try container.encode(swapIns, forKey: "swap_ins")
        try container.encode(swapOuts, forKey: "swap_outs")
        try container.encode(deviceReads, forKey: "device_reads")
        try container.encode(deviceWrites, forKey: "device_writes")
        try container.encode(verified, forKey: "verified")
        try container.encode(machine, forKey: "machine")
        for (key, value) in extras {
            assert(!Self.contractKeys.contains(key), "extras key '\(key)' would overwrite a contract key")
            guard !Self.contractKeys.contains(key) else { continue }
            guard verified || !Self.comparisonKeys.contains(key) else { continue }
            try container.encode(value, forKey: JSONKey(key))
        }
    }

    /// A human summary, three lines:
    /// `alloc (explicit, swapcache, 8 threads): 1.23M ops in 3 s = 411k ops/s`, the latency
    /// percentiles, and memory, swap traffic and verification.
    public func text() -> String {
        var context = [mode.rawValue]
        if let swapProtocol { context.append(swapProtocol.rawValue) }
        context.append(threads == 1 ? "1 thread" : "\(threads) threads")
        return """
            \(scenario) (\(context.joined(separator: ", "))): \(Self.count(Double(ops))) ops in \(LatencySummary.trimmed(seconds)) s = \(Self.count(opsPerSecond)) ops/s
              latency \(latency.text)
              peak RSS \(ByteSize.format(peakResidentBytes)), swap-ins \(swapIns), swap-outs \(swapOuts), device reads \(deviceReads), writes \(deviceWrites), \(verified ? "verified" : "not verified")
            """
    }

    /// 1234567 → "1.23M".
    static func count(_ value: Double) -> String {
        switch value {
        case 1e9...: "\(LatencySummary.trimmed(value / 1e9))G"
        case 1e6...: "\(LatencySummary.trimmed(value / 1e6))M"
        case 1e3...: "\(LatencySummary.trimmed(value / 1e3))k"
        default: LatencySummary.trimmed(value)
        }
    }
}

/// A coding key made from any string, for JSON objects whose keys are data.
struct JSONKey: CodingKey, ExpressibleByStringLiteral {
    let stringValue: String
    init(_ string: String) { stringValue = string }
    init(stringValue: String) { self.stringValue = stringValue }
    init(stringLiteral value: String) { stringValue = value }
    var intValue: Int? { nil }
    init?(intValue: Int) { nil }
}
