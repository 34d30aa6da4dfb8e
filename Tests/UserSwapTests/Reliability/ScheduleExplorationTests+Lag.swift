import Testing

@testable import UserSwap

/// The explorer decides every interleaving itself: how late the scheduler's own thread wakes
/// (a loaded machine) must not change what it explores. A legacy racer that finds the has-cache
/// bit taken sleeps a tick and looks again; were that sleep uncontrolled, a late scheduler would
/// find the racer back already, pick it again while the bit's holder stays paused, and each run
/// would turn into a retry loop as long as the machine is slow.
extension ScheduleExplorationTests {
    @Test(
        "a scheduler that wakes late explores the same legacy interleavings",
        arguments: [SwapInSync.hasCacheBitBypass(retryAfter: .microseconds(200)), .hasCacheBit(tick: .microseconds(200))])
    func lateSchedulerSameInterleavings(sync: SwapInSync) throws {
        func twoFaulters(lag: Duration) throws -> Outcome {
            try Self.explore(
                "2 faulters, scheduler lag \(lag)", sync: sync, budget: 300, lag: lag, setUp: Self.swappedPage,
                threads: { _, region, _, errors in (0..<2).map { _ in Self.faulter(region, errors) } },
                check: { _, _, backend in backend.totalReads == 1 ? [] : ["\(backend.totalReads) device reads of one entry"] })
        }
        let prompt = try twoFaulters(lag: .zero)
        let late = try twoFaulters(lag: .microseconds(500))
        #expect(prompt.failures == [] && late.failures == [])
        // Every interleaving explored within the budget, and the same number each time.
        #expect(prompt.runs < 300)
        #expect(late.runs == prompt.runs)
    }
}
