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
        let (space, _) = try makeSpace(memoryPages: 16, swapPages: 1 + 512, sync: sync)
        let device = space.devices[0]
        let region = try Self.swappedPage(space)
        let entry = region.pte(0).swapEntry
        // Every other slot taken: once the faulter's slot is freed it is the only one the other
        // region's page can get, whichever cluster its thread's allocation hint points at (a
        // thread sharing the setup thread's hint shard would continue after the faulter's slot).
        let fillerPages = device.freePages
        let filler = try space.makeRegion(bytes: fillerPages * SwapPage.size)
        for chunk in stride(from: 0, to: fillerPages, by: 8) {
            let pages = chunk..<min(chunk + 8, fillerPages)
            for page in pages { try filler.withPage(page) { fill($0, page: 2 + page) } }
            try filler.swapOut(pages: pages)
        }
        try #require(device.freePages == 0)
        let group = try space.makeGroup(name: "other")
        let other = try space.makeRegion(bytes: SwapPage.size, group: group)
        try other.withPage(0) { fill($0, page: 1) }
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
                        try other.swapOut(pages: 0..<1)
                    } catch { errors.add("unexpected error \(error)") }
                },
            ], choose: FirstThenSecond().choose)
        try #require(finished, "threads hung")
        #expect(errors.all == [])
        // The race needs the slot reused; a run in which it was not would prove nothing.
        try #require(other.pte(0) == .swap(entry), "the other region did not get the faulter's slot \(entry)")
        // A copy of the other region's page left in the swap cache goes out now: its swap is
        // charged to the group of the folio that held it.
        try other.swapOut(pages: 0..<1)
        #expect(space.checkInvariants() == [])
        #expect(group.swapUsage == SwapPage.size)
        try other.withPage(0, for: .read) { #expect(matches($0, page: 1), "the other region's page") }
        try region.withPage(0, for: .read) { #expect($0.allSatisfy { $0 == 0 }, "the discarded page reads as zeros") }
    }
}
