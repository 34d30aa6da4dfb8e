import Foundation
import Testing

@testable import UserSwap

/// How reclaim learns that a transparent region's page is used: by unmapping it from the
/// application's view, so that its next touch is a minor fault.
@Suite("Transparent regions: access tracking")
struct TransparentAccessTrackingTests {
    /// Touches a few hot pages between streams of cold ones over a 64-page budget, under the
    /// `.frequency` policy, and returns the minor faults of the measured rounds (after a warm-up
    /// that lets the hot pages' use counts grow) and the major faults of the hot pages' rounds.
    static func hotAndCold(faults: TransparentRegion.FaultService, rounds: Int) throws -> (minor: Int, hotMajor: Int, hotPages: Int) {
        let memoryPages = 64, pages = 1024, hot = 8, coldPerRound = 16
        let (space, _) = try makeSpace(memoryPages: memoryPages, swapPages: 1 + 2 * pages, policy: .frequency)
        let region = try space.makeTransparentRegion(bytes: pages * SwapPage.size, faults: faults)
        let bytes = region.base.assumingMemoryBound(to: UInt8.self)
        var cold = hot
        var sum = 0
        var minorBefore = 0
        var hotMajor = 0
        for round in 0..<rounds {
            if round == rounds / 4 { minorBefore = space.statistics[.minorFaults] }
            let majorBefore = space.statistics[.majorFaults]
            for p in 0..<hot { sum &+= Int(bytes[p * SwapPage.size]) }
            if round >= rounds / 4 { hotMajor += space.statistics[.majorFaults] - majorBefore }
            for _ in 0..<coldPerRound {
                sum &+= Int(bytes[cold * SwapPage.size])
                cold = cold + 1 == pages ? hot : cold + 1
            }
        }
        #expect(sum == 0)
        #expect(region.lastFaultError == nil)
        #expect(space.checkInvariants() == [])
        return (space.statistics[.minorFaults] - minorBefore, hotMajor, hot)
    }

    @Test(
        "a page that stays hot is not unmapped again at every pass of reclaim: few minor faults, and it stays in memory",
        arguments: [TransparentRegion.FaultService.handlerThreads(2), .faultingThread])
    func hotPagesStayMapped(faults: TransparentRegion.FaultService) throws {
        // 200 measured rounds of 16 evictions each go round the 64-page list ~200 times; a hot
        // page unmapped at each pass would fault ~200 times.
        let rounds = 200
        let (minor, hotMajor, hot) = try Self.hotAndCold(faults: faults, rounds: rounds * 4 / 3)
        print("access tracking (\(faults)): \(minor) minor faults, \(hotMajor) hot-page major faults, \(hot) hot pages, \(rounds) rounds")
        #expect(minor < hot * rounds / 4, "\(minor) minor faults for \(hot) hot pages over \(rounds) rounds")
        #expect(hotMajor <= hot, "hot pages were evicted \(hotMajor) times")
    }
}
