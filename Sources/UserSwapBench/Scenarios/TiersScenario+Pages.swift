import CUserSwap
import UserSwap
import UserSwapCompression
import UserSwapEncryption

/// Part 1 of `bench tiers`: the tiers on their own, one thread, over a memory device, so that
/// only compression and encryption are measured.
enum TierPageBench {
    struct Result {
        /// Per kind of data and codec: ratio, share kept, µs per page each way.
        var pages: JSONValue
        /// Seal and open cost per page, against the memory device alone.
        var encryption: JSONValue
        /// The pool's real memory per page against what it is charged.
        var pool: JSONValue
        var verified: Bool
    }

    static let kinds: [TierData] = [.text, .numeric, .floats, .random, .zero, .pattern]
    static let codecs: [CompressionCodec] = [.lz4, .zstd(level: 1)]

    static func run(samplePages: Int, seed: UInt64, harness: BenchHarness) throws -> Result {
        let count = samplePages
        let progress = harness.progress("pages")
        var rows: [JSONValue] = []
        var verified = true
        let footprint = try poolFootprint(count: count, seed: seed)
        harness.log("pool footprint (text, lz4): \(Int(footprint.resident)) bytes resident per page for \(Int(footprint.charged)) charged")
        let steps = Double(kinds.count * codecs.count + 1)
        var step = 0.0
        for kind in kinds {
            let source = TierPageSource(kind, seed: seed)
            let pages = PageBuffer(count: count)
            for i in 0..<count { source.fill(pages.page(i), page: 1 + i, version: 1) }
            for codec in codecs {
                let tier = try CompressedTier(lower: MemoryBackend(pageCount: 1 + count), poolBytes: Int.max / 2, codec: codec)
                let out = PageBuffer(count: count)
                // A first pass fills the pool (and touches the memory below); the second,
                // timed, replaces every entry: the steady state of a running pool.
                for i in 0..<count { try tier.write(UnsafeRawBufferPointer(pages.page(i)), atPage: 1 + i) }
                let before = tier.statistics
                let store = try time(count) { i throws(SwapError) in try tier.write(UnsafeRawBufferPointer(pages.page(i)), atPage: 1 + i) }
                var s = tier.statistics
                s.stores -= before.stores
                s.rejects -= before.rejects
                s.sameFilledStores -= before.sameFilledStores
                s.compressedBytesIn -= before.compressedBytesIn
                s.compressedBytesOut -= before.compressedBytesOut
                // Exclusive loads, each page once, into pages already touched; checked after.
                let load = try time(count) { i throws(SwapError) in _ = try tier.readConsuming(into: out.page(i), atPage: 1 + i) }
                var wrong = 0
                for i in 0..<count where !source.matches(UnsafeRawBufferPointer(out.page(i)), page: 1 + i, version: 1) { wrong += 1 }
                verified = verified && wrong == 0 && tier.statistics.storedPages == 0
                // Bytes the pages take below the tier's caller: compressed bytes for pages kept,
                // a whole page for each reject, nothing for same-filled pages.
                let footprint = s.compressedBytesOut + s.rejects * SwapPage.size
                rows.append([
                    "data": .string(kind.rawValue), "codec": .string(codec.description), "pages": JSONValue(count),
                    "compression_ratio": s.cumulativeCompressionRatio.map { JSONValue($0) } ?? .null,
                    "ratio_all_pages": footprint > 0 ? JSONValue(Double(count * SwapPage.size) / Double(footprint)) : .null,
                    "kept_share": JSONValue(Double(s.stores) / Double(count)),
                    "same_filled": JSONValue(s.sameFilledStores), "rejects": JSONValue(s.rejects),
                    "store_us_per_page": JSONValue(store), "load_us_per_page": JSONValue(load),
                    "store_mb_s": JSONValue(megabytesPerSecond(store)), "load_mb_s": JSONValue(megabytesPerSecond(load)),
                    "charged_bytes_per_page": JSONValue(Double(before.poolBytes) / Double(count)),
                    "verified": .bool(wrong == 0),
                ])
                let ratioText = footprint > 0 ? LatencySummary.trimmed(Double(count * SwapPage.size) / Double(footprint)) : "∞"
                harness.log(
                    "\(kind.rawValue) \(codec): ratio \(ratioText) over all pages, \(s.stores) kept / \(s.rejects) rejected, store \(LatencySummary.trimmed(store)) µs, load \(LatencySummary.trimmed(load)) µs per page; pool charged \(before.poolBytes / count) B per page"
                )
                step += 1
                progress.update(step / steps)
            }
        }

        // Encryption against the memory device alone.
        let source = TierPageSource(.text, seed: seed)
        let pages = PageBuffer(count: count)
        for i in 0..<count { source.fill(pages.page(i), page: 1 + i, version: 1) }
        let out = PageBuffer(count: count)
        let memory = MemoryBackend(pageCount: 1 + count)
        let encrypted = try EncryptedTier(lower: MemoryBackend(pageCount: 1 + count))
        // Each write timed on its second pass (memory below already touched).
        for i in 0..<count { try memory.write(UnsafeRawBufferPointer(pages.page(i)), atPage: 1 + i) }
        let memoryWrite = try time(count) { i throws(SwapError) in try memory.write(UnsafeRawBufferPointer(pages.page(i)), atPage: 1 + i) }
        let memoryRead = try time(count) { i throws(SwapError) in try memory.read(into: out.page(i), atPage: 1 + i) }
        for i in 0..<count { try encrypted.write(UnsafeRawBufferPointer(pages.page(i)), atPage: 1 + i) }
        let seal = try time(count) { i throws(SwapError) in try encrypted.write(UnsafeRawBufferPointer(pages.page(i)), atPage: 1 + i) }
        let open = try time(count) { i throws(SwapError) in try encrypted.read(into: out.page(i), atPage: 1 + i) }
        var wrong = 0
        for i in 0..<count where !source.matches(UnsafeRawBufferPointer(out.page(i)), page: 1 + i, version: 1) { wrong += 1 }
        verified = verified && wrong == 0
        progress.finish(detail: "done")
        harness.log(
            "encryption: seal \(LatencySummary.trimmed(seal)) µs, open \(LatencySummary.trimmed(open)) µs per page (memory device alone: write \(LatencySummary.trimmed(memoryWrite)) µs, read \(LatencySummary.trimmed(memoryRead)) µs)"
        )
        let encryption: JSONValue = [
            "cipher": "XChaCha20-Poly1305 (libsodium), one page per seal",
            "seal_us_per_page": JSONValue(seal), "open_us_per_page": JSONValue(open),
            "memory_write_us_per_page": JSONValue(memoryWrite), "memory_read_us_per_page": JSONValue(memoryRead),
            "seal_cost_us_per_page": JSONValue(seal - memoryWrite), "open_cost_us_per_page": JSONValue(open - memoryRead),
            "seal_mb_s": JSONValue(megabytesPerSecond(seal)), "open_mb_s": JSONValue(megabytesPerSecond(open)),
            "side_table_bytes_per_page": JSONValue(EncryptedTier.bytesPerPage),
            "verified": .bool(wrong == 0),
        ]
        let pool: JSONValue = [
            "data": "text", "codec": "lz4", "pages": JSONValue(count),
            "resident_bytes_per_page": JSONValue(footprint.resident),
            "charged_bytes_per_page": JSONValue(footprint.charged),
            "entry_overhead_charged": JSONValue(CompressedTier.entryOverhead),
        ]
        return Result(pages: .array(rows), encryption: encryption, pool: pool, verified: verified)
    }

