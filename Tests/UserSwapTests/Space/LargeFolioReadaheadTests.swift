import Foundation
import Synchronization
import Testing

@testable import UserSwap

@Suite("Large-folio readahead")
struct LargeFolioReadaheadTests {
    /// Pages per 64 KiB folio.
    static let nr = 16

    /// A 64 KiB-folio region of `blocks` blocks written and swapped out in order, so each block
    /// is one aligned run of slots and the blocks' runs are consecutive.
    static func swapped(_ blocks: Int, sync: SwapInSync = .swapCache, ioEngine: IOEngineChoice? = nil)
        throws -> (SwapSpace, Region, TestBackend)
    {
        let pages = blocks * nr
        let backend = TestBackend(pageCount: 1 + 4 * 512)
        var config = SwapSpace.Configuration(
            memory: 4 * pages * SwapPage.size, devices: [.backend(backend)], sync: sync,
            backgroundReclaim: false, encryption: .none)
        if let ioEngine { config.ioEngine = ioEngine }
        let space = try SwapSpace(config)
        let region = try space.makeRegion(bytes: pages * SwapPage.size, folioSize: nr * SwapPage.size)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }
        #expect(try region.swapOut(pages: 0..<pages) == pages)
        #expect(backend.memory.writeCallCount == blocks, "one write per block")
        backend.resetReads()
        backend.memory.resetCounters()
        return (space, region, backend)
    }

    @Test(
        "a sequential read of a 64 KiB-folio region reads ahead whole blocks: fewer device reads than blocks, each page once",
        arguments: bothProtocols)
    func sequential(sync: SwapInSync) throws {
        let blocks = 64
        let (space, region, backend) = try Self.swapped(blocks, sync: sync)
        let readsBefore = space.statistics[.deviceReads]
        for p in 0..<blocks * Self.nr { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        let reads = space.statistics[.deviceReads] - readsBefore
        #expect(backend.totalReads == blocks * Self.nr && backend.maxReadsOfOnePage == 1)
        #expect(space.statistics[.readaheadPages] >= (blocks - 4) * Self.nr)
        #expect(space.statistics[.readaheadHits] == space.statistics[.readaheadPages])
        #expect(space.statistics[.readaheadWasted] == 0)
        if sync == .swapCache {
            // Windows of 1, 2, 4, … blocks, each one vectored read.
            #expect(reads < blocks / 4, "\(reads) device reads for \(blocks) blocks")
            #expect(backend.memory.readCallCount == reads)
        } else {
            // The legacy protocol reads each folio before inserting it: one read per block.
            #expect(reads <= blocks)
        }
        #expect(space.statistics[.splitFallbacks] == 0 && space.statistics[.largeFallbacks] == 0)
        print(
            "large-folio readahead (\(sync)): \(reads) device reads for \(blocks) blocks, read ahead \(space.statistics[.readaheadPages]) pages, hits \(space.statistics[.readaheadHits])"
        )
        #expect(space.checkInvariants() == [])
    }

    @Test("a fault on a block read ahead maps all its pages at once, with no read", arguments: bothProtocols)
    func wholeBlockHit(sync: SwapInSync) throws {
        let (space, region, backend) = try Self.swapped(4, sync: sync)
        try region.advise(.sequential)
        try region.withPage(0, for: .read) { #expect(matches($0, page: 0)) }
        // The fault's block is mapped; the others are in the cache, read ahead, not mapped.
        #expect((0..<16).allSatisfy { region.state(ofPage: $0) == .resident })
        #expect((16..<64).allSatisfy { region.state(ofPage: $0) == .swapped })
        #expect(space.statistics[.readaheadPages] == 48 && backend.totalReads == 64)
        let reads = space.statistics[.deviceReads]
        // One fault in the middle of block 1 maps all of it.
        try region.withPage(21, for: .read) { #expect(matches($0, page: 21)) }
        #expect((16..<32).allSatisfy { region.state(ofPage: $0) == .resident }, "the whole block mapped by one fault")
        #expect((32..<64).allSatisfy { region.state(ofPage: $0) == .swapped })
        #expect(space.statistics[.readaheadHits] == 16 && space.statistics[.deviceReads] == reads)
        // All of it from one folio, the one read ahead.
        let frame = region.pte(16).frame
        #expect((16..<32).allSatisfy { region.pte($0).frame == frame + UInt32($0 - 16) })
        for p in 16..<64 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.statistics[.readaheadHits] == 48 && backend.maxReadsOfOnePage == 1)
        #expect(space.checkInvariants() == [])
    }

    @Test("random access over a large-folio region reads (almost) nothing ahead; advice random reads nothing")
    func random() throws {
        let (space, region, backend) = try Self.swapped(64)
        var rng = SeededRandom(seed: 11)
        var order = Array(0..<64)
        order.shuffle(using: &rng)
        for b in order.prefix(24) {
            let p = b * Self.nr + Int.random(in: 0..<Self.nr, using: &rng)
            try region.withPage(p, for: .read) { #expect(matches($0, page: p)) }
        }
        // Only a fault that happens to land next to the previous one reads one block ahead.
        let adjacent = zip(order.prefix(24), order.prefix(24).dropFirst()).filter { abs($0 - $1) == 1 }.count
        #expect(space.statistics[.readaheadPages] <= adjacent * Self.nr, "seed 11: read ahead \(space.statistics[.readaheadPages]) pages")
        #expect(backend.maxReadsOfOnePage == 1)
        // With advice random, nothing at all.
        try region.advise(.random)
        let before = space.statistics[.readaheadPages]
        for b in order.dropFirst(24).prefix(24) where region.state(ofPage: b * Self.nr) == .swapped {
            try region.withPage(b * Self.nr, for: .read) { #expect(matches($0, page: b * Self.nr)) }
        }
        #expect(space.statistics[.readaheadPages] == before)
        #expect(space.checkInvariants() == [])
    }

    @Test("a stream over a thread-pool engine reads its next windows asynchronously, each page once")
    func asyncStream() throws {
        let blocks = 96
        let (space, region, backend) = try Self.swapped(blocks, ioEngine: .threadPool)
        backend.readDelayMicros.store(200, ordering: .relaxed)
        for p in 0..<blocks * Self.nr { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(backend.totalReads == blocks * Self.nr && backend.maxReadsOfOnePage == 1)
        #expect(space.statistics[.readaheadAsyncWindows] >= 3)
        #expect(backend.memory.readCallCount < blocks / 4, "\(backend.memory.readCallCount) read calls for \(blocks) blocks")
        space.engine.cache.asyncReads.waitUntilIdle()
        #expect(space.checkInvariants() == [])
    }

    @Test("a fault waiting on a block whose async read fails gets a typed error; the block reads right later")
    func asyncError() throws {
        let (space, region, backend) = try Self.swapped(32, ioEngine: .threadPool)
        try region.advise(.sequential)
        try region.withPage(0, for: .read) { _ in }
        // Blocks 1…16 are read ahead (window 256 pages), asynchronously: a miss waits only for
        // its own block. Block 1 is the trigger.
        space.engine.cache.asyncReads.waitUntilIdle()
        #expect(space.statistics[.readaheadPages] == 256)
        backend.holdReads()
        backend.failReads.store(1, ordering: .relaxed)
        try region.withPage(16, for: .read) { _ in }
        #expect(space.engine.cache.asyncReads.outstanding == 1)
        // The read goes on (and fails) a moment after the next fault starts waiting for it.
        Thread.detachNewThread {
            usleep(50_000)
            backend.releaseReads()
        }
        do {
            try region.withPage(16 * 20, for: .read) { _ in }
            Issue.record("the fault on a block whose read failed succeeded")
        } catch let e as SwapError {
            #expect(e.code == .ioError)
        }
        #expect(region.state(ofPage: 16 * 20) == .swapped)
        for p in 32..<512 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        space.engine.cache.asyncReads.waitUntilIdle()
        #expect(space.checkInvariants() == [])
    }

    @Test("racing streams, partial swap-outs and reclaim over a large-folio region lose nothing", arguments: bothProtocols)
    func racingStreams(sync: SwapInSync) throws {
        let blocks = 48, pages = blocks * Self.nr
        let (space, _) = try makeSpace(memoryPages: 256, swapPages: 1 + 4 * 512, sync: sync, backgroundReclaim: true)
        let region = try space.makeRegion(bytes: pages * SwapPage.size, folioSize: Self.nr * SwapPage.size)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }
        try region.swapOut(pages: 0..<pages)
        let wrong = Atomic<Int>(0), checked = Atomic<Int>(0)
        runThreads(4) { t in
            var rng = SeededRandom(seed: UInt64(t) &+ 2027)
            for round in 0..<3 {
                // Streams start a few blocks apart, so they meet in each other's windows.
                let start = (t * 3 + round * 5) % blocks * Self.nr
                for i in 0..<pages {
                    let p = (start + i) % pages
                    do {
                        try region.withPage(p, for: .read) { if !matches($0, page: p) { wrong.add(1, ordering: .relaxed) } }
                        checked.add(1, ordering: .relaxed)
                    } catch { wrong.add(1, ordering: .relaxed) }
                    // Now and then, push part of a block out again (a partial block faults page by page).
                    if t == 3 && i % 97 == 0 {
                        let b = Int.random(in: 0..<blocks, using: &rng) * Self.nr
                        let lo = b + Int.random(in: 0..<Self.nr, using: &rng)
                        _ = try? region.swapOut(pages: lo..<min(pages, lo + Int.random(in: 1...Self.nr, using: &rng)))
                    }
                }
            }
        }
        #expect(wrong.load(ordering: .relaxed) == 0, "seed 2027+thread")
        for p in 0..<pages { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        space.engine.cache.asyncReads.waitUntilIdle()
        #expect(space.checkInvariants() == [])
        print(
            "large-folio racing streams (\(sync)): checked \(checked.load(ordering: .relaxed)) pages, read ahead \(space.statistics[.readaheadPages]), hits \(space.statistics[.readaheadHits]), wasted \(space.statistics[.readaheadWasted]), large fallbacks \(space.statistics[.largeFallbacks])"
        )
    }

    @Test("with free frames but no free run of a block's size, large readahead stops instead of reclaiming")
    func noFreeRun() throws {
        let (space, _) = try makeSpace(memoryPages: 256)
        let engine = space.engine
        // Take every frame one page at a time, then free every other one: plenty free, no run of 2.
        let filler = try space.makeRegion(bytes: engine.allocator.pool.freeFrames * SwapPage.size)
        for p in 0..<filler.pageCount { try filler.withPage(p) { fill($0, page: p) } }
        #expect(engine.allocator.pool.freeFrames == 0)
        for p in stride(from: 0, to: filler.pageCount, by: 2) { try filler.discard(pages: p..<(p + 1)) }
        #expect(engine.allocator.pool.freeFrames >= engine.allocator.watermarks.min + Self.nr)
        let reclaims = space.statistics[.directReclaims], resident = space.residentFrames
        #expect(throws: SwapError.self) { _ = try engine.allocator.allocateFolio(order: 4, mayReclaim: false) }
        #expect(space.statistics[.directReclaims] == reclaims && space.residentFrames == resident, "nothing reclaimed")
        // A fault may reclaim for its own block.
        let f = try engine.allocator.allocateFolio(order: 4)
        #expect(space.statistics[.directReclaims] == reclaims + 1)
        engine.allocator.putFolio(f)
        #expect(space.checkInvariants() == [])
    }
}
