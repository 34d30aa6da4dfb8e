import Testing

@testable import UserSwap

/// The out-of-memory report says where the budget's frames are (`FrameCensus`).
@Suite("Where the frames are when memory runs out")
struct FrameCensusTests {
    @Test("the census counts free, listed, pinned and locked frames")
    func countsFrames() throws {
        let frames = 16
        let (space, _) = try makeSpace(memoryPages: frames)
        let region = try space.makeRegion(bytes: 12 * SwapPage.size)
        for p in 0..<12 { try region.withPage(p) { fill($0, page: p) } }
        var pins: [PinBox] = []
        for p in 0..<5 { pins.append(PinBox(try region.pin(p, for: .read))) }
        let lockedFolio = space.engine.frames.folio(containing: region.pte(11).frame)
        space.engine.frames.lock(lockedFolio)
        // A folio taken off its list and locked, as a reclaimer holds one.
        space.engine.allocator.lru(lockedFolio).remove(lockedFolio)
        let c = space.engine.allocator.census()
        #expect(c.frames == frames)
        #expect(c.free == 4)
        #expect(c.listed == 11)
        let onLists = c.lists.reduce(0) { $0 + $1.inactive + $1.active }
        #expect(onLists == 11)
        #expect(c.locked == 1)
        #expect(c.heldFrames == 5 && c.heldFolios == 5 && c.extraReferences == 5)
        let elsewhere: Int = c.writeback + c.arriving + c.referenced + c.unaccounted + c.inTransition
        #expect(elsewhere == 0)
        space.engine.allocator.lru(lockedFolio).add(lockedFolio, to: .inactive)
        space.engine.frames.unlock(lockedFolio)
    }

    @Test("an allocation that finds every frame pinned reports them in its error")
    func outOfMemoryNamesPinnedFrames() throws {
        let frames = 8
        let (space, _) = try makeSpace(memoryPages: frames)
        let region = try space.makeRegion(bytes: (frames + 1) * SwapPage.size)
        var pins: [PinBox] = []
        for p in 0..<frames { pins.append(PinBox(try region.pin(p, for: .write))) }
        do {
            try region.withPage(frames) { _ in }
            Issue.record("a page was faulted in with every frame pinned")
        } catch let error as SwapError {
            #expect(error.code == .outOfMemory)
            #expect(
                error.message.contains("\(frames) frames: 0 free, \(frames) on LRU lists")
                    && error.message.contains("\(frames) frames in \(frames) folios with \(frames) references beyond"),
                "\(error.message)")
        }
    }
}
