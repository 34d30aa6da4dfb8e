import Synchronization
import Testing

@testable import UserSwap

/// A fault reads its page-table entry without a lock. Before it inserts a folio for the entry,
/// its page may be discarded, the slot freed, and the slot given to another region's page — of
/// another memory group — when that page goes out. The late faulter's folio is charged to its
/// own group; if it stayed in the swap cache for the reused slot, the other page would later
/// be swapped out (or mapped) through it and its swap charged to the wrong group.
extension ScheduleExplorationTests {
    /// Picks the first thread once, then the second whenever it can run: the first stops at its
    /// first yield point (a fault: after it read its page-table entry, before its folio goes in)
    /// while the second runs to its end.
    final class FirstThenSecond: @unchecked Sendable {
        private var started = false

        func choose(_ runnable: [Int]) -> Int {
            defer { started = true }
            if !started, runnable.contains(0) { return 0 }
            return runnable.contains(1) ? 1 : runnable[0]
        }
    }

    @Test(
        "a fault racing the reuse of its slot by another group's page leaves that page charged to its own group",
        arguments: allProtocols)
    func slotReuseByAnotherGroup(sync: SwapInSync) throws {
        // One cluster of data slots beside the header's: the faulter's freed slot is the next
        // one the other region takes once its first page has filled the small second cluster.
        let (space, _) = try makeSpace(memoryPages: 16, swapPages: 1 + 512, sync: sync)
        let group = try space.makeGroup(name: "other")
        let other = try space.makeRegion(bytes: 2 * SwapPage.size, group: group)
        for page in 0..<2 { try other.withPage(page) { fill($0, page: 1 + page) } }
        let region = try Self.swappedPage(space)
        let entry = region.pte(0).swapEntry
        let errors = ErrorLog()
        let finished = runControlled(
            [
                {
                    do {
                        try region.withPage(0, for: .read) { bytes in
                            if !matches(bytes, page: 0) && !bytes.allSatisfy({ $0 == 0 }) { errors.add("wrong bytes mapped") }
                        }
                    } catch { errors.add("unexpected error \(error)") }
                },
                {
                    do {
                        try region.discard(pages: 0..<1)
                        try other.swapOut(pages: 0..<2)
                    } catch { errors.add("unexpected error \(error)") }
                },
            ], choose: FirstThenSecond().choose)
        try #require(finished, "threads hung")
        #expect(errors.all == [])
        // The race needs the slot reused; a run in which it was not would prove nothing.
        try #require(
            (0..<2).contains { other.pte($0) == .swap(entry) }, "the other region did not get the faulter's slot \(entry)")
        // A copy of the other region's page left in the swap cache goes out now: its swap is
        // charged to the group of the folio that held it.
        try other.swapOut(pages: 0..<2)
        #expect(space.checkInvariants() == [])
        #expect(group.swapUsage == 2 * SwapPage.size)
        for page in 0..<2 {
            try other.withPage(page, for: .read) { #expect(matches($0, page: 1 + page), "page \(page) of the other region") }
        }
        try region.withPage(0, for: .read) { #expect($0.allSatisfy { $0 == 0 }, "the discarded page reads as zeros") }
    }
}
