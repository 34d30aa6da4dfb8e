import Testing

@testable import UserSwap

@Suite("Swap counts")
struct SwapDeviceCountsTests {
    @Test("duplicate and put move the count; the last put frees the slot")
    func duplicateAndPut() throws {
        let device = try makeDevice(pages: 1 + 512)
        let e = try device.allocate()
        try device.duplicate(e)
        try device.duplicate(e)
        #expect(device.swapCount(e) == 3)
        device.put(e)
        device.put(e)
        #expect(device.swapCount(e) == 1 && device.usedPages == 1)
        device.put(e)
        #expect(device.slot(e).isFree && device.usedPages == 0)
        #expect(device.checkInvariants() == [])
    }

    @Test("counting past the slot's limit is a typed error and changes nothing")
    func overflow() throws {
        let device = try makeDevice(pages: 1 + 512)
        let e = try device.allocate()
        for _ in 1..<SwapTableSlot.maxCount { try device.duplicate(e) }
        #expect(device.swapCount(e) == SwapTableSlot.maxCount)
        #expect(throws: SwapError(.countOverflow, "")) { try device.duplicate(e) }
        #expect(device.swapCount(e) == SwapTableSlot.maxCount)
        device.put(e, count: 1)
        #expect(device.swapCount(e) == SwapTableSlot.maxCount - 1)
    }

    @Test("duplicating a free slot is refused with no-entry")
    func duplicateFree() throws {
        let device = try makeDevice(pages: 1 + 512)
        let e = try device.allocate()
        device.put(e)
        #expect(throws: SwapError(.noEntry, "")) { try device.duplicate(e) }
    }

    @Test("a slot whose count drops to zero while a folio holds it stays until the folio leaves")
    func cacheOnlySlotStays() throws {
        let device = try makeDevice(pages: 1 + 512)
        let e = try #require(device.allocateSlots(order: 0, initial: .folio(42, count: 1)))
        device.put(e)
        #expect(device.slot(e).isFolio && device.slot(e).count == 0)
        #expect(device.usedPages == 1)
        #expect(device.checkInvariants() == [])
    }

    @Test("put over a range crossing clusters frees each slot once")
    func rangePut() throws {
        let device = try makeDevice(pages: 1 + 3 * 512)
        var entries: [SwapEntry] = []
        while let e = try? device.allocate() { entries.append(e) }
        entries.sort()
        device.put(entries[500], count: 30)  // slots 501...530: crosses from cluster 0 to 1
        #expect(device.usedPages == entries.count - 30)
        #expect(device.slot(entries[499]).count == 1 && device.slot(entries[530]).count == 1)
        #expect(device.checkInvariants() == [])
    }
}
