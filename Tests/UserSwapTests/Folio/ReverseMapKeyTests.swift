import Testing

@testable import UserSwap

@Suite("Reverse-map keys")
struct ReverseMapKeyTests {
    @Test("a key gives back its region and page, at the limits of both fields")
    func roundTrip() {
        for (region, page) in [(1, 0), (7, 12_345), ((1 << 23) - 1, Int(ReverseMapKey.pageMask))] {
            let key = ReverseMapKey(region: region, page: page)
            #expect(key.region == region && key.page == page, "\(key)")
            #expect(ReverseMapKey(raw: key.raw) == key)
            #expect(!key.isNone)
        }
        #expect(ReverseMapKey.none.isNone && ReverseMapKey(raw: 0) == .none)
    }

    @Test("keys order by region, then page; advancing stays in the region")
    func ordering() {
        let a = ReverseMapKey(region: 2, page: Int(ReverseMapKey.pageMask))
        let b = ReverseMapKey(region: 3, page: 0)
        #expect(a < b)
        #expect(ReverseMapKey(region: 3, page: 4) < ReverseMapKey(region: 3, page: 5))
        #expect(b.advanced(by: 511) == ReverseMapKey(region: 3, page: 511))
    }

    @Test("a folio mapped by a region carries the key of its page; reclaim finds the region by it")
    func frameTableAndMap() throws {
        let space = try SwapSpace(.init(memory: 64 * SwapPage.size, devices: [.memory(bytes: 4 << 20)], backgroundReclaim: false))
        let region = try space.makeRegion(bytes: 8 * SwapPage.size)
        try region.withPage(5) { $0.storeBytes(of: 5, as: Int.self) }
        let pte = region.pte(5)
        #expect(pte.isPresent)
        let f = space.engine.frames.folio(containing: pte.frame)
        let key = space.engine.frames.owner(f)
        #expect(key == ReverseMapKey(region: region.id, page: 5))
        #expect(space.engine.reverseMap.mapping(key) === region)
        #expect(space.engine.reverseMap.mapping(.none) == nil)
    }
}
