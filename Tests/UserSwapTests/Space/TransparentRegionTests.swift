import Foundation
import Synchronization
import Testing
@testable import UserSwap

/// Transparent regions: plain loads and stores, served through userfaultfd by the same engine.
@Suite("Transparent regions: plain memory that swaps")
struct TransparentRegionTests {
    /// The word plain code writes at word `i` of page `p` in round `g`.
    static func word(_ p: Int, _ i: Int, _ g: Int) -> UInt64 { UInt64(p) &* 0x9e37_79b9 &+ UInt64(i) &+ UInt64(g) << 48 }

    @Test("a plain loop over 4× the budget, on several threads, reads back every byte")
    func plainLoop() throws {
        let pages = 256
        let (space, _) = try makeSpace(memoryPages: 64, swapPages: 1 + 2 * 512, backgroundReclaim: true)
        let region = try space.makeTransparentRegion(bytes: pages * SwapPage.size)
        let base = UInt(bitPattern: region.base)
        let threads = 4
        let bad = Atomic<Int>(0)
        // Writes: each thread its own stripe of pages, every word.
        runThreads(threads) { t in
            let words = UnsafeMutablePointer<UInt64>(bitPattern: base)!
            for p in stride(from: t, to: pages, by: threads) {
                for i in 0..<512 { words[p * 512 + i] = Self.word(p, i, 1) }
            }
        }
        #expect(space.residentFrames <= 64)
        // Reads: every thread checks every page, in a different order.
        runThreads(threads) { t in
            let words = UnsafeMutablePointer<UInt64>(bitPattern: base)!
            for k in 0..<pages {
                let p = (k * 7 + t * 61) % pages
                for i in 0..<512 where words[p * 512 + i] != Self.word(p, i, 1) { bad.add(1, ordering: .relaxed) }
            }
        }
        #expect(bad.load(ordering: .relaxed) == 0)
        #expect(space.statistics[.swapOuts] > 0 && space.statistics[.swapIns] > 0)
        #expect(space.statistics[.majorFaults] > 0)
        #expect(space.residentFrames <= 64)
        #expect(region.lastFaultError == nil)
        #expect(space.checkInvariants() == [])
    }
}
