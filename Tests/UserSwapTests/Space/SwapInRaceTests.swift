import Synchronization
import Testing

@testable import UserSwap

/// What swap-cache synchronization claims, for both protocols: racing swap-ins of one entry do one read and all see
/// the same bytes; races with free, swap-out and read errors lose nothing.
@Suite("Swap-in races")
struct SwapInRaceTests {
    @Test("many threads faulting the same entries read each entry exactly once", arguments: allProtocols)
    func exactlyOneRead(sync: SwapInSync) throws {
        let pages = 64
        let threads = 12
        // Room for every page plus one new folio per racing thread: reclaim must not interfere.
        let (space, backend) = try makeSpace(memoryPages: pages + 2 * threads + 16, sync: sync)
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        backend.readDelayMicros.store(100, ordering: .relaxed)  // widen the race window
        let verified = Atomic<Int>(0)
        let bad = Atomic<Int>(0)
        for round in 0..<5 {
            for p in 0..<pages { try region.withPage(p) { fill($0, page: p, generation: round) } }
            #expect(try region.swapOut(pages: 0..<pages) == pages)
            backend.resetReads()
            runThreads(threads) { t in
                for k in 0..<pages {
                    let p = (k + t) % 4 == 0 ? k : pages - 1 - k  // two orders: collide from both ends
                    do {
                        _ = try region.withPage(p, for: .read) { bytes in
                            if matches(bytes, page: p, generation: round) {
                                verified.add(1, ordering: .relaxed)
                            } else {
                                bad.add(1, ordering: .relaxed)
                            }
                        }
                    } catch { bad.add(1, ordering: .relaxed) }
                }
            }
            #expect(backend.totalReads == pages, "round \(round): \(backend.totalReads) reads for \(pages) entries")
            #expect(backend.maxReadsOfOnePage == 1)
        }
        #expect(bad.load(ordering: .relaxed) == 0)
        #expect(verified.load(ordering: .relaxed) == 5 * pages * threads)
        #expect(space.checkInvariants() == [])
        print(
            "exactly one read (\(sync)): \(verified.load(ordering: .relaxed)) page checks by \(threads) threads, \(space.statistics[.raceLosses]) lost inserts, \(space.statistics[.cacheHits]) cache hits, \(space.statistics[.legacySleeps]) legacy sleeps"
        )
    }

    @Test("a swap-in racing with the free of its entry gets no-entry and reads nothing freed", arguments: allProtocols)
    func faultVersusFree(sync: SwapInSync) throws {
        let (space, backend) = try makeSpace(memoryPages: 4, sync: sync)
        let device = space.devices[0]
        let engine = space.engine
        // An entry with one reference and no page table: the fault path's view of a PTE that is
        // zapped while the fault is in flight.
        let entry = try device.allocate()
        device.put(entry)
        #expect(device.slot(entry).isFree)
        let outcome = try engine.cache.swapCacheAllocFolio(entry)
        guard case .noEntry = outcome else {
            Issue.record("expected noEntry, got \(outcome)")
            return
        }
        #expect(backend.totalReads == 0)
        #expect(space.residentFrames == 0, "the loser's new folio went back to the pool")
        #expect(space.statistics[.noEntries] == 1)

        // And concurrently: threads fault while another thread discards the pages.
        let region = try space.makeRegion(bytes: 2 * SwapPage.size)
        for round in 0..<200 {
            try region.withPage(0) { fill($0, page: 0, generation: round) }
            try region.swapOut(pages: 0..<1)
            let wrong = Atomic<Int>(0)
            let failed = Atomic<Int>(0)
            runThreads(4) { t in
                if t == 0 {
                    do { try region.discard(pages: 0..<1) } catch { failed.add(1, ordering: .relaxed) }
                } else {
                    do {
                        try region.withPage(0, for: .read) { bytes in
                            // Either the old contents (fault won) or zeroes (discard won).
                            if !matches(bytes, page: 0, generation: round) && !bytes.allSatisfy({ $0 == 0 }) {
                                wrong.add(1, ordering: .relaxed)
                            }
                        }
                    } catch {
                        // Neither side may fail: a fault that loses to the discard maps zeros.
                        failed.add(1, ordering: .relaxed)
                    }
                }
            }
            #expect(wrong.load(ordering: .relaxed) == 0)
            #expect(failed.load(ordering: .relaxed) == 0, "round \(round): \(failed.load(ordering: .relaxed)) accesses threw")
            try region.discard(pages: 0..<1)
        }
        #expect(device.usedPages == 0 && space.residentFrames == 0)
        #expect(space.checkInvariants() == [])
    }

