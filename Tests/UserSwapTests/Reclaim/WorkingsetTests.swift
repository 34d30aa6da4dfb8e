import Testing

@testable import UserSwap

/// Refault detection (kernel: `mm/workingset.c`): the clock ages by pages, and every insert that
/// replaces a shadow is a refault, readahead's included.
@Suite("Workingset")
struct WorkingsetTests {
    @Test("a large folio's eviction ages the clock by its pages: a refault distance counts pages, not folios")
    func largeFolioAgesByPages() throws {
        let (space, _) = try makeSpace(memoryPages: 256)
        let region = try space.makeRegion(bytes: 32 * SwapPage.size, folioSize: 16 * SwapPage.size)
        for p in 0..<32 { try region.withPage(p) { fill($0, page: p) } }
        let start = space.rootGroup.nonresidentAge.load(ordering: .relaxed)
        #expect(try region.swapOut(pages: 0..<16) == 16, "one folio")
        #expect(try region.swapOut(pages: 16..<32) == 16, "one folio")
        #expect(space.statistics[.splitFallbacks] == 0, "both went out as 16-page folios")
        #expect(space.rootGroup.nonresidentAge.load(ordering: .relaxed) == start + 32)
        let first = space.devices[0].slot(region.pte(0).swapEntry)
        try #require(first.isShadow)
        let distance = space.engine.workingset.refaultDistance(Shadow(packed: first.payload), group: space.rootGroup)
        // The clock read at its eviction, before its own 16 pages aged it (kernel:
        // `workingset_eviction`): its own pages and the second folio's 16 since.
        #expect(distance == 32, "pages evicted since the first folio left, its own included")
        // And the refault sees it: the first block comes back with one refault per folio.
        try region.withPage(0, for: .read) { #expect(matches($0, page: 0)) }
        #expect(space.statistics[.refaults] >= 1)
        #expect(space.checkInvariants() == [])
    }

    @Test("pages read ahead are refaults too: each insert that replaced a shadow is checked", arguments: bothProtocols)
    func readaheadRefaults(sync: SwapInSync) throws {
        let (space, _) = try makeSpace(memoryPages: 256, sync: sync)
        let region = try space.makeRegion(bytes: 64 * SwapPage.size)
        try region.advise(.sequential)
        for p in 0..<64 { try region.withPage(p) { fill($0, page: p) } }
        try region.swapOut(pages: 0..<64)
        try region.withPage(0, for: .read) { #expect(matches($0, page: 0)) }
        space.engine.cache.asyncReads.waitUntilIdle()
        let read = space.statistics[.swapIns]
        #expect(read > 1, "the fault read a window ahead")
        #expect(space.statistics[.readaheadPages] == read - 1)
        #expect(space.statistics[.refaults] == read, "every page read replaced its shadow")
        #expect(space.rootGroup[.workingsetRefault] == read)
        #expect(space.checkInvariants() == [])
    }
}
