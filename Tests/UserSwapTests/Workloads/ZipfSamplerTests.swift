import Foundation
import Testing

@testable import UserSwapBench
@testable import UserSwapCLI

extension Workloads {
    @Suite("Zipf sampler and generators")
    struct ZipfSamplerTests {
        static let seed: UInt64 = 20_251_127

        @Test("rank 1 and rank 2 come up as often as Zipf's law says (θ = 0.99, 10^5 samples)", arguments: [1000, 100_000])
        func headFrequencies(count: Int) {
            let sampler = ZipfSampler(count: count, theta: 0.99, seed: Self.seed)
            var random = Xoshiro256StarStar(seed: Self.seed)
            let samples = 100_000
            var hits = [0, 0]
            for _ in 0..<samples {
                let rank = sampler.rank(using: &random)
                #expect(rank >= 0 && rank < count)
                if rank < 2 { hits[rank] += 1 }
            }
            for rank in 0..<2 {
                let expected = sampler.probability(ofRank: rank)
                let observed = Double(hits[rank]) / Double(samples)
                // Five standard deviations of a binomial proportion: fails by chance once in
                // millions of seeds, and at once if the law is off by a few percent.
                let tolerance = 5 * (expected * (1 - expected) / Double(samples)).squareRoot()
                #expect(
                    abs(observed - expected) <= tolerance,
                    "rank \(rank + 1) of \(count): observed \(observed), expected \(expected) ± \(tolerance), seed \(Self.seed)")
            }
        }

        @Test("the top tenth of the ranks takes the share the law gives it, within 2 %")
        func headMass() {
            let count = 10_000
            let sampler = ZipfSampler(count: count, theta: 0.99, seed: Self.seed)
            var random = Xoshiro256StarStar(seed: Self.seed &+ 1)
            let samples = 100_000
            var head = 0
            for _ in 0..<samples where sampler.rank(using: &random) < count / 10 { head += 1 }
            let expected = ZipfSampler.zeta(count / 10, theta: 0.99) / sampler.zetaN
            let observed = Double(head) / Double(samples)
            #expect(abs(observed - expected) < 0.02, "observed \(observed), expected \(expected), seed \(Self.seed)")
        }

        @Test("ζ(n, θ) matches a direct sum")
        func zeta() {
            let direct = (1...100).reduce(0.0) { $0 + 1 / pow(Double($1), 0.99) }
            #expect(abs(ZipfSampler.zeta(100, theta: 0.99) - direct) < 1e-9)
        }

        @Test("scrambling is a permutation that spreads the hottest ranks apart", arguments: [2, 7, 4096, 65_536, 65_537])
        func permutation(count: Int) {
            let scramble = AffinePermutation(count: count, seed: Self.seed)
            var seen = [Bool](repeating: false, count: count)
            for x in 0..<count {
                let y = scramble.apply(x)
                #expect(y >= 0 && y < count)
                #expect(!seen[y], "\(y) hit twice")
                seen[y] = true
            }
            if count >= 4096 {
                // Ranks 0 and 1 (the two hottest pages) do not share a 512-page block.
                #expect(abs(scramble.apply(0) - scramble.apply(1)) >= 512)
            }
        }

        @Test("a seeded generator repeats; threads draw different streams")
        func generators() {
            var a = Xoshiro256StarStar(seed: 42, thread: 0)
            var b = Xoshiro256StarStar(seed: 42, thread: 0)
            var c = Xoshiro256StarStar(seed: 42, thread: 1)
            let first = (0..<8).map { _ in a.next() }
            #expect(first == (0..<8).map { _ in b.next() })
            #expect(first != (0..<8).map { _ in c.next() })
            for bound in [1, 3, 1000] {
                for _ in 0..<1000 { #expect((0..<bound).contains(a.next(below: bound))) }
            }
            for _ in 0..<1000 { #expect((0..<1).contains(a.nextUnit())) }
        }
    }
}
