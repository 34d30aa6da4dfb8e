import Testing

@testable import UserSwap

@Suite("Use counts")
struct UseCountTests {
    @Test("a count halves once per epoch and is gone after four")
    func decay() {
        let c = UseCount(count: 12, epoch: 100)
        #expect(c.count(at: 100) == 12)
        #expect(c.count(at: 101) == 6)
        #expect(c.count(at: 102) == 3)
        #expect(c.count(at: 103) == 1)
        #expect(c.count(at: 104) == 0)
        #expect(c.count(at: 1_000) == 0)
    }

    @Test("counts saturate at the maximum; epochs wrap at 24 bits")
    func bounds() {
        #expect(UseCount(count: 99, epoch: 0).count(at: 0) == UseCount.maxCount)
        let wrapped = UseCount(count: 8, epoch: (1 << 24) - 1)
        #expect(wrapped.count(at: 1 << 24) == 4, "one epoch later across the wrap")
    }

    @Test("every pin counts a use, up to the maximum")
    func pinsCount() throws {
        let (space, _) = try makeSpace(memoryPages: 16)
        let region = try space.makeRegion(bytes: 4 * SwapPage.size)
        let engine = space.engine
        for n in 1...20 {
            try region.withPage(1, for: n % 2 == 0 ? .write : .read) { _ in }
            let f = engine.frames.folio(containing: region.pte(1).frame)
            #expect(engine.frames.uses(f).count(at: engine.allocator.useEpoch(engine.groups[0])) == min(n, UseCount.maxCount))
        }
    }

    @Test("a page's count survives its eviction, aged by the evictions since")
    func survivesEviction() throws {
        let (space, _) = try makeSpace(memoryPages: 64)
        let region = try space.makeRegion(bytes: 96 * SwapPage.size)
        for p in 0..<96 { try region.withPage(p) { fill($0, page: p) } }
        let engine = space.engine
        let group = engine.groups[0]
        // Page 0 as if reclaim had found it used eight times.
        try region.withPage(0, for: .read) { _ in }
        try #require(region.pte(0).isPresent)
        let f = engine.frames.folio(containing: region.pte(0).frame)
        engine.frames.setUses(f, UseCount(count: 8, epoch: engine.allocator.useEpoch(group)))
        try region.swapOut(pages: 0..<1)
        let slot = space.devices[0].slot(region.pte(0).swapEntry)
        #expect(slot.isShadow)
        #expect(Shadow(packed: slot.payload).uses == 8)
        try region.withPage(0, for: .read) { #expect(matches($0, page: 0)) }
        let back = engine.frames.folio(containing: region.pte(0).frame)
        #expect(engine.frames.uses(back).count(at: engine.allocator.useEpoch(group)) == 8 + 1, "its 8, and the read that brought it back")

        // Out again, and two half-lives of evictions go by before it comes back: 9 → 2, plus one.
        try region.swapOut(pages: 0..<1)
        let evictedAt = Shadow(packed: space.devices[0].slot(region.pte(0).swapEntry).payload).age
        let halfLife = engine.allocator.useHalfLife(group)
        while group.nonresidentAge.load(ordering: .relaxed) - evictedAt < 2 * halfLife {
            for p in 1..<96 { try region.withPage(p, for: .read) { _ in } }
        }
        #expect(group.nonresidentAge.load(ordering: .relaxed) - evictedAt < 3 * halfLife - 64)
        try region.withPage(0, for: .read) { #expect(matches($0, page: 0)) }
        let again = engine.frames.folio(containing: region.pte(0).frame)
        #expect(engine.frames.uses(again).count(at: engine.allocator.useEpoch(group)) == (9 >> 2) + 1)
    }
}
