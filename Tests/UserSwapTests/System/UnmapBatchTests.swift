import Foundation
import Testing

@testable import UserSwap

@Suite("Unmap batches")
struct UnmapBatchTests {
    @Test("a batch unmaps every range it gathered (more than one call's worth, some adjacent) and the data stays")
    func unmapsAndKeepsData() throws {
        let pages = 3 * UnmapBatch.capacity
        let window = try FrameWindow(slot: 0, pageCount: pages)
        let words = window.appView.assumingMemoryBound(to: UInt64.self)
        for p in 0..<pages { words[p * 512] = UInt64(p) + 1 }
        #expect(try TransparentRegionResidencyTests.rss(ofMappingAt: window.appView) == pages * SwapPage.size)
        var batch = UnmapBatch()
        var unmapped = 0
        // Pages 0, 1 (adjacent: one range), then every third page: more ranges than one call takes.
        for p in 0..<pages where p < 2 || p % 3 == 0 {
            batch.add(window.appAddress(p), length: SwapPage.size)
            unmapped += 1
        }
        batch.flush()
        let empty = batch.isEmpty
        #expect(empty)
        let left = try TransparentRegionResidencyTests.rss(ofMappingAt: window.appView)
        #expect(left == (pages - unmapped) * SwapPage.size, "\(left >> 10) KiB mapped, \(unmapped) of \(pages) pages unmapped")
        for p in 0..<pages { #expect(words[p * 512] == UInt64(p) + 1, "page \(p) kept its data") }
    }
}
