import Foundation
import Synchronization
import Testing
import UserSwapTestSupport

@testable import UserSwap

@Suite("Prefetch")
struct PrefetchTests {
    /// A space whose reads go through a thread-pool engine (so a batch's reads are in flight
    /// while the caller goes on) over `backend`, with `pages` written and then swapped out one
    /// by one in a shuffled order, so that neighbouring pages sit in scattered slots.
    static func scattered(
        _ pages: Int, over backend: any SwapBackend, memoryPages: Int? = nil, seed: UInt64 = 21
    ) throws -> (SwapSpace, Region) {
        let space = try SwapSpace(
            .init(
                memory: (memoryPages ?? 4 * pages) * SwapPage.size, devices: [.backend(backend)],
                backgroundReclaim: false, encryption: .none, ioEngine: .threadPool))
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }
        var rng = SeededRandom(seed: seed)
        for p in Array(0..<pages).shuffled(using: &rng) { try region.swapOut(pages: p..<(p + 1)) }
        return (space, region)
    }

    /// The runs of consecutive slots `pages` make (what one batch reads in one request each).
    static func runs(_ region: Region, _ pages: some Sequence<Int>) -> [[Int]] {
        let bySlot = Set(pages).map { (slot: region.pte($0).swapEntry.offset, page: $0) }.sorted { $0.slot < $1.slot }
        var runs: [[Int]] = []
        var last = -2
        for s in bySlot {
            if s.slot == last + 1 { runs[runs.count - 1].append(s.page) } else { runs.append([s.page]) }
            last = s.slot
        }
        return runs
    }

    @Test("a batch of scattered swapped-out pages goes to the device in one submission, each page read once")
    func oneSubmission() throws {
        let backend = TestBackend(pageCount: 1 + 4 * 512)
        let (space, region) = try Self.scattered(256, over: backend)
        var rng = SeededRandom(seed: 5)
        let chosen = Array(Array(0..<256).shuffled(using: &rng).prefix(48))
        let runs = Self.runs(region, chosen)
        #expect(runs.count > 24, "the pages are scattered: \(runs.count) runs for 48 pages")
        backend.resetReads()
        backend.memory.resetCounters()
        let stats = space.statistics
        let (submissions, requests) = (stats[.ioSubmissions], stats[.ioReads])
        #expect(try region.prefetch(pages: chosen) == 48)
        space.engine.cache.asyncReads.waitUntilIdle()
        #expect(stats[.ioSubmissions] - submissions == 1, "\(stats[.ioSubmissions] - submissions) submissions for one batch")
        #expect(stats[.ioReads] - requests == runs.count)
        #expect(backend.memory.readCallCount == runs.count)
        for p in chosen { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(backend.totalReads == 48 && backend.maxReadsOfOnePage == 1)
        #expect(stats[.readaheadHits] >= 48 && stats[.readaheadWasted] == 0)
        #expect(space.checkInvariants() == [])
    }

    @Test("duplicates, resident and never-written pages are skipped; the rest read once")
    func duplicatesAndResident() throws {
        let backend = TestBackend(pageCount: 1 + 4 * 512)
        let (space, region) = try Self.scattered(64, over: backend)
        // No readahead by the faults below: only the prefetch reads.
        try region.advise(.random)
        // Pages 0..<8 back in memory; a second region with pages never written.
        for p in 0..<8 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        let fresh = try space.makeRegion(bytes: 8 * SwapPage.size)
        #expect(try fresh.prefetch(pages: [3, 1, 3, 7]) == 0)
        backend.resetReads()
        let pages = [40, 3, 40, 12, 0, 63, 12, 12, 5, 33]
        // 40, 12, 63, 33: the others are resident; duplicates once.
        #expect(try region.prefetch(pages: pages) == 4)
        space.engine.cache.asyncReads.waitUntilIdle()
        // Again: everything is cached or resident now.
        #expect(try region.prefetch(pages: pages) == 0)
        for p in Set(pages) { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(backend.totalReads == 4 && backend.maxReadsOfOnePage == 1)
        #expect(throws: SwapError.self) { try region.prefetch(pages: [1, 64]) }
        #expect(fresh.state(ofPage: 3) == .untouched)
        #expect(space.checkInvariants() == [])
    }

    @Test("using prefetched pages counts readahead hits but does not widen a later fault's window")
    func prefetchedHitsDoNotWiden() throws {
        let backend = TestBackend(pageCount: 1 + 4 * 512)
        let (space, region) = try Self.scattered(256, over: backend)
        let chosen = Array(stride(from: 0, to: 128, by: 4))
        #expect(try region.prefetch(pages: chosen) == 32)
        space.engine.cache.asyncReads.waitUntilIdle()
        for p in chosen { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.statistics[.readaheadHits] == 32)
        let readAhead = space.statistics[.readaheadPages]
        // A miss away from everything before it: a window of one page, as after random faults.
        try region.withPage(200, for: .read) { #expect(matches($0, page: 200)) }
        space.engine.cache.asyncReads.waitUntilIdle()
        #expect(
            space.statistics[.readaheadPages] == readAhead, "the miss read \(space.statistics[.readaheadPages] - readAhead) pages ahead")
        #expect(space.checkInvariants() == [])
    }

    @Test("pins racing a batch in flight get the right bytes, and no page is read twice")
    func pinsRaceTheBatch() throws {
        let backend = TestBackend(pageCount: 1 + 4 * 512)
        let (space, region) = try Self.scattered(128, over: backend)
        var rng = SeededRandom(seed: 9)
        let chosen = Array(Array(0..<128).shuffled(using: &rng).prefix(24))
        backend.resetReads()
        backend.readDelayMicros.store(30_000, ordering: .relaxed)
        #expect(try region.prefetch(pages: chosen) == 24)
        // Returned without waiting: reads are still sleeping in the backend.
        #expect(space.engine.cache.asyncReads.outstanding > 0)
        let wrong = Atomic<Int>(0)
        let checked = Atomic<Int>(0)
        // Two threads per page, in opposite orders, while the batch is in flight.
        runThreads(4) { t in
            let order = t % 2 == 0 ? chosen : chosen.reversed()
            for p in order where t < 2 || p % 2 == 0 {
                do {
                    try region.withPage(p, for: .read) { if !matches($0, page: p) { wrong.add(1, ordering: .relaxed) } }
                    checked.add(1, ordering: .relaxed)
                } catch {
                    wrong.add(1, ordering: .relaxed)
                }
            }
        }
        backend.readDelayMicros.store(0, ordering: .relaxed)
        print("prefetch race: \(checked.load(ordering: .relaxed)) pins checked")
        #expect(wrong.load(ordering: .relaxed) == 0)
        #expect(backend.totalReads == 24 && backend.maxReadsOfOnePage == 1)
        space.engine.cache.asyncReads.waitUntilIdle()
        #expect(space.checkInvariants() == [])
    }

    @Test("a batch larger than memory prefetches what fits, reclaiming other pages but never its own")
    func largerThanMemory() throws {
        let backend = TestBackend(pageCount: 1 + 4 * 512)
        let (space, region) = try Self.scattered(256, over: backend, memoryPages: 64)
        // Memory full of another region's pages.
        let other = try space.makeRegion(bytes: 64 * SwapPage.size)
        for p in 0..<64 { try other.withPage(p) { fill($0, page: 1000 + p) } }
        backend.resetReads()
        let started = try region.prefetch(pages: Array((0..<256).reversed()))
        space.engine.cache.asyncReads.waitUntilIdle()
        // Half of the 64 frames at most; the other region's pages made room.
        #expect(started > 0 && started <= 32, "started \(started)")
        #expect(backend.totalReads == started)
        #expect(space.statistics[.readaheadWasted] == 0, "the batch evicted its own pages")
        #expect(space.residentFrames <= 64)
        for p in 0..<256 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        for p in 0..<64 { try other.withPage(p, for: .read) { #expect(matches($0, page: 1000 + p)) } }
        #expect(space.checkInvariants() == [])
    }

    @Test("a pin of a prefetched page whose read is done completes it itself, not behind a slow read queued before it")
    func pinCompletesItsOwnRun() throws {
        let flaky = FaultInjectingBackend(TestBackend(pageCount: 1 + 4 * 512))
        let (space, region) = try Self.scattered(64, over: flaky)
        try region.advise(.random)
        // The pages in the first and last slots: two runs, the slow one first in slot order
        // (runs are queued for completion in that order).
        let bySlot = (0..<64).sorted { region.pte($0).swapEntry.offset < region.pte($1).swapEntry.offset }
        let slow = bySlot[0], fast = bySlot[63]
        #expect(Self.runs(region, [slow, fast]).count == 2)
        // Both still in flight when the prefetch returns (so both are queued for completion);
        // the fast one done long before the slow one.
        let slot = region.pte(slow).swapEntry.offset, fastSlot = region.pte(fast).swapEntry.offset
        flaky.inject(.latency(.seconds(3)), on: .read, when: .pages(slot..<(slot + 1)))
        flaky.inject(.latency(.milliseconds(100)), on: .read, when: .pages(fastSlot..<(fastSlot + 1)))
        #expect(try region.prefetch(pages: [slow, fast]) == 2)
        #expect(space.engine.cache.asyncReads.outstanding == 2)
        let start = ContinuousClock.now
        try region.withPage(fast, for: .read) { #expect(matches($0, page: fast)) }
        let waited = ContinuousClock.now - start
        // Waiting on the completer thread, the pin would have waited for the slow read first.
        print("prefetch: the pin of the fast page waited \(waited)")
        #expect(waited < .seconds(2), "the pin of page \(fast) waited \(waited) behind the slow read of page \(slow)")
        try region.withPage(slow, for: .read) { #expect(matches($0, page: slow)) }
        space.engine.cache.asyncReads.waitUntilIdle()
        #expect(space.statistics[.readaheadHits] >= 2)
        #expect(space.checkInvariants() == [])
    }

    @Test("a read of the batch that fails gives the typed error to the pin of its page; no other page loses data")
    func readError() throws {
        let slow = TestBackend(pageCount: 1 + 4 * 512)
        let flaky = FaultInjectingBackend(slow)
        let (space, region) = try Self.scattered(128, over: flaky)
        var rng = SeededRandom(seed: 13)
        let chosen = Array(Array(0..<128).shuffled(using: &rng).prefix(24))
        // A page alone in its run fails; the others read.
        let failing = try #require(Self.runs(region, chosen).first { $0.count == 1 }?.first)
        let slot = region.pte(failing).swapEntry.offset
        flaky.inject(.ioError, on: .read, when: .pages(slot..<(slot + 1)))
        slow.readDelayMicros.store(20_000, ordering: .relaxed)
        // Started: all, or all but the failing read if it failed before the call returned.
        #expect((23...24).contains(try region.prefetch(pages: chosen)))
        // The pin waits for the failing read in flight (or reads again, and fails again).
        do {
            try region.withPage(failing, for: .read) { _ in }
            Issue.record("the pin of a page whose read failed succeeded")
        } catch let e as SwapError {
            #expect(e.code == .ioError)
        }
        for p in chosen where p != failing { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        slow.readDelayMicros.store(0, ordering: .relaxed)
        space.engine.cache.asyncReads.waitUntilIdle()
        #expect(space.statistics[.readErrors] >= 1)
        #expect(region.state(ofPage: failing) == .swapped)
        flaky.removeAllFaults()
        for p in 0..<128 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.checkInvariants() == [])
    }

    @Test("SwappableArray: the pages of scattered indices in one batch; elements(at:) reads them in order")
    func array() throws {
        let backend = TestBackend(pageCount: 1 + 4 * 512)
        let space = try SwapSpace(
            .init(
                memory: 256 * SwapPage.size, devices: [.backend(backend)], backgroundReclaim: false,
                encryption: .none, ioEngine: .threadPool))
        let perPage = SwapPage.size / MemoryLayout<UInt64>.stride
        let array = try SwappableArray<UInt64>(count: 64 * perPage, in: space)
        for i in 0..<(64 * perPage) { try array.setElement(UInt64(i) &* 7, at: i) }
        var rng = SeededRandom(seed: 3)
        for p in Array(0..<64).shuffled(using: &rng) { try array.region.swapOut(pages: p..<(p + 1)) }
        let indices = (0..<40).map { _ in Int.random(in: 0..<(64 * perPage), using: &rng) }
        let submissions = space.statistics[.ioSubmissions]
        let values = try array.elements(at: indices)
        #expect(values == indices.map { UInt64($0) &* 7 })
        #expect(space.statistics[.ioSubmissions] - submissions == 1)
        #expect(backend.maxReadsOfOnePage == 1)
        #expect(throws: SwapError.self) { try array.prefetch(indices: [0, 64 * perPage]) }
        space.engine.cache.asyncReads.waitUntilIdle()
        #expect(space.checkInvariants() == [])
    }
}
