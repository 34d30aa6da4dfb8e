import Foundation
import UserSwap

/// Draws ranks 0..<n with Zipf's law: P(rank k) ∝ 1 / (k + 1)^θ. θ = 0.99 is YCSB's default and
/// a fair model of how hot a few keys of a cache are.
///
/// The method is Gray et al.'s ("Quickly generating billion-record synthetic databases",
/// SIGMOD 1994), as YCSB's `ZipfianGenerator` uses it: ζ(n, θ) = Σ 1/i^θ is summed once when the
/// sampler is made (O(n), ~1 ms per million ranks); a sample is then one uniform number and one
/// `pow`, with no rejection loop. Ranks 0 and 1 are exact (rank 0 has probability exactly
/// 1/ζ(n, θ), rank 1 exactly 2^-θ/ζ(n, θ)); beyond them the method inverts a continuous
/// approximation of the tail, close enough for a workload (and what every YCSB result uses).
///
/// `page(using:)` scrambles ranks into pages with `AffinePermutation`, so the hottest pages lie
/// spread over the whole region instead of packed at its start, where they would share the
/// reclaim batches, the page-table locks and the swap clusters.
public struct ZipfSampler: Sendable {
    /// Ranks: 0..<count.
    public let count: Int
    /// The skew, 0 < θ < 1.
    public let theta: Double
    /// ζ(count, θ).
    public let zetaN: Double
    private let alpha: Double
    private let eta: Double
    /// 1 + 2^-θ: below it (after scaling by ζ) a sample is rank 1.
    private let rankOneLimit: Double
    /// Rank → page.
    public let scramble: AffinePermutation

    /// A sampler over `count` ranks. `seed` chooses the scrambling.
    public init(count: Int, theta: Double = 0.99, seed: UInt64 = 0) {
        require(count >= 2, "a Zipf sampler needs at least two ranks")
        require(theta > 0 && theta < 1, "Gray's method needs 0 < θ < 1 (θ = 1 divides by zero)")
        self.count = count
        self.theta = theta
        zetaN = Self.zeta(count, theta: theta)
        let zeta2 = Self.zeta(2, theta: theta)
        alpha = 1 / (1 - theta)
        eta = (1 - pow(2 / Double(count), 1 - theta)) / (1 - zeta2 / zetaN)
        rankOneLimit = 1 + pow(0.5, theta)
        scramble = AffinePermutation(count: count, seed: seed)
    }

    /// ζ(n, θ) = Σ_{i=1…n} 1/i^θ, summed from the small terms up so the rounding stays small.
    public static func zeta(_ n: Int, theta: Double) -> Double {
        var sum = 0.0
        var i = n
        while i >= 1 {
            sum += 1 / pow(Double(i), theta)
            i -= 1
        }
        return sum
    }

    /// The exact probability of `rank` under the law (what the sampler approximates).
    public func probability(ofRank rank: Int) -> Double {
        require(rank >= 0 && rank < count, "rank \(rank) outside 0..<\(count)")
        return 1 / pow(Double(rank + 1), theta) / zetaN
    }

    /// A rank in 0..<count; 0 is the most frequent.
    @inline(__always)
    public func rank(using random: inout Xoshiro256StarStar) -> Int {
        let u = random.nextUnit()
        let uz = u * zetaN
        if uz < 1 { return 0 }
        if uz < rankOneLimit { return 1 }
        let rank = Int(Double(count) * pow(eta * u - eta + 1, alpha))
        return min(rank, count - 1)
    }

    /// A page: a rank, scrambled.
    @inline(__always)
    public func page(using random: inout Xoshiro256StarStar) -> Int {
        scramble.apply(rank(using: &random))
    }
}

/// A permutation of 0..<count that is cheap to apply and needs no table: x ↦ (a·x + b) mod count,
/// with `a` coprime to `count` (so it is a bijection). `a` is chosen near count × 0.618 (the
/// golden ratio's fraction), which sends consecutive ranks far apart and keeps the next few
/// apart from each other too (the three-distance theorem); `b` comes from the seed.
public struct AffinePermutation: Sendable, Equatable {
    public let count: Int
    public let multiplier: Int
    public let offset: Int

    public init(count: Int, seed: UInt64) {
        require(count >= 1 && count <= 1 << 31, "a permutation of at most 2^31 pages (a·x must fit in 63 bits)")
        self.count = count
        var a = max(1, Int(Double(count) * 0.6180339887498949)) | 1
        while Self.gcd(a, count) != 1 { a += 2 }
        multiplier = a % count == 0 ? 1 : a % count
        offset = Int(truncatingIfNeeded: SplitMix64.mix(seed) % UInt64(count))
    }

    @inline(__always)
    public func apply(_ x: Int) -> Int {
        (multiplier &* x &+ offset) % count
    }

    static func gcd(_ a: Int, _ b: Int) -> Int {
        var (a, b) = (a, b)
        while b != 0 { (a, b) = (b, a % b) }
        return a
    }
}
