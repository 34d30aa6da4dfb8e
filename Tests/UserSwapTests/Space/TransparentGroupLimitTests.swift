import CUserSwap
import Foundation
import Testing

@testable import UserSwap

/// A transparent region in a memory group at its limit: a fault charges the group, which
/// reclaims from itself and the groups nested in it, as the kernel's memcg does, and fails only
/// when nothing more can go — then the faulting thread gets SIGBUS (a plain access has no other
/// way to fail). The legacy bypass protocol, a swap file on io_uring and handler threads: the
/// setup where a model first saw such a fault fail.
@Suite("Transparent regions in a group at its limit")
struct TransparentGroupLimitTests {
    static func makeSpace() throws -> SwapSpace {
        try SwapSpace(
            .init(
                memory: 64 * SwapPage.size, devices: [.temporary(size: Int64((1 + 1024) * SwapPage.size))],
                sync: .hasCacheBitBypass(retryAfter: .microseconds(200)), reclaimPolicy: .workingset, backgroundReclaim: false,
                encryption: .none, ioEngine: .ioUring, ioOptions: IOEngineOptions(readsInCaller: true)))
    }

    /// A group `a` with a transparent region of 16 pages, and `a/b` with an explicit one of 24
    /// pages, every page written: 40 pages charged to `a`.
    static func populate(_ space: SwapSpace) throws -> (MemoryGroup, TransparentRegion, Region) {
        let a = try space.makeGroup(name: "a")
        let b = try space.makeGroup(name: "a/b", parent: a)
        let region = try space.makeTransparentRegion(bytes: 16 * SwapPage.size, group: a, faults: .handlerThreads(2))
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        for p in 0..<16 { words[p * 512] = UInt64(p) + 1 }
        let explicit = try space.makeRegion(bytes: 24 * SwapPage.size, group: b)
        for p in 0..<24 { try explicit.withPage(p, for: .write) { fill($0, page: p) } }
        return (a, region, explicit)
    }

    @Test("a fault in a group whose limit was lowered below its usage reclaims the difference, from nested groups too")
    func loweredLimit() throws {
        let space = try Self.makeSpace()
        let (a, region, explicit) = try Self.populate(space)
        #expect(a.memoryUsage == 40 * SwapPage.size)
        // The limit stored alone (`SwapSpace.setMemoryLimit` would reclaim at once): the fault
        // is what reclaims here.
        a.memoryLimit = 8 * SwapPage.size
        try region.swapOut(pages: 15..<16)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        var value: UInt64 = 0
        #expect(cus_probe_load(words + 15 * 512, &value) == 0 && value == 16)
        #expect(region.lastFaultError == nil)
        #expect(a.memoryUsage <= 8 * SwapPage.size)
        for p in 0..<16 { #expect(cus_probe_load(words + p * 512, &value) == 0 && value == UInt64(p) + 1) }
        for p in 0..<24 { try explicit.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.checkInvariants() == [])
    }

    @Test("when swap limits cannot take what a lowered limit asks, the fault gets SIGBUS naming the group; the data stays")
    func swapLimitStopsReclaim() throws {
        let space = try Self.makeSpace()
        let (a, region, explicit) = try Self.populate(space)
        // 40 pages charged, 8 allowed: 33 must go for one more, and swap takes 16.
        a.swapLimit = 16 * SwapPage.size
        a.memoryLimit = 8 * SwapPage.size  // stored alone, as above
        try region.swapOut(pages: 15..<16)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        var value: UInt64 = 0
        #expect(cus_probe_load(words + 15 * 512, &value) == SIGBUS)
        let error = try #require(region.lastFaultError)
        #expect(error.code == .outOfMemory && error.message.contains("memory group a "), "\(error)")
        #expect(a.swapUsage + a.swapReservedUsage == 16 * SwapPage.size)
        // With room in swap, the same fault goes through, and nothing was lost.
        a.swapLimit = nil
        #expect(cus_probe_load(words + 15 * 512, &value) == 0 && value == 16)
        #expect(a.memoryUsage <= 8 * SwapPage.size)
        for p in 0..<16 { #expect(cus_probe_load(words + p * 512, &value) == 0 && value == UInt64(p) + 1) }
        for p in 0..<24 { try explicit.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.checkInvariants() == [])
    }
}
