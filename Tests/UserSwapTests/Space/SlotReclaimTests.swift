import Testing
import UserSwapCompression

@testable import UserSwap

/// Slots that only the swap cache holds (clean copies of pages in memory): reclaimed by the
/// allocator when swap runs out, and given back after swap-in when swap, or the group's swap,
/// is over half full.
@Suite("Cache-only slot reclaim")
struct SlotReclaimTests {
    /// Configurations: the root group, or a group with a swap limit that the swap-out fits.
    enum Owner: String, CaseIterable, CustomStringConvertible {
        case root, limitedGroup
        var description: String { rawValue }
    }

    @Test(
        "a device full of clean cached pages still takes a swap-out: the allocator reclaims their slots",
        arguments: bothProtocols, Owner.allCases)
    func fullOfCleanCachedPages(sync: SwapInSync, owner: Owner) throws {
        let (space, _) = try makeSpace(memoryPages: 1024, swapPages: 1 + 512, sync: sync)
        let device = space.devices[0]
        let group = owner == .root ? nil : try space.makeGroup(name: "g", swapLimit: 512 * SwapPage.size)
        let cached = try space.makeRegion(bytes: 200 * SwapPage.size, group: group)
        try cached.advise(.random)
        for p in 0..<200 { try cached.withPage(p) { fill($0, page: p, generation: 1) } }
        #expect(try cached.swapOut(pages: 0..<200) == 200)
        // Swapped back in while swap is mostly free: each page keeps its clean copy.
        for p in 0..<200 { try cached.withPage(p, for: .read) { #expect(matches($0, page: p, generation: 1)) } }
        #expect(device.usedPages == 200, "the clean copies hold their slots")
        let fresh = try space.makeRegion(bytes: 400 * SwapPage.size, group: group)
        for p in 0..<400 { try fresh.withPage(p) { fill($0, page: p, generation: 2) } }
        // 312 slots are free; the other 88 must come from the clean copies.
        #expect(try fresh.swapOut(pages: 0..<400) == 400)
        #expect(space.statistics[.slotReclaims] >= 88)
        #expect(device.usedPages <= 512)
        if let group { #expect(group.swapUsage == 400 * SwapPage.size) }
        #expect(space.checkInvariants() == [])
        // The pages that lost their copy are dirty: swapped out again, they are written.
        for p in 0..<200 { try cached.withPage(p, for: .read) { #expect(matches($0, page: p, generation: 1)) } }
        for p in 0..<400 { try fresh.withPage(p, for: .read) { #expect(matches($0, page: p, generation: 2)) } }
        try fresh.discard(pages: 0..<400)
        #expect(try cached.swapOut(pages: 0..<200) == 200)
        for p in 0..<200 { try cached.withPage(p, for: .read) { #expect(matches($0, page: p, generation: 1)) } }
        #expect(space.checkInvariants() == [])
    }

    @Test("swap-in keeps a page's slot while the space's swap is mostly free, even on a device over half full")
    func spaceTotalDecides() throws {
        let (space, _) = try makeSpace(memoryPages: 512, swapPages: 1 + 512)
        let small = space.devices[0]
        try space.swapOn(.memory(bytes: (1 + 4 * 512) * SwapPage.size, priority: -1))
        let region = try space.makeRegion(bytes: 300 * SwapPage.size)
        try region.advise(.random)
        for p in 0..<300 { try region.withPage(p) { fill($0, page: p) } }
        try region.swapOut(pages: 0..<300)
        #expect(small.usedPages == 300, "the higher-priority device took every page")
        for p in 0..<300 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(small.usedPages == 300, "300 of 2,560 slots in use: every clean copy stays")
        #expect(space.checkInvariants() == [])
    }

    @Test("swap-in gives the slot back while the group uses half its swap limit or more")
    func groupSwapFullness() throws {
        let (space, _) = try makeSpace(memoryPages: 256)
        let group = try space.makeGroup(name: "g", swapLimit: 100 * SwapPage.size)
        let region = try space.makeRegion(bytes: 80 * SwapPage.size, group: group)
        try region.advise(.random)
        for p in 0..<80 { try region.withPage(p) { fill($0, page: p) } }
        try region.swapOut(pages: 0..<80)
        #expect(group.swapUsage == 80 * SwapPage.size)
        for p in 0..<80 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        // The k-th swap-in leaves 80 - k pages charged: at 50 or more it frees its slot (k ≤ 30).
        #expect(space.devices[0].usedPages == 50)
        #expect(group.swapUsage == 0)
        #expect(space.checkInvariants() == [])
    }

    /// Devices by whether their reads are memory copies on the caller.
    enum DeviceKind: String, CaseIterable, CustomStringConvertible {
        case memory, sealedMemory, compressedMemory, testBackend, file, compressedFile
        var description: String { rawValue }
        var isSynchronous: Bool { self == .memory || self == .sealedMemory || self == .compressedMemory }
    }

    @Test(
        "swap-in from a synchronous device always gives the slot back; other devices keep it while swap is mostly free",
        arguments: DeviceKind.allCases)
    func synchronousDeviceFrees(kind: DeviceKind) throws {
        let slots = 1 + 4 * 512
        let device: SwapSpace.DeviceConfiguration =
            switch kind {
            case .memory: .memory(bytes: slots * SwapPage.size)
            case .sealedMemory: .backend(MemoryBackend(pageCount: slots))
            case .compressedMemory: .backend(try CompressedTier(lower: MemoryBackend(pageCount: slots), poolBytes: 1 << 20))
            case .testBackend: .backend(TestBackend(pageCount: slots))
            case .file: .temporary(size: Int64(slots * SwapPage.size))
            case .compressedFile:
                .backend(
                    try CompressedTier(lower: try SwapFile.openTemporary(bytes: Int64(slots * SwapPage.size)).backend, poolBytes: 1 << 20))
            }
        let space = try SwapSpace(
            .init(
                memory: 512 * SwapPage.size, devices: [device], backgroundReclaim: false,
                encryption: kind == .sealedMemory ? .randomKey : .none))
        #expect(space.devices[0].isSynchronous == kind.isSynchronous)
        let region = try space.makeRegion(bytes: 100 * SwapPage.size)
        try region.advise(.random)
        for p in 0..<100 { try region.withPage(p) { fill($0, page: p) } }
        #expect(try region.swapOut(pages: 0..<100) == 100)
        #expect(space.devices[0].usedPages == 100)
        for p in 0..<100 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        // 100 of 2,047 slots: only the device kind decides.
        #expect(space.devices[0].usedPages == (kind.isSynchronous ? 0 : 100))
        #expect(space.checkInvariants() == [])
    }
}
