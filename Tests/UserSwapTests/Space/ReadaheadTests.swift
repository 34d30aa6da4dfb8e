import Testing
@testable import UserSwap

@Suite("Readahead")
struct ReadaheadTests {
    /// A region of `pages` written and swapped out in order, so its slots are consecutive.
    static func swapped(_ pages: Int, sync: SwapInSync = .swapCache) throws -> (SwapSpace, Region, TestBackend) {
        let (space, backend) = try makeSpace(memoryPages: 4 * pages, sync: sync)
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }
        try region.swapOut(pages: 0..<pages)
        backend.resetReads()
        backend.memory.resetCounters()
        return (space, region, backend)
    }

    @Test("sequential faults grow the window and read in runs, each page once", arguments: bothProtocols)
    func sequential(sync: SwapInSync) throws {
        let (space, region, backend) = try Self.swapped(256, sync: sync)
        for p in 0..<256 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(backend.totalReads == 256 && backend.maxReadsOfOnePage == 1)
        #expect(space.statistics[.readaheadHits] > 200)
        if sync == .swapCache { #expect(backend.memory.readCallCount < 40, "\(backend.memory.readCallCount) read calls for 256 pages") }
        #expect(space.statistics[.readaheadWasted] == 0)
        #expect(space.checkInvariants() == [])
    }

    @Test("random faults collapse the window: nothing read ahead, nothing wasted")
    func random() throws {
        let (space, region, backend) = try Self.swapped(512)
        var rng = SeededRandom(seed: 7)
        var order = Array(0..<512)
        order.shuffle(using: &rng)
        for p in order.prefix(200) { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.statistics[.readaheadPages] <= 8, "read ahead \(space.statistics[.readaheadPages]) pages on random access")
        #expect(backend.totalReads <= 208)
    }

    @Test("advice: random turns readahead off, sequential reads the largest window at once")
    func advice() throws {
        let (space, region, backend) = try Self.swapped(128)
        try region.advise(.random)
        for p in 0..<16 { try region.withPage(p, for: .read) { _ in } }
        #expect(space.statistics[.readaheadPages] == 0 && backend.totalReads == 16)
        try region.advise(.sequential)
        try region.withPage(16, for: .read) { _ in }
        // The window runs to the region's end (111 pages after page 16) or its largest size.
        #expect(space.statistics[.readaheadPages] == min(ReadaheadState.maxWindow - 1, 128 - 17))
    }

    @Test("prefetch reads pages into the cache in one call; their use reads nothing more")
    func prefetch() throws {
        let (space, region, backend) = try Self.swapped(64)
        try region.advise(.random)
        #expect(try region.prefetch(pages: 0..<64) == 64)
        #expect(backend.memory.readCallCount == 1)
        for p in 0..<64 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(backend.totalReads == 64 && space.statistics[.readaheadHits] == 64)
        try region.advise(.dontNeed, pages: 0..<64)
        #expect((0..<64).allSatisfy { region.state(ofPage: $0) == .swapped })
        #expect(space.checkInvariants() == [])
    }

    @Test("pages read ahead and never used are counted as wasted when reclaimed")
    func wasted() throws {
        let (space, region, _) = try Self.swapped(64)
        try region.prefetch(pages: 0..<64)
        // Push everything out: the prefetched folios are reclaimed unused.
        _ = space.engine.shrink(target: 1000)
        #expect(space.statistics[.readaheadWasted] == 64)
    }
}
