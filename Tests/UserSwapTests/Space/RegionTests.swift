import Testing

@testable import UserSwap

@Suite("Regions: pages in memory and on swap")
struct RegionTests {
    @Test("untouched pages read as zeroes", arguments: bothProtocols)
    func zeroes(sync: SwapInSync) throws {
        let (space, _) = try makeSpace(memoryPages: 8, sync: sync)
        let region = try space.makeRegion(bytes: 3 * SwapPage.size)
        try region.withPage(2, for: .read) { page in #expect(page.allSatisfy { $0 == 0 }) }
        #expect(region.state(ofPage: 2) == .resident && region.state(ofPage: 0) == .untouched)
    }

    @Test("a page swapped out comes back byte for byte", arguments: bothProtocols)
    func roundTrip(sync: SwapInSync) throws {
        let (space, backend) = try makeSpace(memoryPages: 16, sync: sync)
        let region = try space.makeRegion(bytes: 10 * SwapPage.size)
        for p in 0..<10 { try region.withPage(p) { fill($0, page: p) } }
        #expect(try region.swapOut(pages: 0..<10) == 10)
        #expect(space.residentFrames == 0)
        #expect((0..<10).allSatisfy { region.state(ofPage: $0) == .swapped })
        for p in 0..<10 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(backend.totalReads == 10 && backend.memory.writeCount == 10)
        #expect(space.statistics[.swapIns] == 10 && space.statistics[.swapOuts] == 10)
        #expect(space.checkInvariants() == [])
    }

    @Test("a space that has used up its region ids throws .outOfMemory instead of trapping")
    func regionIDsUsedUp() throws {
        let (space, _) = try makeSpace(memoryPages: 8)
        // Ids are never reused: skip to the last one rather than make eight million regions.
        space.nextRegionID.store(Region.idLimit - 1, ordering: .sequentiallyConsistent)
        let last = try space.makeRegion(bytes: SwapPage.size)
        #expect(last.id == Region.idLimit - 1)
        #expect(throws: SwapError(.outOfMemory, "")) { try space.makeRegion(bytes: SwapPage.size) }
        #expect(throws: SwapError(.outOfMemory, "")) { try SwappableArray<Int>(count: 10, in: space) }
        let error = try #require(throws: SwapError.self) { try space.makeRegion(bytes: SwapPage.size) }
        #expect(error.message.contains("make a new SwapSpace"), "\(error.message)")
        try last.withPage(0) { fill($0, page: 0) }
        try last.withPage(0, for: .read) { #expect(matches($0, page: 0)) }
    }

    @Test("I/O engine sizes below 1 are refused by the space with a typed error")
    func ioOptionsValidated() throws {
        // (A worker count below 1 is raised by the initializer to one more than the writes in flight.)
        for options in [IOEngineOptions(slots: 0), IOEngineOptions(maxWritesInFlight: 0)] {
            let error = try #require(throws: SwapError.self) {
                try SwapSpace(.init(memory: 1 << 20, devices: [.memory(bytes: 8 << 20)], ioOptions: options))
            }
            #expect(error.code == .invalidArgument && error.message.contains("at least 1"), "\(error.message)")
        }
        var options = IOEngineOptions()
        options.slots = -3
        #expect(throws: SwapError(.invalidArgument, "")) { try SwapSpace(.init(memory: 1 << 20, ioOptions: options)) }
    }

    @Test("a clean page still in the swap cache swaps out again without a write")
    func cleanDropNeedsNoWrite() throws {
        let (space, backend) = try makeSpace(memoryPages: 4)
        let region = try space.makeRegion(bytes: SwapPage.size)
        try region.withPage(0) { fill($0, page: 0) }
        try region.swapOut(pages: 0..<1)
        try region.withPage(0, for: .read) { #expect(matches($0, page: 0)) }
        #expect(space.devices[0].usedPages == 1, "the clean folio keeps its slot")
        try region.swapOut(pages: 0..<1)
        #expect(backend.memory.writeCount == 1 && space.statistics[.cleanDrops] == 1)
        try region.withPage(0, for: .read) { #expect(matches($0, page: 0)) }
    }

    @Test("writing a page releases its stale copy on swap")
    func writeReleasesSlot() throws {
        let (space, backend) = try makeSpace(memoryPages: 4)
        let region = try space.makeRegion(bytes: SwapPage.size)
        try region.withPage(0) { fill($0, page: 0) }
        try region.swapOut(pages: 0..<1)
        try region.withPage(0, for: .read) { _ in }
        #expect(space.devices[0].usedPages == 1)
        try region.withPage(0) { fill($0, page: 0, generation: 1) }
        #expect(space.devices[0].usedPages == 0)
        try region.swapOut(pages: 0..<1)
        #expect(backend.memory.writeCount == 2)
        try region.withPage(0, for: .read) { #expect(matches($0, page: 0, generation: 1)) }
        #expect(space.checkInvariants() == [])
    }

    @Test("a pinned page is not swapped out")
    func pinnedStays() throws {
        let (space, _) = try makeSpace(memoryPages: 4)
        let region = try space.makeRegion(bytes: 2 * SwapPage.size)
        let pin = try region.pin(0)
        fill(pin.bytes, page: 0)
        try region.withPage(1) { fill($0, page: 1) }
        #expect(try region.swapOut(pages: 0..<2) == 1)
        #expect(region.state(ofPage: 0) == .resident && region.state(ofPage: 1) == .swapped)
        #expect(matches(pin.bytes, page: 0))
        _ = consume pin
        #expect(try region.swapOut(pages: 0..<2) == 1)
        #expect(space.statistics[.busyFolios] >= 1)
    }

    @Test("discarding pages frees their frames and slots, and they read as zero")
    func discard() throws {
        let (space, _) = try makeSpace(memoryPages: 8)
        let region = try space.makeRegion(bytes: 4 * SwapPage.size)
        for p in 0..<4 { try region.withPage(p) { fill($0, page: p) } }
        try region.swapOut(pages: 0..<2)
        try region.withPage(0, for: .read) { _ in }  // cached and mapped again
        try region.discard(pages: 0..<4)
        #expect(space.residentFrames == 0 && space.devices[0].usedPages == 0)
        try region.withPage(1, for: .read) { page in #expect(page.allSatisfy { $0 == 0 }) }
        #expect(space.checkInvariants() == [])
    }

    @Test("a region that goes away gives back every frame and slot")
    func regionDeinit() throws {
        let (space, _) = try makeSpace(memoryPages: 8)
        do {
            let region = try space.makeRegion(bytes: 6 * SwapPage.size)
            for p in 0..<6 { try region.withPage(p) { fill($0, page: p) } }
            try region.swapOut(pages: 0..<3)
        }
        #expect(space.residentFrames == 0 && space.devices[0].usedPages == 0)
    }

    @Test("reclaim makes room when the budget is full, and gives up with a typed error only when it cannot")
    func outOfMemory() throws {
        let (space, _) = try makeSpace(memoryPages: 2, swapPages: 1 + 512)
        let region = try space.makeRegion(bytes: 600 * SwapPage.size)
        // Unpinned pages are reclaimed to make room: far more pages than frames.
        for p in 0..<400 { try region.withPage(p) { fill($0, page: p) } }
        for p in [0, 199, 399] { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        // Every frame pinned: nothing can be reclaimed.
        let a = try region.pin(0)
        let b = try region.pin(1)
        #expect(throws: SwapError(.outOfMemory, "")) { _ = try region.pin(2) }
        _ = consume a
        _ = consume b
        // Swap full (512 slots): the next new page has nowhere to go, and the error says so.
        var failure: SwapError?
        for p in 400..<600 {
            do { try region.withPage(p) { fill($0, page: p) } } catch {
                failure = error as? SwapError
                break
            }
        }
        #expect(failure?.code == .swapFull)
        #expect(space.checkInvariants() == [])
    }

    @Test("out-of-range pages are a typed error")
    func outOfRange() throws {
        let (space, _) = try makeSpace(memoryPages: 2)
        let region = try space.makeRegion(bytes: SwapPage.size)
        #expect(throws: SwapError(.outOfRange, "")) { _ = try region.pin(1) }
        #expect(throws: SwapError(.outOfRange, "")) { _ = try region.pin(-1) }
    }

    @Test("SwappableArray stores values across swap-out")
    func swappableArray() throws {
        let (space, _) = try makeSpace(memoryPages: 16)
        var array = try SwappableArray<Int64>(count: 5000, in: space)
        for i in array.indices { array[i] = Int64(i * 3) }
        try array.region.swapOut(pages: 0..<array.region.pageCount)
        #expect(array.reduce(0, +) == Int64(3 * 4999 * 5000 / 2))
        array.swapAt(0, 4999)
        #expect(array[0] == 4999 * 3 && array[4999] == 0)
    }
}
