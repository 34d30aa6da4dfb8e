import UserSwap

/// A latency histogram with log-linear buckets (HdrHistogram's layout): values below 64 ns are
/// counted exactly; above, each power of two is split into 64 equal buckets, so a bucket is at
/// most 1/64 (1.6 %) of its values wide and the reported midpoint is within 0.8 % of any value
/// in it, from nanoseconds to 2^40 ns (18 minutes; longer values land in the last bucket, and
/// `maximum` stays exact).
///
/// The storage is one array of `bucketCount` counters allocated by `init`; `record` only
/// increments a counter, so it never allocates as long as the histogram is not shared
/// (copy-on-write). Keep one histogram per thread and `merge` them after the threads end.
public struct LatencyHistogram: Sendable, Equatable {
    /// Sub-buckets per power of two, as a shift: 2^6 = 64.
    static let subBucketBits = 6
    static let subBucketCount = 1 << subBucketBits
    /// Values at or above 2^maxExponent ns are clamped into the last bucket.
    static let maxExponent = 40
    /// 64 exact buckets, then 64 per power of two from 2^6 to 2^39.
    public static let bucketCount = subBucketCount + (maxExponent - subBucketBits) * subBucketCount

    private var counts: [UInt64]
    /// Recorded values.
    public private(set) var count: UInt64 = 0
    /// Sum of recorded values in nanoseconds (for the mean), exact.
    public private(set) var sum: UInt64 = 0
    /// The smallest recorded value (ns), exact; `UInt64.max` while empty.
    public private(set) var minimum: UInt64 = .max
    /// The largest recorded value (ns), exact; 0 while empty.
    public private(set) var maximum: UInt64 = 0

    public init() {
        counts = Array(repeating: 0, count: Self.bucketCount)
    }

    /// The bucket that counts `value`.
    @inline(__always)
    static func bucket(of value: UInt64) -> Int {
        if value < UInt64(subBucketCount) { return Int(value) }
        let exponent = 63 - value.leadingZeroBitCount  // ≥ subBucketBits here
        if exponent >= maxExponent { return bucketCount - 1 }
        let shift = exponent - subBucketBits
        let sub = Int(truncatingIfNeeded: (value >> UInt64(shift)) & UInt64(subBucketCount - 1))
        return subBucketCount + shift * subBucketCount + sub
    }

    /// The values bucket `index` counts: `lower ..< lower + width`.
    static func range(ofBucket index: Int) -> (lower: UInt64, width: UInt64) {
        if index < subBucketCount { return (UInt64(index), 1) }
        let shift = (index - subBucketCount) / subBucketCount
        let sub = (index - subBucketCount) % subBucketCount
        return (UInt64(subBucketCount + sub) << UInt64(shift), 1 << UInt64(shift))
    }

    /// Counts one value, in nanoseconds. No allocation, no locking: one thread per histogram.
    @inline(__always)
    public mutating func record(_ nanoseconds: UInt64) {
        counts[Self.bucket(of: nanoseconds)] &+= 1
        count &+= 1
        sum &+= nanoseconds
        if nanoseconds < minimum { minimum = nanoseconds }
        if nanoseconds > maximum { maximum = nanoseconds }
    }

    /// Counts `times` occurrences of one value (a batch timed as a whole, per operation).
    public mutating func record(_ nanoseconds: UInt64, times: UInt64) {
        guard times > 0 else { return }
        counts[Self.bucket(of: nanoseconds)] &+= times
        count &+= times
        sum &+= nanoseconds &* times
        minimum = Swift.min(minimum, nanoseconds)
        maximum = Swift.max(maximum, nanoseconds)
    }

    /// Adds another thread's histogram to this one.
    public mutating func merge(_ other: LatencyHistogram) {
        for index in 0..<Self.bucketCount where other.counts[index] != 0 {
            counts[index] &+= other.counts[index]
        }
        count &+= other.count
        sum &+= other.sum
        minimum = Swift.min(minimum, other.minimum)
        maximum = Swift.max(maximum, other.maximum)
    }

