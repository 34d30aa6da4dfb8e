import Synchronization
import Testing

@testable import UserSwap

/// Swap-outs that meet a swapoff in progress: the device being removed takes no new pages, so a
/// swap-out that finds no other device fails with `.swapFull` — and says why, without counting
/// the leaving device's free slots as room.
extension ScheduleExplorationTests {
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
}
