import Glibc
import Synchronization
import Testing

@testable import UserSwap

@Suite("Signal unmap rings")
struct SignalUnmapRingTests {
    /// `pages` pages of private anonymous memory, each written (resident).
    static func touchedMapping(pages: Int) throws -> UnsafeMutableRawPointer {
        let bytes = pages * SwapPage.size
        let base = try #require(mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        try #require(base != MAP_FAILED)
        for p in 0..<pages { base.storeBytes(of: UInt64(p) + 1, toByteOffset: p * SwapPage.size, as: UInt64.self) }
        return base
    }

    @Test("a half of the ring is unmapped by the push that fills it, and the rest by a flush")
    func halves() throws {
        let pages = SignalUnmapRing.capacity
        let base = try Self.touchedMapping(pages: pages)
        defer { munmap(base, pages * SwapPage.size) }
        let ring = SignalUnmapRing()
        let half = pages / 2
        for p in 0..<half - 1 { ring.push(base + p * SwapPage.size) }
        #expect(residentPages(base, bytes: pages * SwapPage.size).resident == pages, "nothing unmapped before a half fills")
        ring.push(base + (half - 1) * SwapPage.size)
        #expect(residentPages(base, bytes: half * SwapPage.size).resident == 0)
        for p in half..<pages - 1 { ring.push(base + p * SwapPage.size) }
        #expect(residentPages(base + half * SwapPage.size, bytes: half * SwapPage.size).resident == half)
        ring.flushAll()
        #expect(residentPages(base, bytes: pages * SwapPage.size).resident == 1, "the one page never pushed stays")
        // An unmap of private anonymous memory gives zeroes: proof it was done, not skipped.
        #expect(base.load(as: UInt64.self) == 0)
        #expect(base.load(fromByteOffset: (pages - 1) * SwapPage.size, as: UInt64.self) == UInt64(pages))
    }

    @Test("pages pushed by racing threads are each unmapped after their last push")
    func racingPushes() throws {
        let pages = 4 * SignalUnmapRing.capacity + 5
        let base = try Self.touchedMapping(pages: pages)
        defer { munmap(base, pages * SwapPage.size) }
        let ring = SignalUnmapRing()
        let address = UInt(bitPattern: base)
        runThreads(4) { t in
            let base = UnsafeMutableRawPointer(bitPattern: address)!
            var state = UInt64(t) &+ 0x9E37_79B9_7F4A_7C15
            for _ in 0..<20_000 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let p = Int(state >> 33) % pages
                base.storeBytes(of: 1, toByteOffset: p * SwapPage.size, as: UInt64.self)
                ring.push(base + p * SwapPage.size)
            }
        }
        ring.flushAll()
        // Every touch came before a push of its page, so a page still resident lost its zap.
        #expect(residentPages(base, bytes: pages * SwapPage.size).resident == 0)
    }
}
