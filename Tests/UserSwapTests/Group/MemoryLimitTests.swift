import Testing

@testable import UserSwap

/// `SwapSpace.setMemoryLimit(_:of:)`: a limit set below a group's usage holds when the call
/// returns, as writing the kernel's `memory.max` reclaims at once.
@Suite("Setting a group's memory limit")
struct MemoryLimitTests {
    @Test("a limit below the usage swaps out the excess, from nested groups too, before returning; the pages come back")
    func lowerSwapsOutAtOnce() throws {
        let (space, _) = try makeSpace(memoryPages: 256)
        let parent = try space.makeGroup(name: "p")
        let child = try space.makeGroup(name: "p/c", parent: parent)
        let own = try space.makeRegion(bytes: 64 * SwapPage.size, group: parent)
        let nested = try space.makeRegion(bytes: 32 * SwapPage.size, group: child)
        for p in 0..<64 { try own.withPage(p) { fill($0, page: p, generation: 1) } }
        for p in 0..<32 { try nested.withPage(p) { fill($0, page: p, generation: 2) } }
        #expect(parent.memoryUsage == 96 * SwapPage.size)

        try space.setMemoryLimit(24 * SwapPage.size, of: parent)
        #expect(parent.memoryLimit == 24 * SwapPage.size)
        #expect(parent.memoryUsage <= 24 * SwapPage.size, "resident right after the call: \(parent.memoryUsage / SwapPage.size) pages")
        #expect(parent[.pswpout] >= 72)
        #expect(space.checkInvariants() == [])

        for p in 0..<64 { try own.withPage(p, for: .read) { #expect(matches($0, page: p, generation: 1)) } }
        for p in 0..<32 { try nested.withPage(p, for: .read) { #expect(matches($0, page: p, generation: 2)) } }
        #expect(parent.memoryUsage <= 24 * SwapPage.size, "the limit still holds while the pages come back")
        #expect(space.checkInvariants() == [])
    }

    @Test("pinned pages that keep the group above the limit give a typed error naming the bytes above; the limit stays set")
    func pinnedKeepsItAbove() throws {
        let (space, _) = try makeSpace(memoryPages: 64)
        let group = try space.makeGroup(name: "pinned")
        let region = try space.makeRegion(bytes: 16 * SwapPage.size, group: group)
        for p in 0..<16 { try region.withPage(p) { fill($0, page: p) } }
        // Half the pages pinned: the other half can go, the pinned half stays.
        var pins: [PinBox] = []
        for p in 0..<8 { pins.append(PinBox(try region.pin(p, for: .read))) }

        let error = #expect(throws: SwapError.self) { try space.setMemoryLimit(4 * SwapPage.size, of: group) }
        #expect(error?.code == .outOfMemory)
        let message = error?.message ?? ""
        #expect(message.contains("memory group pinned stays \(4 * SwapPage.size) bytes above"), "\(message)")
        #expect(group.memoryLimit == 4 * SwapPage.size, "the limit is set even so")
        #expect(group.memoryUsage == 8 * SwapPage.size, "every page that was not pinned went")
        #expect(space.checkInvariants() == [])

        // Once the pins go, setting the limit again gets the group under it.
        for box in pins { box.pin = nil }
        try space.setMemoryLimit(4 * SwapPage.size, of: group)
        #expect(group.memoryUsage <= 4 * SwapPage.size)
        for p in 0..<16 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.checkInvariants() == [])
    }

    @Test("a group whose every page is pinned gets the typed error and keeps its pages")
    func allPinned() throws {
        let (space, _) = try makeSpace(memoryPages: 64)
        let group = try space.makeGroup(name: "all")
        let region = try space.makeRegion(bytes: 8 * SwapPage.size, group: group)
        var pins: [PinBox] = []
        for p in 0..<8 {
            try region.withPage(p) { fill($0, page: p) }
            pins.append(PinBox(try region.pin(p, for: .read)))
        }
        let error = #expect(throws: SwapError.self) { try space.setMemoryLimit(0, of: group) }
        #expect(error?.code == .outOfMemory)
        let message = error?.message ?? ""
        #expect(message.contains("stays \(8 * SwapPage.size) bytes above the memory limit of 0 bytes"), "\(message)")
        #expect(group.memoryLimit == 0 && group.memoryUsage == 8 * SwapPage.size && group[.pswpout] == 0)
        pins.removeAll()
        #expect(space.checkInvariants() == [])
    }

    @Test("a limit at or above the usage, or none, swaps nothing out")
    func raiseReclaimsNothing() throws {
        let (space, _) = try makeSpace(memoryPages: 64)
        let group = try space.makeGroup(name: "roomy", memoryLimit: 32 * SwapPage.size)
        let region = try space.makeRegion(bytes: 16 * SwapPage.size, group: group)
        for p in 0..<16 { try region.withPage(p) { fill($0, page: p) } }
        for limit in [16 * SwapPage.size, 20 * SwapPage.size, nil] {
            try space.setMemoryLimit(limit, of: group)
            #expect(group.memoryLimit == limit)
        }
        #expect(group.memoryUsage == 16 * SwapPage.size && group.swapUsage == 0)
        #expect(group[.pswpout] == 0 && group[.limitReclaims] == 0 && space.statistics[.swapOuts] == 0)
    }

    @Test("a negative limit, or a group of another space, is refused and changes nothing")
    func refused() throws {
        let (space, _) = try makeSpace(memoryPages: 16)
        let (other, _) = try makeSpace(memoryPages: 16)
        let group = try space.makeGroup(name: "g", memoryLimit: 8 * SwapPage.size)
        let foreign = try other.makeGroup(name: "g", memoryLimit: 8 * SwapPage.size)
        #expect(throws: SwapError.self) { try space.setMemoryLimit(-1, of: group) }
        #expect(throws: SwapError.self) { try space.setMemoryLimit(nil, of: foreign) }
        #expect(group.memoryLimit == 8 * SwapPage.size && foreign.memoryLimit == 8 * SwapPage.size)
    }
}
