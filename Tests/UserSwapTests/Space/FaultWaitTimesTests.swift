import Foundation
import Synchronization
import Testing

@testable import UserSwap

/// The time program threads wait in the faults of transparent regions (`faultWaitTimes`, the
/// `faultWaits` and `faultWaitNanoseconds` counters).
@Suite("Fault wait times")
struct FaultWaitTimesTests {
    /// Waits until every fault served so far has been timed: a handler thread records a fault's
    /// wait just after it wakes the faulting thread, which may already be reading the counters.
    static func settle(_ space: SwapSpace) {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let s = space.statistics
            if s[.faultWaits] == s[.majorFaults] + s[.minorFaults] { return }
            usleep(1000)
        }
    }

    @Test("a bucket holds the waits from its lower bound to its upper bound, four buckets per power of two")
    func buckets() {
        #expect((0..<4).map { FaultWaitTimes.bucket(of: UInt64($0)) } == [0, 1, 2, 3])
        #expect(FaultWaitTimes.bucket(of: 4) == 4 && FaultWaitTimes.bucket(of: 7) == 7 && FaultWaitTimes.bucket(of: 8) == 8)
        // 1000 ns lies in [896, 1024): bucket 35.
        #expect(FaultWaitTimes.bucket(of: 896) == 35 && FaultWaitTimes.bucket(of: 1000) == 35 && FaultWaitTimes.bucket(of: 1023) == 35)
        #expect(FaultWaitTimes.upperBound(ofBucket: 35) == 1024 && FaultWaitTimes.bucket(of: 1024) == 36)
        #expect(FaultWaitTimes.bucket(of: UInt64.max) == FaultWaitTimes.bucketCount - 1)
        #expect(FaultWaitTimes.upperBound(ofBucket: FaultWaitTimes.bucketCount - 1) == Int.max)
        // Every bucket starts where the one before it ends (up to where the bounds pass Int.max).
        for index in 4..<(FaultWaitTimes.bucketCount - 1) {
            let end = FaultWaitTimes.upperBound(ofBucket: index)
            guard end < Int.max else { break }
            #expect(FaultWaitTimes.bucket(of: UInt64(end - 1)) == index && FaultWaitTimes.bucket(of: UInt64(end)) == index + 1)
        }
    }

    @Test("percentiles come from the buckets, within 25 % above; the mean from the sum")
    func percentiles() {
        var buckets = Array(repeating: 0, count: FaultWaitTimes.bucketCount)
        buckets[FaultWaitTimes.bucket(of: 10_000)] = 98  // 98 waits of 10 µs
        buckets[FaultWaitTimes.bucket(of: 2_000_000)] = 2  // 2 of 2 ms
        let times = FaultWaitTimes(count: 100, nanoseconds: 98 * 10_000 + 2 * 2_000_000, buckets: buckets)
        #expect((10_000...12_500).contains(times.percentileNanoseconds(0.5)))
        #expect((10_000...12_500).contains(times.percentileNanoseconds(0.98)))
        #expect((2_000_000...2_500_000).contains(times.percentileNanoseconds(0.99)))
        #expect(times.meanNanoseconds == 49_800)
        #expect(FaultWaitTimes.zero.percentileNanoseconds(0.99) == 0 && FaultWaitTimes.zero.meanNanoseconds == 0)
        #expect(times.subtracting(times) == .zero)
    }

    @Test("no fault, no wait: pins that read from swap are not faults", arguments: TransparentRegionTests.services)
    func zeroWithoutFaults(faults: TransparentRegion.FaultService) throws {
        let (space, _) = try makeSpace(memoryPages: 32)
        let transparent = try space.makeTransparentRegion(bytes: 8 * SwapPage.size, faults: faults)
        let region = try space.makeRegion(bytes: 8 * SwapPage.size)
        for page in 0..<8 {
            let pin = try region.pin(page)
            fill(pin.bytes, page: page)
        }
        #expect(try region.swapOut(pages: 0..<8) == 8)
        for page in 0..<8 {
            let pin = try region.pin(page, for: .read)
            #expect(matches(pin.bytes, page: page))
        }
        #expect(space.statistics[.swapIns] >= 8)
        #expect(space.statistics.faultWaitTimes == .zero)
        #expect(space.statistics[.faultWaitNanoseconds] == 0)
        withExtendedLifetime(transparent) {}
    }

    @Test("every fault is timed, and a major fault waits at least as long as its read", arguments: TransparentRegionTests.services)
    func growsWithMajorFaults(faults: TransparentRegion.FaultService) throws {
        let pages = 8
        let (space, backend) = try makeSpace(memoryPages: 32)
        let region = try space.makeTransparentRegion(bytes: pages * SwapPage.size, faults: faults)
        // One read per fault: no readahead takes later pages' reads off their faults.
        try region.advise(.random)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        for p in 0..<pages { words[p * 512] = UInt64(p + 1) }
        Self.settle(space)
        let first = space.statistics.faultWaitTimes
        #expect(first.count == space.statistics[.majorFaults] + space.statistics[.minorFaults])
        #expect(first.count >= pages && first.nanoseconds > 0)
        #expect(first.buckets.reduce(0, +) == first.count)

        #expect(try region.swapOut(pages: 0..<pages) == pages)
        let majorBefore = space.statistics[.majorFaults]
        backend.readDelayMicros.store(2000, ordering: .relaxed)
        var sum: UInt64 = 0
        for p in 0..<pages { sum += words[p * 512] }
        #expect(sum == UInt64(pages * (pages + 1) / 2))
        Self.settle(space)
        let waited = space.statistics.faultWaitTimes.subtracting(first)
        #expect(space.statistics[.majorFaults] - majorBefore >= pages)
        #expect(waited.count >= pages)
        #expect(waited.nanoseconds >= pages * 2_000_000, "each major fault waits for its 2 ms read")
        #expect(waited.percentileNanoseconds(0.5) >= 2_000_000)
        #expect(space.statistics[.faultWaits] == space.statistics[.majorFaults] + space.statistics[.minorFaults])
    }
}
