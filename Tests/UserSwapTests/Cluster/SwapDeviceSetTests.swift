import Testing

@testable import UserSwap

@Suite("Devices with priorities")
struct SwapDeviceSetTests {
    @Test("the highest priority serves until full, then the next")
    func priorityOrder() throws {
        let set = SwapDeviceSet()
        let low = try makeDevice(pages: 1 + 512, type: 0, priority: -1)
        let high = try makeDevice(pages: 1 + 512, type: 1, priority: 5)
        try set.add(low)
        try set.add(high)
        for _ in 0..<high.usablePages { #expect(try set.allocate().type == 1) }
        #expect(try set.allocate().type == 0)
        #expect(set.device(for: SwapEntry(type: 0, offset: 1)) === low)
    }

    @Test("equal priorities take turns")
    func rotation() throws {
        let set = SwapDeviceSet()
        for t in 0..<3 { try set.add(try makeDevice(pages: 1 + 2 * 512, type: t, priority: 0)) }
        var perDevice = [0, 0, 0]
        for _ in 0..<300 { perDevice[try set.allocate().type] += 1 }
        #expect(perDevice.allSatisfy { $0 >= 90 && $0 <= 110 }, "uneven: \(perDevice)")
    }

    @Test("every device full is a typed error naming the free space")
    func allFull() throws {
        let set = SwapDeviceSet()
        try set.add(try makeDevice(pages: 1 + 512, type: 0))
        // 511 slots beside the header in cluster 0, and slot 512 in the partial cluster 1.
        for _ in 0..<512 { _ = try set.allocate() }
        #expect(throws: SwapError(.swapFull, "")) { try set.allocate() }
    }

    @Test("a type can only be used once")
    func duplicateType() throws {
        let set = SwapDeviceSet()
        try set.add(try makeDevice(pages: 1 + 512, type: 2))
        #expect(throws: SwapError(.invalidArgument, "")) { try set.add(try makeDevice(pages: 1 + 512, type: 2)) }
        #expect(try set.nextFreeType() == 0)
    }
}
