import Testing

@testable import UserSwapBench
@testable import UserSwapCLI

extension CLI {
    @Suite("Latency histogram")
    struct LatencyHistogramTests {
        /// Relative error of `value` against `exact`.
        func relativeError(_ value: UInt64, _ exact: UInt64) -> Double {
            abs(Double(value) - Double(exact)) / Double(exact)
        }

        @Test("values below 64 ns are counted exactly")
        func smallValuesExact() {
            for value in UInt64(0)..<64 {
                #expect(LatencyHistogram.bucket(of: value) == Int(value))
            }
            var histogram = LatencyHistogram()
            for value in UInt64(1)...10 { histogram.record(value) }
            #expect(histogram.value(atQuantile: 0.5) == 5)
            #expect(histogram.value(atQuantile: 0.9) == 9)
        }

        @Test("every value falls in a bucket at most 1/64 of it wide, from ns to minutes")
        func bucketPrecision() {
            var value: UInt64 = 1
            var checked = 0
            while value < (1 << 40) {
                for candidate in [value, value + 1, value * 3 / 2, value * 2 - 1] {
                    let bucket = LatencyHistogram.bucket(of: candidate)
                    let (lower, width) = LatencyHistogram.range(ofBucket: bucket)
                    #expect(lower <= candidate && candidate < lower + width)
                    #expect(Double(width) <= max(1, Double(candidate) / 64))
                    checked += 1
                }
                value *= 2
            }
            #expect(checked == 160)
            #expect(LatencyHistogram.bucket(of: .max) == LatencyHistogram.bucketCount - 1)
        }

        @Test("percentiles of 1…100 000 ns are within 1 %; max and mean are exact")
        func uniformDistribution() {
            var histogram = LatencyHistogram()
            for value in UInt64(1)...100_000 { histogram.record(value) }
            #expect(histogram.count == 100_000)
            #expect(relativeError(histogram.value(atQuantile: 0.5), 50_000) < 0.01)
            #expect(relativeError(histogram.value(atQuantile: 0.99), 99_000) < 0.01)
            #expect(relativeError(histogram.value(atQuantile: 0.999), 99_900) < 0.01)
            #expect(histogram.value(atQuantile: 1) == 100_000)
            #expect(histogram.maximum == 100_000)
            #expect(histogram.minimum == 1)
            #expect(histogram.mean == 50_000.5)
            let summary = histogram.summary
            #expect(abs(summary.p50 - 50) < 0.5)
            #expect(summary.max == 100)
            #expect(summary.count == 100_000)
        }

        @Test("a tail of 1 % slow operations shows at p99.9 and not at p99")
        func bimodalDistribution() {
            var histogram = LatencyHistogram()
            histogram.record(1_000, times: 990)
            for _ in 0..<10 { histogram.record(1_000_000) }
            #expect(relativeError(histogram.value(atQuantile: 0.5), 1_000) < 0.01)
            #expect(relativeError(histogram.value(atQuantile: 0.99), 1_000) < 0.01)
            #expect(relativeError(histogram.value(atQuantile: 0.999), 1_000_000) < 0.01)
            #expect(histogram.maximum == 1_000_000)
            let expectedMean: Double = (990 * 1_000 + 10 * 1_000_000) / 1_000
            #expect(histogram.mean == expectedMean)
        }

        @Test("merging per-thread histograms equals recording everything in one")
        func merge() {
            var whole = LatencyHistogram()
            var even = LatencyHistogram()
            var odd = LatencyHistogram()
            var seed: UInt64 = 0x1234_5678
            for index in 0..<10_000 {
                seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let value = (seed >> 40) % 5_000_000
                whole.record(value)
                if index % 2 == 0 { even.record(value) } else { odd.record(value) }
            }
            #expect(LatencyHistogram.merged([even, odd]) == whole, "seed 0x12345678")
        }

        @Test("an empty histogram reports zeros")
        func empty() {
            let histogram = LatencyHistogram()
            #expect(histogram.value(atQuantile: 0.99) == 0)
            #expect(histogram.mean == 0)
            #expect(histogram.summary == LatencySummary(p50: 0, p99: 0, p999: 0, max: 0))
        }

        @Test("values past the last bucket keep an exact maximum")
        func clamped() {
            var histogram = LatencyHistogram()
            histogram.record(1 << 50)
            #expect(histogram.maximum == 1 << 50)
            #expect(histogram.value(atQuantile: 0.5) == 1 << 50)
        }
    }
}
