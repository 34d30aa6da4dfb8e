import CUserSwap
import Glibc
import Synchronization
import Testing

@testable import UserSwap

/// The three has-cache-bit protocols the kernel used before swap-cache synchronization, told apart by what a racer
/// does when it arrives while another thread is reading the page.
@Suite("Legacy swap-in protocols")
struct LegacyProtocolTests {
    @Test("a one-tick sleep ends at the next tick boundary: at most one tick")
    func atMostOneTick() {
        let tick: UInt64 = 4_000_000
        for _ in 0..<1000 {
            let before = cus_monotonic_ns()
            let deadline = SwapCache.nextTick(.nanoseconds(Int64(tick)))
            let after = cus_monotonic_ns()
            #expect(deadline % tick == 0)
            #expect(deadline > before && deadline <= after + tick)
        }
    }

    /// What racers arriving 50 ms into a 400 ms read do, by protocol.
    struct Outcome {
        var reads = 0
        var sleeps = 0
        var cacheHits = 0
        /// The slowest racer's time, from its start to its page.
        var slowestRacer: Duration = .zero
    }

    static func raceDuringRead(_ sync: SwapInSync) throws -> Outcome {
        let (space, backend) = try makeSpace(memoryPages: 16, sync: sync)
        let region = try space.makeRegion(bytes: SwapPage.size)
        try region.withPage(0) { fill($0, page: 0) }
        try region.swapOut(pages: 0..<1)
        backend.resetReads()
        backend.readDelayMicros.store(400_000, ordering: .relaxed)
        let slowest = Mutex<Duration>(.zero)
        let wrong = Atomic<Int>(0)
        runThreads(4) { t in
            if t > 0 { usleep(50_000) }
            let clock = ContinuousClock()
            let start = clock.now
            do {
                try region.withPage(0, for: .read) { if !matches($0, page: 0) { wrong.add(1, ordering: .relaxed) } }
            } catch { wrong.add(1, ordering: .relaxed) }
            let took = clock.now - start
            if t > 0 { slowest.withLock { $0 = max($0, took) } }
        }
        #expect(wrong.load(ordering: .relaxed) == 0)
        #expect(space.checkInvariants() == [])
        return Outcome(
            reads: backend.totalReads, sleeps: space.statistics[.legacySleeps],
            cacheHits: space.statistics[.cacheHits], slowestRacer: slowest.withLock { $0 })
    }

    @Test(
        "legacy (just before swap-cache synchronization): the folio is in the cache during the read, racers sleep on its lock, not on a tick"
    )
    func seedsParent() throws {
        let outcome = try Self.raceDuringRead(.hasCacheBit(tick: .seconds(2)))
        #expect(outcome.reads == 1)
        #expect(outcome.sleeps == 0, "the only window without a folio closed long before the racers came")
        #expect(outcome.cacheHits == 3)
        #expect(outcome.slowestRacer < .seconds(1))
    }

    @Test("legacy-wq: racers find the bit and no folio, sleep on swapcache_wq, and the insert wakes them before the tick")
    func waitQueue() throws {
        // A tick far longer than the read: only the wake-up can end the sleep in time.
        let outcome = try Self.raceDuringRead(.hasCacheBitWaitQueue(tick: .seconds(60)))
        #expect(outcome.reads == 1)
        #expect(outcome.sleeps >= 3, "each racer slept at least once")
        #expect(outcome.slowestRacer < .seconds(5), "woken by the insert, not by the 60 s tick")
    }

    @Test("legacy-bypass: racers find the bit and no folio and sleep whole ticks until the read is over")
    func bypass() throws {
        let outcome = try Self.raceDuringRead(.hasCacheBitBypass(retryAfter: .milliseconds(4)))
        #expect(outcome.reads == 1)
        // 350 ms of read left when they arrive, 4 ms per sleep: dozens of sleeps each on a quiet
        // machine (18 in all under ThreadSanitizer on a loaded one); at least one each.
        #expect(outcome.sleeps >= 3)
        #expect(outcome.cacheHits == 3, "then they find the folio the read put in the cache")
    }
}
