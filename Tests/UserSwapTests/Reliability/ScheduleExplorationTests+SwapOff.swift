import Synchronization
import Testing

@testable import UserSwap

/// Swap-outs and allocations that meet a swapoff in progress: the device being removed takes no
/// new pages, so a swap-out that finds no other device fails with `.swapFull` — and says why,
/// without counting the leaving device's free slots as room; and swapoff removes the device only
/// once no allocation is still on its way into it.
extension ScheduleExplorationTests {
    /// Counts runs of an exploration, from the test's threads.
    final class Tally: Sendable {
        private let value = Atomic<Int>(0)
        // Relaxed: read once the run's threads have finished.
        func add() { value.add(1, ordering: .relaxed) }
        var count: Int { value.load(ordering: .relaxed) }  // Relaxed: as above
    }

    @Test("a swap-out while swapoff empties the only device fails as swap full and names the swapoff, not its free slots")
    func swapOutDuringSwapOff() throws {
        let (space, _) = try makeSpace(memoryPages: 16)
        let device = space.devices[0]
        // A page on the device, so that the swapoff has a page to bring back.
        let leaving = try Self.swappedPage(space)
        let region = try space.makeRegion(bytes: SwapPage.size)
        try region.withPage(0) { fill($0, page: 1) }
        let failure = Mutex<SwapError?>(nil)
        let errors = ErrorLog()
        // The swapoff stops at its first yield point (allocation on the device already stopped,
        // its page not brought back yet) while the swap-out runs.
        let finished = runControlled(
            [
                {
                    do { try space.swapOff(device) } catch { errors.add("swapoff failed: \(error)") }
                },
                {
                    do {
                        try region.swapOut(pages: 0..<1)
                        errors.add("a page went out to a device being removed")
                    } catch let e as SwapError {
                        failure.withLock { $0 = e }
                    } catch { errors.add("unexpected error \(error)") }
                },
            ], choose: FirstThenSecond().choose)
        try #require(finished, "threads hung")
        #expect(errors.all == [])
        let error = try #require(failure.withLock { $0 })
        #expect(error.code == .swapFull)
        #expect(error.message.contains("0 slots free on the 0 device(s) in service"), "\(error.message)")
        #expect(error.message.contains("1 device(s) being removed by swapoff"), "\(error.message)")
        #expect(space.devices.isEmpty)
        try leaving.withPage(0, for: .read) { #expect(matches($0, page: 0)) }
        try region.withPage(0, for: .read) { #expect(matches($0, page: 1)) }
        #expect(space.checkInvariants() == [])
    }

    /// Swapoff may find the device empty while an allocation that saw allocation allowed under
    /// its cluster lock has not counted its slot yet: it must wait for that allocation (the
    /// device's `users`) before it removes the device, then bring the slot back. The planted bug
    /// (`TestHooks.swapOffSkipsUsersWait`) skips the wait; it shows only when the swapoff runs
    /// while the allocation is paused under its cluster lock (`YieldPoint.allocationLocked`),
    /// which the swapoff, finding the device empty, never needs. Its clean twin, the same
    /// exploration, finds nothing.
    ///
    /// The allocation takes a slot directly rather than for a swap-out: a swap-out given a slot
    /// on a removed device traps when it looks the device up, which would end the test process;
    /// a slot left on a removed device is state the check can see.
    @Test(
        "the planted swapoff bug — removing a device without waiting for allocations on their way in — is caught, and only with the plant",
        arguments: [false, true])
    func plantedSwapOffBug(planted: Bool) throws {
        // Runs in which the allocation took its slot on the device after swapoff had stopped
        // allocation on it: the window the plant needs.
        let windowRuns = Tally()
        var leaving: SwapDevice?
        let outcome = try Self.explore(
            "swapoff against an allocation\(planted ? " (planted)" : "")", sync: .swapCache, budget: 50, maxFailures: 1,
            pausesUnderClusterLock: true,
            setUp: { space in
                space.engine.testHooks.swapOffSkipsUsersWait.store(planted, ordering: .relaxed)
                leaving = space.devices[0]
                return try space.makeRegion(bytes: SwapPage.size)
            },
            threads: { space, _, _, errors in
                let device = space.devices[0]
                return [
                    {
                        // Fails as swap full when the swapoff stopped allocation first.
                        guard let entry = try? space.engine.devices.allocate() else { return }
                        if entry.type == device.type && !device.writeOK.load(ordering: .acquiring) { windowRuns.add() }
                        // The slot goes back to its device, unless the device is gone.
                        space.engine.devices.device(for: entry)?.put(entry)
                    },
                    {
                        do { try space.swapOff(device) } catch { errors.add("swapoff failed: \(error)") }
                    },
                ]
            },
            check: { space, _, _ in
                let device = try #require(leaving)
                if space.devices.contains(where: { $0 === device }) { return ["the device is still in service"] }
                return device.usedPages == 0 ? [] : ["\(device.usedPages) slot(s) allocated on a removed device"]
            })
        if planted {
            #expect(!outcome.failures.isEmpty, "the explorer missed the planted swapoff bug in \(outcome.runs) interleavings")
            #expect(outcome.failures.allSatisfy { $0.contains("1 slot(s) allocated on a removed device") }, "\(outcome.failures)")
            print("planted swapoff bug caught after \(outcome.runs) interleavings: \(outcome.failures.first ?? "-")")
        } else {
            #expect(outcome.failures == [])
            #expect(outcome.runs >= 3)
            #expect(windowRuns.count > 0, "no run reached the window in which the plant shows")
            print(
                "swapoff clean twin: \(windowRuns.count) of \(outcome.runs) interleavings had the allocation take its slot after swapoff stopped allocation"
            )
        }
    }
}
