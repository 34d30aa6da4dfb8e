import Foundation
import Testing

@testable import UserSwap

/// Releasing a transparent region while something of the engine still holds its inner region for
/// a moment (a fault hand-over worker finishing with its resolver, reclaim that looked the
/// region up): the window goes back to the table at release, and a region made next may take
/// its slot. The released region must leave every walk over the space's regions with it.
@Suite("Transparent regions: release while the region is still referenced")
struct TransparentReleaseTests {
    @Test(
        "a released transparent region still referenced is gone from the reverse map, and the window that takes its slot checks out",
        arguments: TransparentRegionTests.services)
    func releasedRegionStillReferenced(faults: TransparentRegion.FaultService) throws {
        let (space, _) = try makeSpace(memoryPages: 32)
        var first: TransparentRegion? = try space.makeTransparentRegion(bytes: 4 * SwapPage.size, faults: faults)
        for p in 0..<4 { first!.base.storeBytes(of: UInt64(p + 1), toByteOffset: p * SwapPage.size, as: UInt64.self) }
        let slot = first!.window.slot
        let id = first!.region.id
        // What a worker that has just resolved a fault of the region may still hold.
        let lingering = first!.resolver
        first = nil
        #expect(space.engine.reverseMap.all.contains { $0.id == id } == false, "the released region is still in the reverse map")
        let second = try space.makeTransparentRegion(bytes: 4 * SwapPage.size, faults: faults)
        #expect(second.window.slot == slot, "the new region's window takes the freed slot")
        for p in 0..<3 { second.base.storeBytes(of: UInt64(p + 7), toByteOffset: p * SwapPage.size, as: UInt64.self) }
        TransparentRegionTests.settle(space)
        #expect(space.checkInvariants() == [])
        for p in 0..<3 { #expect(second.base.load(fromByteOffset: p * SwapPage.size, as: UInt64.self) == UInt64(p + 7)) }
        withExtendedLifetime(lingering) {}
    }
}
