/// How long program threads waited in the faults of transparent regions: each fault's wait is
/// the wall time from its arrival at the engine (a handler thread reading it from the
/// userfaultfd, or the faulting thread entering its SIGBUS handler) to the wake of the faulting
/// thread (the handler's wake, or the return from the signal handler), on `CLOCK_MONOTONIC`.
/// The time a fault spends queued in the kernel before a handler thread reads it is not seen.
///
/// A snapshot of `SwapStatistics.faultWaitTimes`: the count and the sum are exact once the
/// counted faults have finished; the distribution is a histogram of four buckets per power of
/// two (a bucket spans 25 % of its lower bound at most), so a percentile is known within 25 %.
public struct FaultWaitTimes: Equatable, Sendable {
    /// Faults timed.
    public var count: Int
    /// The sum of their waits, in nanoseconds.
    public var nanoseconds: Int
    /// Faults per bucket (`bucketCount` of them; see `bucket(of:)`).
    public var buckets: [Int]

    /// Buckets 0…3 hold 0…3 ns exactly; from there, four per power of two up to 2⁶⁴ ns.
    public static let bucketCount = 252

    /// No fault.
    public static let zero = FaultWaitTimes(count: 0, nanoseconds: 0, buckets: Array(repeating: 0, count: bucketCount))

    /// A snapshot of `count` faults that waited `nanoseconds` in all, `buckets` their histogram
    /// (`bucketCount` counts, or it traps).
    public init(count: Int, nanoseconds: Int, buckets: [Int]) {
        require(buckets.count == Self.bucketCount, "a fault wait histogram has \(Self.bucketCount) buckets")
        self.count = count
        self.nanoseconds = nanoseconds
        self.buckets = buckets
    }

    /// The mean wait in nanoseconds; 0 without faults.
    public var meanNanoseconds: Double { count == 0 ? 0 : Double(nanoseconds) / Double(count) }

    /// The wait that `quantile` (0…1) of the faults did not exceed, in nanoseconds: the upper
    /// end of the bucket where that fault falls (so at most 25 % above the true value); 0
    /// without faults.
    public func percentileNanoseconds(_ quantile: Double) -> Int {
        require((0...1).contains(quantile), "a quantile is from 0 to 1")
        let total = buckets.reduce(0, +)
        guard total > 0 else { return 0 }
        let rank = max(1, Int((quantile * Double(total)).rounded(.up)))
        var seen = 0
        for (index, n) in buckets.enumerated() {
            seen += n
            if seen >= rank { return Self.upperBound(ofBucket: index) }
        }
        return Self.upperBound(ofBucket: Self.bucketCount - 1)
    }

    /// The waits of `self` that `earlier` had not seen: the faults between two snapshots.
    public func subtracting(_ earlier: FaultWaitTimes) -> FaultWaitTimes {
        FaultWaitTimes(
            count: count - earlier.count, nanoseconds: nanoseconds - earlier.nanoseconds,
            buckets: zip(buckets, earlier.buckets).map { $0 - $1 })
    }

    /// The bucket of a wait of `nanoseconds`: the value itself below 4; else, with `e` the
    /// position of its highest set bit, `4 × (e − 1)` plus the two bits below that bit.
    @inline(__always)
    static func bucket(of nanoseconds: UInt64) -> Int {
        guard nanoseconds >= 4 else { return Int(nanoseconds) }
        let e = 63 - nanoseconds.leadingZeroBitCount
        return 4 * (e - 1) + Int((nanoseconds >> UInt64(e - 2)) & 3)
    }

    /// The smallest wait past bucket `index` (saturated at `Int.max`).
    static func upperBound(ofBucket index: Int) -> Int {
        guard index >= 4 else { return index + 1 }
        let e = index / 4 + 1
        let (value, overflow) = UInt64(5 + index % 4).multipliedReportingOverflow(by: 1 << UInt64(e - 2))
        return overflow || value > UInt64(Int.max) ? Int.max : Int(value)
    }
}
