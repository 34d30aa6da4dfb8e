import Testing
import UserSwapCompression

@testable import UserSwap
@testable import UserSwapBench
@testable import UserSwapCLI

/// The untimed parts of `bench tiers`: its page contents, and what they compress to.
@Suite("Tiers scenario")
struct TiersScenarioTests {
    @Test("every kind of page data checks its own page and version, and nothing else", arguments: TierData.allCases)
    func pagesCheck(data: TierData) throws {
        let source = TierPageSource(data, seed: 42)
        withPageBuffer { page in
            for p in [1, 2, 3, 4, 257, 1000] {
                source.fill(page, page: p, version: 3)
                #expect(source.matches(UnsafeRawBufferPointer(page), page: p, version: 3))
                if data.kind(ofPage: p) != .zero {
                    #expect(!source.matches(UnsafeRawBufferPointer(page), page: p + 4, version: 3), "page \(p) passed for page \(p + 4)")
                    #expect(!source.matches(UnsafeRawBufferPointer(page), page: p, version: 2), "version 3 passed for 2")
                }
            }
        }
    }

    @Test("text compresses like real prose, integers better, floats, random and the workload pattern not at all")
    func ratios() throws {
        func ratio(_ data: TierData, _ codec: CompressionCodec) throws -> (ratio: Double?, rejects: Int) {
            let tier = try CompressedTier(lower: MemoryBackend(pageCount: 1 + 64), poolBytes: 1 << 30, codec: codec)
            let source = TierPageSource(data, seed: 7)
            try withPageBuffer { page in
                for p in 1...64 {
                    source.fill(page, page: p, version: 1)
                    try tier.write(UnsafeRawBufferPointer(page), atPage: p)
                }
            }
            let s = tier.statistics
            return (s.cumulativeCompressionRatio, s.rejects)
        }
        let text = try ratio(.text, .lz4)
        let textRatio = try #require(text.ratio)
        #expect(text.rejects <= 4 && (1.3...1.7).contains(textRatio), "text at \(textRatio), \(text.rejects) rejects")
        let textZstd = try #require(try ratio(.text, .zstd).ratio)
        #expect((1.9...2.6).contains(textZstd), "text with zstd at \(textZstd)")
        let numeric = try #require(try ratio(.numeric, .lz4).ratio)
        #expect(numeric > 1.6, "integers at \(numeric)")
        for data in [TierData.floats, .random, .pattern] {
            #expect(try ratio(data, .lz4).rejects == 64, "\(data) was not rejected")
        }
    }

    @Test("codec names parse as they print")
    func codecNames() {
        for codec in [CompressionCodec.lz4, .zstd(level: 1), .zstd(level: 19)] {
            #expect(CompressionCodec(codec.description) == codec)
        }
        #expect(CompressionCodec("zstd") == .zstd(level: 1))
        #expect(CompressionCodec("zstd-0") == nil && CompressionCodec("zstd-20") == nil && CompressionCodec("gzip") == nil)
    }
}
