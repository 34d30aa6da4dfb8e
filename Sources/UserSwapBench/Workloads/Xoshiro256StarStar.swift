import UserSwap

/// xoshiro256** (Blackman and Vigna, 2018): the workloads' generator. Four words of state, a
/// handful of shifts, rotates and one multiply per number (~1 ns), a period of 2^256 − 1, and
/// no weakness a workload could notice. One per thread, seeded from the run's seed and the
/// thread's number, so a seeded run draws the same sequence on every thread every time.
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// Seeds the four words from SplitMix64, which never yields four zeros in a row: the one
    /// state xoshiro must avoid.
    public init(seed: UInt64) {
        var seeder = SplitMix64(seed: seed)
        s0 = seeder.next()
        s1 = seeder.next()
        s2 = seeder.next()
        s3 = seeder.next()
    }

    /// The generator of thread `thread` in a run seeded with `seed`: independent streams,
    /// because SplitMix64 scatters neighbouring seeds far apart.
    public init(seed: UInt64, thread: Int) {
        self.init(seed: SplitMix64.mix(seed ^ (UInt64(truncatingIfNeeded: thread) &* SplitMix64.increment)))
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = rotate(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotate(s3, 45)
        return result
    }

    /// A double uniform in [0, 1): the top 53 bits, scaled.
    @inline(__always)
    public mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// An integer uniform in `0..<bound` (Lemire's multiply-shift with rejection: no division
    /// on the common path, no modulo bias).
    @inline(__always)
    public mutating func next(below bound: Int) -> Int {
        require(bound > 0, "a bound must be positive")
        return Int(truncatingIfNeeded: next(upperBound: UInt64(bound)))
    }

    @inline(__always)
    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 - k))
    }
}
