import Synchronization
import Testing

@testable import UserSwap

@Suite("Large folios")
struct LargeFolioTests {
    @Test("a 64 KiB-folio region swaps out and in as whole runs, one I/O each", arguments: bothProtocols)
    func wholeRuns(sync: SwapInSync) throws {
        let (space, backend) = try makeSpace(memoryPages: 256, sync: sync)
        let region = try space.makeRegion(bytes: 64 * SwapPage.size, folioSize: 16 * SwapPage.size)
        for p in 0..<64 { try region.withPage(p) { fill($0, page: p) } }
        #expect(space.statistics[.zeroFills] == 64)
        #expect(try region.swapOut(pages: 0..<64) == 64, "four folios of 16 pages, counted in pages")
        #expect(backend.memory.writeCallCount == 4 && backend.memory.writeCount == 64)
        for p in 0..<64 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(backend.memory.readCallCount == 4, "each folio read back in one call")
        #expect(space.statistics[.splitFallbacks] == 0)
        #expect(space.checkInvariants() == [])
    }

    @Test("with no free run of slots a large folio is split and goes out page by page")
    func splitFallback() throws {
        let (space, _) = try makeSpace(memoryPages: 256, swapPages: 1 + 2 * 512)
        let device = space.devices[0]
        // Fragment swap: every other slot taken, no aligned run of 16 anywhere.
        var held: [SwapEntry] = []
        while let e = try? device.allocate() { held.append(e) }
        for (i, e) in held.enumerated() where i % 2 == 0 { device.put(e) }
        let region = try space.makeRegion(bytes: 32 * SwapPage.size, folioSize: 16 * SwapPage.size)
        for p in 0..<32 { try region.withPage(p) { fill($0, page: p) } }
        let freed = try region.swapOut(pages: 0..<32)
        #expect(freed == 32, "every page went out on its own")
        #expect(space.statistics[.splitFallbacks] == 2)
        for p in 0..<32 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.checkInvariants() == [])
    }

    @Test("a swap-out that covers part of a large folio splits it and takes only the pages asked for", arguments: bothProtocols)
    func partialSwapOut(sync: SwapInSync) throws {
        let (space, backend) = try makeSpace(memoryPages: 256, sync: sync)
        let region = try space.makeRegion(bytes: 32 * SwapPage.size, folioSize: 16 * SwapPage.size)
        for p in 0..<32 { try region.withPage(p) { fill($0, page: p) } }
        // Pages 14...17: the last two of the first folio, the first two of the second.
        #expect(try region.swapOut(pages: 14..<18) == 4)
        for p in 0..<32 {
            #expect(region.state(ofPage: p) == ((14..<18).contains(p) ? .swapped : .resident), "page \(p)")
        }
        #expect(space.statistics[.splitFallbacks] == 2 && backend.memory.writeCount == 4)
        // A whole folio still goes out in one write.
        let writes = backend.memory.writeCallCount
        let more = try space.makeRegion(bytes: 16 * SwapPage.size, folioSize: 16 * SwapPage.size)
        for p in 0..<16 { try more.withPage(p) { fill($0, page: p) } }
        #expect(try more.swapOut(pages: 0..<16) == 16 && backend.memory.writeCallCount == writes + 1)
        for p in 0..<32 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.checkInvariants() == [])
    }

    @Test("a pin of a discarded page still holds its large folio: no split, no swap-out of the rest")
    func pinOfDiscardedPage() throws {
        let (space, _) = try makeSpace(memoryPages: 256)
        let region = try space.makeRegion(bytes: 4 * SwapPage.size, folioSize: 4 * SwapPage.size)
        for p in 0..<4 { try region.withPage(p) { fill($0, page: p) } }
        var pin: Pin? = try region.pin(1, for: .read)
        try region.discard(pages: 1..<2)
        // Three pages map the folio and the pin holds it: as many references as three mappings,
        // the swap-out's own and a fourth page would have, which a split counting every page
        // as mapped took for "nobody else".
        #expect(try region.swapOut(pages: 2..<3) == 0)
        #expect(try region.swapOut(pages: 0..<4) == 0)
        #expect(space.statistics[.splitFallbacks] == 0)
        pin = nil
        #expect(try region.swapOut(pages: 2..<3) == 1)
        let freed = try region.swapOut(pages: 0..<4)
        #expect(freed == 2, "\(space.statistics[.busyFolios]) busy")
        for p in [0, 2, 3] { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        try region.withPage(1, for: .read) { #expect($0.allSatisfy { $0 == 0 }) }
        #expect(space.checkInvariants() == [])
        _ = pin
    }

    @Test("a swap-out takes a large folio mapped in part, and the small folios mapped where its pages were discarded")
    func partlyMappedFolio() throws {
        let (space, _) = try makeSpace(memoryPages: 256)
        let region = try space.makeRegion(bytes: 8 * SwapPage.size, folioSize: 4 * SwapPage.size)
        for p in 0..<8 { try region.withPage(p) { fill($0, page: p) } }
        var pin: Pin? = try region.pin(0, for: .read)
        try region.discard(pages: 1..<3)
        try region.discard(pages: 4..<7)
        // Pages 1 and 2 come back as single pages, in front of the pinned folio's page 3.
        for p in 1..<3 { try region.withPage(p) { fill($0, page: p) } }
        #expect(try region.swapOut(pages: 1..<8) == 3, "pages 1, 2 and 7; page 3 is the pinned folio's")
        #expect(region.state(ofPage: 3) == .resident && region.state(ofPage: 7) == .swapped)
        pin = nil
        _ = pin
        let freed = try region.swapOut(pages: 0..<4)
        #expect(freed == 2, "\(space.statistics[.busyFolios]) busy")
        for p in [0, 1, 2, 3, 7] { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.checkInvariants() == [])
    }

    @Test("reclaim keeps a large-folio region within budget and loses nothing", arguments: bothProtocols)
    func underReclaim(sync: SwapInSync) throws {
        let (space, _) = try makeSpace(memoryPages: 128, swapPages: 1 + 4 * 512, sync: sync, backgroundReclaim: true)
        let region = try space.makeRegion(bytes: 512 * SwapPage.size, folioSize: 8 * SwapPage.size)
        for p in 0..<512 { try region.withPage(p) { fill($0, page: p) } }
        let wrong = Atomic<Int>(0)
        runThreads(4) { t in
            var local = SeededRandom(seed: UInt64(t) &+ 99)
            for _ in 0..<1500 {
                let p = Int.random(in: 0..<512, using: &local)
                do { try region.withPage(p, for: .read) { if !matches($0, page: p) { wrong.add(1, ordering: .relaxed) } } } catch {
                    wrong.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(wrong.load(ordering: .relaxed) == 0)
        #expect(space.residentFrames <= 128)
        for p in 0..<512 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.checkInvariants() == [])
        print(
            "large folios under reclaim (\(sync)): swap-ins \(space.statistics[.swapIns]), splits \(space.statistics[.splitFallbacks]), large fallbacks \(space.statistics[.largeFallbacks])"
        )
    }

    @Test("writing one page of a large folio keeps the rest intact through swap")
    func partialWrite() throws {
        let (space, _) = try makeSpace(memoryPages: 256)
        let region = try space.makeRegion(bytes: 16 * SwapPage.size, folioSize: 16 * SwapPage.size)
        for p in 0..<16 { try region.withPage(p) { fill($0, page: p) } }
        try region.swapOut(pages: 0..<16)
        try region.withPage(5) { fill($0, page: 5, generation: 3) }
        try region.swapOut(pages: 0..<16)
        for p in 0..<16 { try region.withPage(p, for: .read) { #expect(matches($0, page: p, generation: p == 5 ? 3 : 0)) } }
        #expect(space.checkInvariants() == [])
    }

    @Test("folio sizes must be powers of two from 4K to 2M")
    func badFolioSize() throws {
        let (space, _) = try makeSpace(memoryPages: 8)
        #expect(throws: SwapError(.invalidArgument, "")) { try space.makeRegion(bytes: 1 << 20, folioSize: 3 * SwapPage.size) }
        #expect(throws: SwapError(.invalidArgument, "")) { try space.makeRegion(bytes: 1 << 20, folioSize: 4 << 20) }
    }
}