    /// The histograms of several threads, merged.
    public static func merged(_ histograms: some Sequence<LatencyHistogram>) -> LatencyHistogram {
        var result = LatencyHistogram()
        for histogram in histograms { result.merge(histogram) }
        return result
    }

    /// The value (ns) below or at which a fraction `quantile` (0…1) of the recorded values lie:
    /// the midpoint of the bucket that holds the value of rank ⌈quantile × count⌉, clamped to the
    /// exact minimum and maximum. `value(atQuantile: 1)` is the exact maximum; 0 when empty.
    public func value(atQuantile quantile: Double) -> UInt64 {
        require((0...1).contains(quantile), "a quantile is between 0 and 1")
        guard count > 0 else { return 0 }
        if quantile >= 1 { return maximum }
        let rank = Swift.max(1, UInt64((quantile * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for index in 0..<Self.bucketCount {
            seen &+= counts[index]
            if seen >= rank {
                let (lower, width) = Self.range(ofBucket: index)
                let midpoint = lower + (width - 1) / 2
                return Swift.min(Swift.max(midpoint, minimum), maximum)
            }
        }
        return maximum
    }

    /// The distribution as `[[quantile, µs], …]` at quantiles spread evenly up to 0.9 and then
    /// along the nines (0.99, 0.999, …) to 1, for a CDF plot: the `latency_cdf` extra that
    /// `BenchHarness.report` adds. Empty when nothing was recorded.
    public var cdf: JSONValue {
        guard count > 0 else { return [] }
        var quantiles = (0...18).map { Double($0) / 20 }
        quantiles += [0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999, 0.99999, 1]
        return .array(
            quantiles.map { quantile in
                [.double(quantile), .double(Self.microseconds(value(atQuantile: quantile)))]
            })
    }

    /// The mean in nanoseconds; 0 when empty.
    public var mean: Double { count == 0 ? 0 : Double(sum) / Double(count) }

    /// p50, p99, p99.9, max and mean in microseconds, as the JSON contract wants them.
    public var summary: LatencySummary {
        LatencySummary(
            p50: Self.microseconds(value(atQuantile: 0.50)),
            p99: Self.microseconds(value(atQuantile: 0.99)),
            p999: Self.microseconds(value(atQuantile: 0.999)),
            max: Self.microseconds(maximum),
            mean: mean.rounded() / 1000,
            count: count
        )
    }

    /// ns → µs, kept to whole nanoseconds so the JSON stays readable.
    static func microseconds(_ nanoseconds: UInt64) -> Double { Double(nanoseconds) / 1000 }
}

/// A latency distribution in microseconds: the `latency_us` object of the JSON contract (`p50`,
/// `p99`, `p999`, `max`), plus `mean` and the number of samples.
public struct LatencySummary: Sendable, Equatable, Encodable {
    public var p50: Double
    public var p99: Double
    public var p999: Double
    public var max: Double
    public var mean: Double
    public var count: UInt64

    public init(p50: Double, p99: Double, p999: Double, max: Double, mean: Double = 0, count: UInt64 = 0) {
        self.p50 = p50
        self.p99 = p99
        self.p999 = p999
        self.max = max
        self.mean = mean
        self.count = count
    }

    /// No samples: every field zero.
    public static let empty = LatencySummary(p50: 0, p99: 0, p999: 0, max: 0)

    /// "p50 1.1 µs, p99 8 µs, p99.9 40.2 µs, max 950 µs".
    public var text: String {
        "p50 \(Self.format(p50)), p99 \(Self.format(p99)), p99.9 \(Self.format(p999)), max \(Self.format(max))"
    }

    static func format(_ microseconds: Double) -> String {
        if microseconds >= 1_000_000 { return "\(trimmed(microseconds / 1_000_000)) s" }
        if microseconds >= 1000 { return "\(trimmed(microseconds / 1000)) ms" }
        return "\(trimmed(microseconds)) µs"
    }

    /// Three significant digits, no trailing zeros.
    package static func trimmed(_ value: Double) -> String {
        let digits = value >= 100 ? 0 : value >= 10 ? 1 : 2
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        return rounded == rounded.rounded() ? String(Int64(rounded)) : String(rounded)
    }
}