    /// What a pool of `count` text pages really takes, measured as the growth of the resident
    /// set while it fills, against what it is charged. Run first, on a heap that nothing freed
    /// yet, so that the growth is the pool's own memory and not reused blocks.
    static func poolFootprint(count: Int, seed: UInt64) throws -> (resident: Double, charged: Double) {
        let source = TierPageSource(.text, seed: seed)
        let page = PageBuffer(count: 1)
        let tier = try CompressedTier(lower: MemoryBackend(pageCount: 1 + count), poolBytes: Int.max / 2)
        let before = ResidentMemory.currentBytes()
        for i in 0..<count {
            source.fill(page.page(0), page: 1 + i, version: 1)
            try tier.write(UnsafeRawBufferPointer(page.page(0)), atPage: 1 + i)
        }
        let grown = Double(ResidentMemory.currentBytes() - before)
        return (grown / Double(count), Double(tier.statistics.poolBytes) / Double(count))
    }

    /// Calls `body(i)` for i in 0..<count and returns the mean µs per call. Callers make sure
    /// the memory involved was touched before (a first-touch page fault costs several µs on
    /// this kind of machine, more than a compression).
    static func time(_ count: Int, _ body: (Int) throws(SwapError) -> Void) throws(SwapError) -> Double {
        let start = cus_monotonic_ns()
        for i in 0..<count { try body(i) }
        return Double(cus_monotonic_ns() &- start) / 1000 / Double(count)
    }

    static func megabytesPerSecond(_ microsecondsPerPage: Double) -> Double {
        microsecondsPerPage > 0 ? Double(SwapPage.size) / microsecondsPerPage : 0
    }
}

/// `count` page-aligned pages for the page benchmarks, freed when it goes.
final class PageBuffer {
    let bytes: UnsafeMutableRawBufferPointer

    init(count: Int) {
        bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: count * SwapPage.size, alignment: SwapPage.size)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit { bytes.deallocate() }

    func page(_ index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: bytes[index * SwapPage.size..<(index + 1) * SwapPage.size])
    }
}
