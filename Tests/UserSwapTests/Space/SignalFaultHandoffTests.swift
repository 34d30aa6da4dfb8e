import Foundation
import Testing

@testable import UserSwap

/// The faults a faulting thread's SIGBUS handler hands to the engine's workers, counted by
/// reason (`SignalFaultHandoff.Reason`).
@Suite("Signal fault hand-over")
struct SignalFaultHandoffTests {
    /// Every hand-over counter of `s`, by reason, and their sum.
    static func handoffs(_ s: SwapStatistics) -> (noFrame: Int, groupLimit: Int, device: Int, error: Int, other: Int, total: Int) {
        let parts = (s[.handoffsNoFrame], s[.handoffsGroupLimit], s[.handoffsDevice], s[.handoffsError], s[.handoffsOther])
        return (parts.0, parts.1, parts.2, parts.3, parts.4, parts.0 + parts.1 + parts.2 + parts.3 + parts.4)
    }

    @Test("a device that cannot be read in a signal handler hands every swap-in over, and nothing else")
    func deviceHandsSwapInsOver() throws {
        let pages = 16
        // The test device does not read in signal handlers; the budget holds every page.
        let (space, _) = try makeSpace(memoryPages: 64)
        let region = try space.makeTransparentRegion(bytes: pages * SwapPage.size, faults: .faultingThread)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        for p in 0..<pages { words[p * 512] = UInt64(p) + 1 }
        let s = space.statistics
        #expect(s[.signalFaults] == pages, "first touches: one fault each, all taken by the handler")
        #expect(Self.handoffs(s).total == 0, "first touches with frames free stay in the handler: \(Self.handoffs(s))")
        #expect(s[.handoffWaitNanoseconds] == 0)
        try region.swapOut(pages: 0..<pages)
        var wrong = 0
        for p in 0..<pages where words[p * 512] != UInt64(p) + 1 { wrong += 1 }
        #expect(wrong == 0)
        let h = Self.handoffs(s)
        #expect(h.device == pages, "one hand-over per swapped-out page touched: \(h)")
        #expect(h.total == h.device, "\(h)")
        #expect(s[.handoffWaitNanoseconds] > 0, "the faulting thread waited for the workers")
        #expect(s[.signalFaults] == s[.majorFaults] + s[.minorFaults], "every fault went through the handler")
        #expect(s[.handoffWakeups] <= h.total + s[.handoffsReadahead])
        #expect(space.checkInvariants() == [])
    }

    @Test("a full budget without a background reclaimer hands faults over for frames; the rest are read in the handler")
    func noFrameHandsOver() throws {
        let budget = 16, pages = 64
        let backend = MemoryBackend(pageCount: 1 + 4 * 512)
        let space = try SwapSpace(
            .init(memory: budget * SwapPage.size, devices: [.backend(backend)], backgroundReclaim: false, encryption: .none))
        let region = try space.makeTransparentRegion(bytes: pages * SwapPage.size, faults: .faultingThread)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        for p in 0..<pages { words[p * 512] = UInt64(p) &* 7 &+ 1 }
        var wrong = 0
        for p in 0..<pages where words[p * 512] != UInt64(p) &* 7 &+ 1 { wrong += 1 }
        #expect(wrong == 0)
        let s = space.statistics
        let h = Self.handoffs(s)
        print("no-frame hand-overs: \(s[.signalFaults]) faults, \(h), \(s[.swapIns]) swap-ins, \(s[.handoffWakeups]) workers woken")
        // Nobody frees frames but a worker's direct reclaim: each hand-over frees a batch, whose
        // frames the next faults take in the handler, until the pool is empty again.
        #expect(h.noFrame >= 1, "\(h)")
        #expect(h.device == 0 && h.groupLimit == 0 && h.error == 0, "\(h)")
        #expect(h.noFrame < s[.signalFaults], "some faults found a frame: \(h) of \(s[.signalFaults])")
        #expect(s[.swapIns] > 0 && s[.signalFaults] == s[.majorFaults] + s[.minorFaults])
        #expect(space.checkInvariants() == [])
    }

    @Test("a region's group at its limit hands faults over as such")
    func groupLimitHandsOver() throws {
        let backend = MemoryBackend(pageCount: 1 + 4 * 512)
        let space = try SwapSpace(.init(memory: 64 * SwapPage.size, devices: [.backend(backend)], encryption: .none))
        let group = try space.makeGroup(name: "small", memoryLimit: 8 * SwapPage.size)
        let pages = 32
        let region = try space.makeTransparentRegion(bytes: pages * SwapPage.size, group: group, faults: .faultingThread)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        for p in 0..<pages { words[p * 512] = UInt64(p) + 3 }
        var wrong = 0
        for p in 0..<pages where words[p * 512] != UInt64(p) + 3 { wrong += 1 }
        #expect(wrong == 0)
        let h = Self.handoffs(space.statistics)
        #expect(h.groupLimit >= 1, "\(h)")
        #expect(h.device == 0 && h.error == 0, "\(h)")
        #expect(group.memoryUsage <= 8 * SwapPage.size)
        #expect(space.checkInvariants() == [])
    }
}
