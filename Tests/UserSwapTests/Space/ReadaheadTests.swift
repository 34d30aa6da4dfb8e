import Foundation
import Synchronization
import Testing
import UserSwapTestSupport

@testable import UserSwap

@Suite("Readahead")
struct ReadaheadTests {
    /// A region of `pages` written and swapped out in order, so its slots are consecutive.
    static func swapped(_ pages: Int, sync: SwapInSync = .swapCache) throws -> (SwapSpace, Region, TestBackend) {
        let (space, backend) = try makeSpace(memoryPages: 4 * pages, sync: sync)
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }
        try region.swapOut(pages: 0..<pages)
        backend.resetReads()
        backend.memory.resetCounters()
        return (space, region, backend)
    }

    @Test("sequential faults grow the window and read in runs, each page once", arguments: bothProtocols)
    func sequential(sync: SwapInSync) throws {
        let (space, region, backend) = try Self.swapped(256, sync: sync)
        for p in 0..<256 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(backend.totalReads == 256 && backend.maxReadsOfOnePage == 1)
        #expect(space.statistics[.readaheadHits] > 200)
        if sync == .swapCache { #expect(backend.memory.readCallCount < 40, "\(backend.memory.readCallCount) read calls for 256 pages") }
        #expect(space.statistics[.readaheadWasted] == 0)
        #expect(space.checkInvariants() == [])
    }

    @Test("random faults collapse the window: nothing read ahead, nothing wasted")
    func random() throws {
        let (space, region, backend) = try Self.swapped(512)
        var rng = SeededRandom(seed: 7)
        var order = Array(0..<512)
        order.shuffle(using: &rng)
        for p in order.prefix(200) { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.statistics[.readaheadPages] <= 8, "read ahead \(space.statistics[.readaheadPages]) pages on random access")
        #expect(backend.totalReads <= 208)
    }

    @Test("advice: random turns readahead off, sequential reads the largest window at once")
    func advice() throws {
        let (space, region, backend) = try Self.swapped(128)
        try region.advise(.random)
        for p in 0..<16 { try region.withPage(p, for: .read) { _ in } }
        #expect(space.statistics[.readaheadPages] == 0 && backend.totalReads == 16)
        try region.advise(.sequential)
        try region.withPage(16, for: .read) { _ in }
        // The window runs to the region's end (111 pages after page 16) or its largest size.
        #expect(space.statistics[.readaheadPages] == min(ReadaheadState.maxWindow - 1, 128 - 17))
    }

    @Test("prefetch reads pages into the cache in one call; their use reads nothing more")
    func prefetch() throws {
        let (space, region, backend) = try Self.swapped(64)
        try region.advise(.random)
        #expect(try region.prefetch(pages: 0..<64) == 64)
        #expect(backend.memory.readCallCount == 1)
        for p in 0..<64 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(backend.totalReads == 64 && space.statistics[.readaheadHits] == 64)
        try region.advise(.dontNeed, pages: 0..<64)
        #expect((0..<64).allSatisfy { region.state(ofPage: $0) == .swapped })
        #expect(space.checkInvariants() == [])
    }

    @Test("swapOut(pages:) frees the copies that prefetch left in the cache, unused")
    func swapOutDropsPrefetched() throws {
        let (space, region, backend) = try Self.swapped(64)
        #expect(try region.prefetch(pages: 0..<64) == 64)
        #expect(space.residentFrames == 64)
        let writes = space.statistics[.deviceWrites]
        // Clean copies: dropped, nothing written, not counted (the pages were swapped out
        // already). Before, swapOut skipped every page that was not mapped, and the copies
        // stayed until reclaim came for them.
        #expect(try region.swapOut(pages: 0..<64) == 0)
        #expect(space.residentFrames == 0 && space.statistics[.deviceWrites] == writes)
        for p in 0..<64 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(backend.totalReads == 128)
        #expect(space.checkInvariants() == [])
    }

    @Test("pages read ahead and never used are counted as wasted when reclaimed")
    func wasted() throws {
        let (space, region, _) = try Self.swapped(64)
        try region.prefetch(pages: 0..<64)
        // Push everything out: the prefetched folios are reclaimed unused.
        _ = space.engine.reclaimer.shrink(target: 1000)
        #expect(space.statistics[.readaheadWasted] == 64)
    }

    // MARK: Asynchronous readahead

    /// A space whose device reads go through a thread-pool engine (so a window's read can be in
    /// flight while the faulting thread goes on), over `backend`, with `pages` written and
    /// swapped out in order (consecutive slots).
    static func swappedAsync(_ pages: Int, over backend: any SwapBackend, sync: SwapInSync = .swapCache) throws -> (SwapSpace, Region) {
        let space = try SwapSpace(
            .init(
                memory: 4 * pages * SwapPage.size, devices: [.backend(backend)], sync: sync,
                backgroundReclaim: false, encryption: .none, ioEngine: .threadPool))
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }
        try region.swapOut(pages: 0..<pages)
        return (space, region)
    }

    @Test(
        "the first use of a window's trigger page submits the next window without waiting; its pages read nothing more",
        arguments: bothProtocols)
    func asyncWindow(sync: SwapInSync) throws {
        let backend = TestBackend(pageCount: 1 + 4 * 512)
        let (space, region) = try Self.swappedAsync(512, over: backend, sync: sync)
        backend.resetReads()
        backend.memory.resetCounters()
        try region.advise(.sequential)
        // A miss: page 0 with the largest window, read and waited for; page 1 is the trigger.
        try region.withPage(0, for: .read) { #expect(matches($0, page: 0)) }
        #expect(backend.totalReads == 256 && space.statistics[.readaheadAsyncWindows] == 0)
        // (The legacy protocol reads ahead page by page, and synchronously: no delay for it.)
        if sync == .swapCache { backend.holdReads() }
        try region.withPage(1, for: .read) { #expect(matches($0, page: 1)) }
        // The legacy protocol reads each page before it inserts it: the next window is read
        // there and then, on the trigger hit, with nothing left in flight.
        #expect(space.statistics[.readaheadAsyncWindows] == (sync == .swapCache ? 1 : 0))
        if sync == .swapCache {
            // Submitted, not waited for: its read is still sleeping in the backend.
            #expect(space.engine.cache.asyncReads.outstanding == 1)
            #expect(backend.memory.readCallCount == 1)
            backend.releaseReads()
        }
        // Page 256 is in that window: its fault waits for the read in flight, and reads nothing.
        for p in 2..<512 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(backend.totalReads == 512 && backend.maxReadsOfOnePage == 1)
        if sync == .swapCache { #expect(backend.memory.readCallCount == 2) }
        #expect(space.statistics[.readaheadHits] == 511 && space.statistics[.readaheadWasted] == 0)
        #expect(space.checkInvariants() == [])
    }

    @Test("adaptive windows grow by trigger hits: a stream reads each page once, in few calls, mostly asynchronously")
    func asyncAdaptive() throws {
        let backend = TestBackend(pageCount: 1 + 4 * 512)
        let (space, region) = try Self.swappedAsync(1024, over: backend)
        backend.resetReads()
        backend.memory.resetCounters()
        backend.readDelayMicros.store(200, ordering: .relaxed)
        for p in 0..<1024 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(backend.totalReads == 1024 && backend.maxReadsOfOnePage == 1)
        // Windows of 2, 4, 16, 64, 128, 256, …: one miss, then trigger hits all the way.
        #expect(space.statistics[.readaheadAsyncWindows] >= 5)
        #expect(backend.memory.readCallCount < 20, "\(backend.memory.readCallCount) read calls for 1024 pages")
        #expect(space.checkInvariants() == [])
    }

    @Test("an async read that fails leaves its pages swapped; the fault that needs one reads again and gets a typed error")
    func asyncError() throws {
        let flaky = FaultInjectingBackend(MemoryBackend(pageCount: 1 + 4 * 512))
        let (space, region) = try Self.swappedAsync(512, over: flaky)
        try region.advise(.sequential)
        try region.withPage(0, for: .read) { #expect(matches($0, page: 0)) }
        // The next read call is the async window of pages 256..<512.
        flaky.inject(.ioError, on: .read, when: .call(1))
        try region.withPage(1, for: .read) { #expect(matches($0, page: 1)) }
        #expect(space.statistics[.readaheadAsyncWindows] == 1)
        space.engine.cache.asyncReads.waitUntilIdle()
        #expect(space.statistics[.readErrors] == 1)
        // Nothing of the window stayed in the cache: the data is on the device only.
        for p in 256..<512 {
            #expect(region.state(ofPage: p) == .swapped)
            #expect(
                space.engine.cache.swapCacheGetFolio(region.pte(p).swapEntry).map {
                    space.engine.allocator.putFolio($0)
                    return true
                } == nil)
        }
        // The device still fails: the fault's own read gets the typed error.
        flaky.inject(.ioError, on: .read, when: .always)
        #expect(throws: SwapError.self) { try region.withPage(300, for: .read) { _ in } }
        do {
            try region.withPage(300, for: .read) { _ in }
        } catch let e as SwapError {
            #expect(e.code == .ioError)
        }
        flaky.removeAllFaults()
        for p in 2..<512 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.checkInvariants() == [])
    }

    @Test("a fault waiting on a window whose async read fails gets a typed error; the page reads right later")
    func asyncErrorWhileWaiting() throws {
        let backend = TestBackend(pageCount: 1 + 4 * 512)
        let (space, region) = try Self.swappedAsync(512, over: backend)
        try region.advise(.sequential)
        try region.withPage(0, for: .read) { _ in }
        backend.readDelayMicros.store(50_000, ordering: .relaxed)
        backend.failReads.store(1, ordering: .relaxed)
        try region.withPage(1, for: .read) { _ in }
        #expect(space.engine.cache.asyncReads.outstanding == 1)
        // Page 256 is being read: the fault sleeps on its folio lock, then sees the read fail.
        do {
            try region.withPage(256, for: .read) { _ in }
            Issue.record("the fault on a page whose read failed succeeded")
        } catch let e as SwapError {
            #expect(e.code == .ioError)
        }
        backend.readDelayMicros.store(0, ordering: .relaxed)
        #expect(region.state(ofPage: 256) == .swapped)
        for p in 256..<512 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.checkInvariants() == [])
    }

    @Test("waiting for idle sleeps until the async read in flight is finished, and wakes then")
    func waitUntilIdleWakes() throws {
        let backend = TestBackend(pageCount: 1 + 4 * 512)
        let (space, region) = try Self.swappedAsync(512, over: backend)
        try region.advise(.sequential)
        try region.withPage(0, for: .read) { _ in }
        backend.readDelayMicros.store(200_000, ordering: .relaxed)
        try region.withPage(1, for: .read) { _ in }
        #expect(space.engine.cache.asyncReads.outstanding == 1)
        // The wait runs on a thread of its own, so that a lost wake-up fails this test after a
        // bound instead of hanging the run (a time limit would also count the set-up, which a
        // loaded machine can make slow).
        let returned = DispatchSemaphore(value: 0)
        let waited = Mutex<Duration?>(nil)
        let completer = space.engine.cache.asyncReads
        let thread = Thread {
            let start = ContinuousClock.now
            completer.waitUntilIdle()
            waited.withLock { $0 = ContinuousClock.now - start }
            returned.signal()
        }
        thread.start()
        let woke = returned.wait(timeout: .now() + 60) == .success
        #expect(woke, "waitUntilIdle still asleep 60 s after it began, the read being 200 ms")
        guard woke else { return }
        backend.readDelayMicros.store(0, ordering: .relaxed)
        // Asleep while the read took its 200 ms, woken by the completer when it finished.
        let slept = try #require(waited.withLock { $0 })
        #expect(space.engine.cache.asyncReads.outstanding == 0)
        #expect(slept >= .milliseconds(100) && slept < .seconds(20), "waited \(slept)")
        #expect(space.checkInvariants() == [])
    }

    @Test("releasing a region, then its space, with async reads in flight neither hangs nor leaks")
    func asyncTeardown() throws {
        let backend = TestBackend(pageCount: 1 + 4 * 512)
        weak var cache: SwapCache?
        do {
            let (space, region) = try Self.swappedAsync(512, over: backend)
            cache = space.engine.cache
            let device = space.devices[0]
            try region.advise(.sequential)
            try region.withPage(0, for: .read) { _ in }
            backend.readDelayMicros.store(100_000, ordering: .relaxed)
            try region.withPage(1, for: .read) { _ in }
            #expect(space.engine.cache.asyncReads.outstanding == 1)
            // The region goes while its window is read: the completer frees the folios whose
            // pages are gone once their read is over.
            _ = consume region
            space.engine.cache.asyncReads.waitUntilIdle()
            #expect(space.residentFrames == 0 && device.usedPages == 0)
            #expect(space.checkInvariants() == [])
            // Again, but the whole space goes with a read in flight.
            let region2 = try space.makeRegion(bytes: 512 * SwapPage.size)
            backend.readDelayMicros.store(0, ordering: .relaxed)
            for p in 0..<512 { try region2.withPage(p) { fill($0, page: p) } }
            try region2.swapOut(pages: 0..<512)
            try region2.advise(.sequential)
            try region2.withPage(0, for: .read) { _ in }
            backend.readDelayMicros.store(100_000, ordering: .relaxed)
            try region2.withPage(1, for: .read) { _ in }
            #expect(space.engine.cache.asyncReads.outstanding == 1)
        }
        // The swap cache lives until the read is finished, then goes (with its completer thread).
        let deadline = ContinuousClock.now + .seconds(10)
        while cache != nil && ContinuousClock.now < deadline { usleep(1000) }
        #expect(cache == nil, "the swap cache outlived its space and its reads by 10 s")
    }
}