    @Test("faults racing with swap-out of the same page always see its bytes", arguments: allProtocols)
    func faultVersusSwapOut(sync: SwapInSync) throws {
        let (space, _) = try makeSpace(memoryPages: 16, sync: sync)
        let region = try space.makeRegion(bytes: 4 * SwapPage.size)
        for p in 0..<4 { try region.withPage(p) { fill($0, page: p) } }
        let wrong = Atomic<Int>(0)
        let checks = Atomic<Int>(0)
        let readersDone = Atomic<Int>(0)
        runThreads(8) { t in
            if t < 2 {
                // Swap the pages out for as long as the readers run.
                var i = t
                while readersDone.load(ordering: .acquiring) < 6 {
                    _ = try? region.swapOut(pages: (i % 4)..<(i % 4 + 1))
                    i += 1
                }
                return
            }
            // Read until the swappers have evicted pages many times (bounded, in case they
            // starve): the race must really happen.
            var i = 0
            let deadline = ContinuousClock.now + .seconds(20)
            while i < 400 || (space.statistics[.evictions] < 50 && ContinuousClock.now < deadline) {
                defer { i += 1 }
                let p = i % 4
                do {
                    try region.withPage(p, for: .read) { bytes in
                        checks.add(1, ordering: .relaxed)
                        if !matches(bytes, page: p) { wrong.add(1, ordering: .relaxed) }
                    }
                } catch { wrong.add(1, ordering: .relaxed) }
            }
            readersDone.add(1, ordering: .releasing)
        }
        #expect(wrong.load(ordering: .relaxed) == 0)
        #expect(checks.load(ordering: .relaxed) >= 6 * 400)
        #expect(space.statistics[.evictions] >= 50, "the race hardly happened")
        #expect(space.checkInvariants() == [])
        print(
            "fault vs swap-out (\(sync)): \(checks.load(ordering: .relaxed)) checks, \(space.statistics[.evictions]) evictions, \(space.statistics[.swapIns]) swap-ins, \(space.statistics[.busyFolios]) busy"
        )
    }

    @Test("a large swap-in that meets a small cached folio falls back to order 0", arguments: allProtocols)
    func largeVersusSmall(sync: SwapInSync) throws {
        let (space, backend) = try makeSpace(memoryPages: 64, sync: sync)
        let engine = space.engine
        let region = try space.makeRegion(bytes: 16 * SwapPage.size)
        for p in 0..<16 { try region.withPage(p) { fill($0, page: p) } }
        try region.swapOut(pages: 0..<16)
        // The pages went out one by one to consecutive slots; find the aligned run of 4.
        let entries = (0..<16).map { region.pte($0).swapEntry }
        guard let start = entries.firstIndex(where: { $0.offset % 4 == 0 }), start + 4 <= 16,
            (0..<4).allSatisfy({ entries[start + $0].offset == entries[start].offset + $0 })
        else {
            Issue.record("slots not consecutive: \(entries)")
            return
        }
        // A small folio for the second page of the run is cached (an order-0 swap-in).
        try region.withPage(start + 1, for: .read) { #expect(matches($0, page: start + 1)) }
        let readsBefore = backend.totalReads
        let outcome = try engine.cache.swapCacheAllocFolio(entries[start], order: 2)
        guard case .fallback = outcome else {
            Issue.record("expected fallback, got \(outcome)")
            return
        }
        #expect(backend.totalReads == readsBefore, "the large attempt read nothing")
        #expect(space.statistics[.largeFallbacks] == 1)
        // Order 0 then works for every page of the run.
        for p in start..<(start + 4) { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.checkInvariants() == [])

        // And a large insert that wins goes into all four slots or none.
        try region.swapOut(pages: 0..<16)
        let clean = entries[start]
        if case .allocated(let f, let shadow) = try engine.cache.swapCacheAllocFolio(clean, order: 2) {
            for i in 0..<4 { #expect(space.devices[0].slot(clean.advanced(by: i)).frame == f.frame) }
            try engine.cache.swapReadFolio(f, shadow: shadow)
            engine.frames.unlock(f)
            engine.allocator.putFolio(f)
        } else {
            Issue.record("the large insert into four free-of-folio slots should win")
        }
        #expect(space.checkInvariants() == [])
    }

    @Test("a read error reaches every racer as a typed error and loses nothing", arguments: allProtocols)
    func readError(sync: SwapInSync) throws {
        let (space, backend) = try makeSpace(memoryPages: 8, sync: sync)
        let region = try space.makeRegion(bytes: SwapPage.size)
        try region.withPage(0) { fill($0, page: 0) }
        try region.swapOut(pages: 0..<1)
        backend.readDelayMicros.store(2000, ordering: .relaxed)
        backend.failReads.store(1, ordering: .relaxed)
        let errors = Atomic<Int>(0)
        let good = Atomic<Int>(0)
        runThreads(6) { _ in
            do {
                try region.withPage(0, for: .read) { bytes in
                    if matches(bytes, page: 0) { good.add(1, ordering: .relaxed) }
                }
            } catch let e as SwapError {
                if e.code == .ioError { errors.add(1, ordering: .relaxed) }
            } catch {}
        }
        #expect(errors.load(ordering: .relaxed) >= 1)
        #expect(errors.load(ordering: .relaxed) + good.load(ordering: .relaxed) == 6)
        #expect(region.state(ofPage: 0) != .untouched)
        // The page is still on the device: a later access reads it.
        backend.readDelayMicros.store(0, ordering: .relaxed)
        try region.withPage(0, for: .read) { #expect(matches($0, page: 0)) }
        #expect(space.statistics[.readErrors] == 1)
        #expect(space.checkInvariants() == [])
    }
}
