import Glibc
import Synchronization
import Testing
import UserSwapTestSupport

@testable import UserSwap

/// What the engine does when its device fails (docs/RELIABILITY.md, *Fault injection*): a failed
/// read is the faulter's typed error and the page stays on swap, never mapped half read; a failed
/// or torn write leaves the page dirty in memory with its bytes, and a later swap-out writes it
/// again; errors are counted; a device that goes away gives typed errors, not a hang or a crash.
/// Both swap-in protocols.
@Suite("Fault injection")
struct FaultInjectionTests {
    /// A space over a fault-injecting memory device, with no background reclaimer unless asked.
    /// `io` picks the device's I/O engine: the thread pool runs every transfer (fault reads
    /// too) on its workers, so the faults arrive through its completions.
    private func makeFaultySpace(
        memoryPages: Int, swapPages: Int = 1 + 4 * 512, sync: SwapInSync,
        seed: UInt64 = 1, backgroundReclaim: Bool = false,
        io: IOEngineChoice = .automatic
    )
        throws -> (SwapSpace, FaultInjectingBackend, MemoryBackend)
    {
        let memory = MemoryBackend(pageCount: swapPages)
        let flaky = FaultInjectingBackend(memory, seed: seed)
        let space = try SwapSpace(
            .init(
                memory: memoryPages * SwapPage.size, devices: [.backend(flaky)], sync: sync,
                backgroundReclaim: backgroundReclaim, encryption: .none, ioEngine: io,
                ioOptions: IOEngineOptions(readsInCaller: io != .threadPool)))
        return (space, flaky, memory)
    }

    /// The flags of the folio holding `page`: the one mapped there, or the one cached for its
    /// swap entry; nil when the page is in neither place.
    private func folioFlags(_ space: SwapSpace, _ region: Region, page: Int) -> FolioFlags? {
        let engine = space.engine
        let pte = region.pte(page)
        if pte.isPresent { return engine.frames.flags(engine.frames.folio(containing: pte.frame)) }
        guard pte.isSwap, let f = engine.cache.swapCacheGetFolio(pte.swapEntry) else { return nil }
        defer { engine.allocator.putFolio(f) }
        return engine.frames.flags(f)
    }

    /// The read faults, by name for the test report.
    enum ReadFault: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case eio, shortHalf, shortFewBytes, goneThenBack
        var fault: FaultInjectingBackend.Fault {
            switch self {
            case .eio: .ioError
            case .shortHalf: .short()
            case .shortFewBytes: .short(bytes: 24)
            case .goneThenBack: .disappear
            }
        }
        var testDescription: String { rawValue }
    }

    enum WriteFault: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case eio, enospc, tornHalf, tornFewBytes
        var fault: FaultInjectingBackend.Fault {
            switch self {
            case .eio: .ioError
            case .enospc: .noSpace
            case .tornHalf: .short()
            case .tornFewBytes: .short(bytes: 100)
            }
        }
        var code: SwapError.Code { self == .enospc ? .diskFull : .ioError }
        var testDescription: String { rawValue }
    }

    // MARK: Reads

    @Test(
        "a failed read is the caller's typed error; the page stays swapped and reads right later",
        arguments: bothProtocols, ReadFault.allCases)
    func failedRead(sync: SwapInSync, fault: ReadFault) throws {
        let (space, flaky, _) = try makeFaultySpace(memoryPages: 16, sync: sync)
        let region = try space.makeRegion(bytes: 4 * SwapPage.size)
        for p in 0..<4 { try region.withPage(p) { fill($0, page: p) } }
        #expect(try region.swapOut(pages: 0..<4) == 4)
        let swapEntry = region.pte(2).swapEntry
        flaky.inject(fault.fault, on: .read, when: .call(1))

        for access in [PageAccess.read, .write] {
            var code: SwapError.Code?
            do {
                _ = try region.withPage(2, for: access) { _ in Issue.record("a page whose read failed was handed out") }
            } catch let e as SwapError { code = e.code }
            #expect(code == .ioError, "\(access)")
            // KERNEL.md §8.15: the entry stays a swap entry, nothing half read is mapped, and the
            // folio that took the failed read went back to the pool.
            #expect(region.state(ofPage: 2) == .swapped && region.pte(2) == .swap(swapEntry))
            #expect(space.residentFrames == 0)
            #expect(space.checkInvariants() == [])
            if fault != .goneThenBack { break }  // the others fail once; a gone device every time
        }
        let failures = fault == .goneThenBack ? 2 : 1
        #expect(space.statistics[.readErrors] == failures)
        #expect(space.statistics[.swapIns] == 0)
        if fault == .goneThenBack { flaky.reattach() }

        try region.withPage(2, for: .read) { #expect(matches($0, page: 2)) }
        for p in 0..<4 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.statistics[.readErrors] == failures)
        #expect(flaky.injectedTotal == failures)
        #expect(space.checkInvariants() == [])
    }

    @Test(
        "racing readers of pages whose reads fail short or slow never see a partial page",
        arguments: bothProtocols, [IOEngineChoice.automatic, .threadPool])
    func racingShortReads(sync: SwapInSync, io: IOEngineChoice) throws {
        var rng = SeededRandom.fromEnvironment("racing short reads \(sync)")
        let (space, flaky, _) = try makeFaultySpace(memoryPages: 64, sync: sync, seed: rng.next(), io: io)
        let pages = 8
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        // No readahead: a failed read ahead of use reaches no reader, and this test counts them.
        try region.advise(.random)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }
        flaky.inject(.short(), on: .read, when: .probability(0.2))
        flaky.inject(.ioError, on: .read, when: .probability(0.05))
        flaky.inject(.latency(.microseconds(300)), on: .read, when: .probability(0.3))
        flaky.inject(.latency(.microseconds(300)), on: .write, when: .probability(0.3))
        let good = Atomic<Int>(0), errors = Atomic<Int>(0), wrong = Atomic<Int>(0)
        let readersDone = Atomic<Int>(0), reads = Atomic<Int>(0)
        let readers = 6
        runThreads(readers + 1) { t in
            if t == readers {
                // Push the pages out again and again while the readers fault them in.
                var i = 0
                while readersDone.load(ordering: .acquiring) < readers {
                    _ = try? region.swapOut(pages: (i % pages)..<(i % pages + 1))
                    i += 1
                }
                return
            }
            // At least 600 reads each, and on until 40 reads have failed (bounded in time).
            let deadline = ContinuousClock.now + .seconds(20)
            var k = 0
            while k < 600 || (space.statistics[.readErrors] < 40 && ContinuousClock.now < deadline) {
                defer { k += 1 }
                let p = (k * 7 + t) % pages
                do {
                    _ = try region.withPage(p, for: .read) { bytes in
                        if matches(bytes, page: p) { good.add(1, ordering: .relaxed) } else { wrong.add(1, ordering: .relaxed) }
                    }
                } catch let e as SwapError where e.code == .ioError {
                    errors.add(1, ordering: .relaxed)
                } catch {
                    wrong.add(1, ordering: .relaxed)
                }
            }
            reads.add(k, ordering: .relaxed)
            readersDone.add(1, ordering: .releasing)
        }
        flaky.removeAllFaults()
        let injected = flaky.injected(.shortTransfers, on: .read) + flaky.injected(.ioErrors, on: .read)
        #expect(wrong.load(ordering: .relaxed) == 0, "a reader saw bytes that were not the page's")
        #expect(good.load(ordering: .relaxed) + errors.load(ordering: .relaxed) == reads.load(ordering: .relaxed))
        // A failed fault read reaches its reader (and under the swap-cache protocol the racers
        // waiting on its folio); a failed readahead reaches nobody, so no count ties the two.
        #expect(injected >= 40 && errors.load(ordering: .relaxed) > 0)
        #expect(space.statistics[.readErrors] == injected)
        for p in 0..<pages { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.checkInvariants() == [])
        print(
            "racing short reads (\(sync)): \(good.load(ordering: .relaxed)) good reads, \(errors.load(ordering: .relaxed)) typed errors from \(injected) injected read faults (\(flaky.injected(.shortTransfers, on: .read)) short), \(flaky.injected(.latencySpikes, on: .read) + flaky.injected(.latencySpikes, on: .write)) latency spikes"
        )
    }

    // MARK: Writes

    @Test(
        "a failed or torn write keeps the page dirty in memory with its bytes; swap-out after an access writes it again",
        arguments: bothProtocols, WriteFault.allCases)
    func failedWrite(sync: SwapInSync, fault: WriteFault) throws {
        let (space, flaky, memory) = try makeFaultySpace(memoryPages: 16, sync: sync)
        let region = try space.makeRegion(bytes: 4 * SwapPage.size)
        for p in 0..<4 { try region.withPage(p) { fill($0, page: p) } }
        flaky.inject(fault.fault, on: .write, when: .call(2))
        var code: SwapError.Code?
        do { try region.swapOut(pages: 0..<4) } catch { code = error.code }
        #expect(code == fault.code)
        #expect(space.statistics[.writeErrors] == 1)
        // Page 0 went out; page 1's write failed, so its frame is still in use; 2 and 3 were not
        // reached.
        #expect(space.residentFrames == 3)
        #expect(region.state(ofPage: 0) == .swapped && region.state(ofPage: 2) == .resident)
        // The folio of page 1 is still in memory, dirty (in the swap cache under its entry).
        if let flags = folioFlags(space, region, page: 1) {
            #expect(flags.contains(.dirty))
        } else {
            Issue.record("page 1 is neither mapped nor in the swap cache after its failed write")
        }
        #expect(space.checkInvariants() == [])

        // Its bytes are intact, served from memory: no read of the (torn) device copy.
        let readsBefore = memory.readCount
        try region.withPage(1, for: .read) { #expect(matches($0, page: 1)) }
        #expect(memory.readCount == readsBefore, "the page came from the device, not from memory")
        // A later swap-out writes it again, and what comes back is the whole page.
        let writesBefore = memory.writeCount
        #expect(try region.swapOut(pages: 0..<4) == 3)
        #expect(memory.writeCount == writesBefore + 3)
        #expect(space.residentFrames == 0)
        for p in 0..<4 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.statistics[.writeErrors] == 1 && flaky.injectedTotal == 1)
        #expect(space.checkInvariants() == [])
    }

    @Test(
        "after a failed write, swapping the same page out again writes it and frees its frame",
        arguments: bothProtocols)
    func failedWriteRetriedBySwapOut(sync: SwapInSync) throws {
        let (space, flaky, memory) = try makeFaultySpace(memoryPages: 16, sync: sync)
        let region = try space.makeRegion(bytes: SwapPage.size)
        try region.withPage(0) { fill($0, page: 0) }
        flaky.inject(.ioError, on: .write, when: .call(1))
        #expect(throws: SwapError.self) { try region.swapOut(pages: 0..<1) }
        #expect(try region.swapOut(pages: 0..<1) == 1, "the retry freed nothing")
        #expect(memory.writeCount == 1)
        #expect(space.residentFrames == 0)
        try region.withPage(0, for: .read) { #expect(matches($0, page: 0)) }
        #expect(space.checkInvariants() == [])
    }

    @Test("after a failed write, reclaim writes the page again and frees its frame", arguments: bothProtocols)
    func failedWriteRetriedByReclaim(sync: SwapInSync) throws {
        let (space, flaky, _) = try makeFaultySpace(memoryPages: 16, sync: sync)
        let region = try space.makeRegion(bytes: SwapPage.size)
        try region.withPage(0) { fill($0, page: 0) }
        flaky.inject(.short(), on: .write, when: .call(1))
        #expect(throws: SwapError.self) { try region.swapOut(pages: 0..<1) }
        #expect(space.residentFrames == 1)
        // Reclaim finds the dirty, unmapped folio on its LRU list; two passes age it through the
        // second chance its first touch gave it.
        var freed = 0
        for _ in 0..<4 where freed == 0 { freed += space.engine.reclaimer.shrink(target: 1) }
        #expect(freed == 1 && space.residentFrames == 0)
        #expect(flaky.calls(.write) == 2 && space.statistics[.swapOuts] == 1, "the torn write, then the retry")
        try region.withPage(0, for: .read) { #expect(matches($0, page: 0)) }
        #expect(space.checkInvariants() == [])
    }

    @Test(
        "reclaim under a budget with failing and torn writes loses no page, counts every error, and any access it fails can be retried",
        arguments: bothProtocols, [IOEngineChoice.automatic, .threadPool])
    func reclaimWithFailingWrites(sync: SwapInSync, io: IOEngineChoice) throws {
        var rng = SeededRandom.fromEnvironment("reclaim with failing writes \(sync)")
        let frames = 32
        let (space, flaky, _) = try makeFaultySpace(memoryPages: frames, sync: sync, seed: rng.next(), io: io)
        let pages = 4 * frames
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        flaky.inject(.ioError, on: .write, when: .probability(0.1))
        flaky.inject(.noSpace, on: .write, when: .probability(0.05))
        flaky.inject(.short(), on: .write, when: .probability(0.1))
        func injected() -> Int {
            flaky.injected(.ioErrors, on: .write) + flaky.injected(.noSpace, on: .write) + flaky.injected(.shortTransfers, on: .write)
        }
        // An access that needs a frame when reclaim could not write anything gets the device's
        // error (a typed .ioError or .diskFull, nothing lost); the caller may try again.
        var surfaced = 0
        func retrying(_ body: () throws -> Void) throws {
            for attempt in 1...100 {
                do { return try body() } catch let e as SwapError where (e.code == .ioError || e.code == .diskFull) && attempt < 100 {
                    surfaced += 1
                }
            }
        }
        var generation = [Int](repeating: 0, count: pages)
        var verified = 0
        var round = 0
        // Three rounds, and more until 20 writes have failed: reclaim writes runs of consecutive
        // slots in one call, so there are far fewer write calls than pages.
        while round < 3 || (injected() < 20 && round < 40) {
            round += 1
            for p in 0..<pages {
                try retrying { try region.withPage(p) { fill($0, page: p, generation: round) } }
                generation[p] = round
            }
            for _ in 0..<(2 * pages) {
                let p = Int.random(in: 0..<pages, using: &rng)
                try retrying { try region.withPage(p, for: .read) { #expect(matches($0, page: p, generation: generation[p])) } }
                verified += 1
            }
        }
        flaky.removeAllFaults()
        for p in 0..<pages {
            try retrying { try region.withPage(p, for: .read) { #expect(matches($0, page: p, generation: round)) } }
            verified += 1
        }
        #expect(injected() >= 20)
        #expect(space.statistics[.writeErrors] == injected())
        #expect(space.residentFrames <= frames)
        #expect(space.checkInvariants() == [])
        print(
            "reclaim with failing writes (\(sync)): \(verified) pages verified in \(round) rounds; \(injected()) write faults injected (\(flaky.injected(.shortTransfers, on: .write)) torn), \(space.statistics[.writeErrors]) counted, \(space.statistics[.swapOuts]) pages written; \(surfaced) accesses got the device's error and were retried"
        )
    }

    // MARK: A device that goes away

    @Test(
        "a device that goes away gives typed errors, no hang and no crash; back, it has every page",
        arguments: bothProtocols, [IOEngineChoice.automatic, .threadPool])
    func disappearingDevice(sync: SwapInSync, io: IOEngineChoice) throws {
        let frames = 16
        let (space, flaky, _) = try makeFaultySpace(memoryPages: frames, sync: sync, backgroundReclaim: true, io: io)
        let pages = 3 * frames
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }
        // Explicit swap-out skips pages the background reclaimer holds at that moment: repeat.
        for _ in 0..<100 where space.residentFrames > 0 {
            try region.swapOut(pages: 0..<pages)
            usleep(1000)
        }
        #expect(space.residentFrames == 0)
        flaky.disappear()
        let start = ContinuousClock.now
        let enodev = SwapError(.ioError, "", errno: Errno(rawValue: ENODEV))

        // Every page is on the gone device: each access, read or write, is an ENODEV I/O error,
        // and the page stays swapped.
        var refused = 0
        for p in 0..<pages {
            for access in [PageAccess.read, .write] {
                #expect(throws: enodev) { try region.withPage(p, for: access) { _ in } }
                refused += 1
            }
            #expect(region.state(ofPage: p) == .swapped)
        }
        #expect(space.statistics[.readErrors] == 2 * pages)
        #expect(space.residentFrames == 0)

        // New pages fill memory; once it is full of dirty pages that cannot be written, the
        // next one is a typed error naming the device's failure, not a hang.
        let fresh = try space.makeRegion(bytes: 2 * frames * SwapPage.size)
        var written = 0
        var failure: SwapError?
        for p in 0..<(2 * frames) {
            do {
                try fresh.withPage(p) { fill($0, page: 1000 + p) }
                written += 1
            } catch {
                failure = error as? SwapError
                break
            }
        }
        #expect(failure?.code == .ioError || failure?.code == .deviceGone)
        #expect(failure?.message.contains("swapping out failed") == true)
        #expect(written <= frames && written >= frames - 2, "\(written) pages written in a budget of \(frames)")
        // An explicit swap-out of them fails with the device's error, or finds them already
        // unmapped by the reclaim that failed to write them (see `failedWriteRetriedBySwapOut`);
        // either way no frame is freed, since none could be written.
        let resident = space.residentFrames
        do { #expect(try fresh.swapOut(pages: 0..<written) == 0) } catch { #expect(error == enodev) }
        #expect(space.residentFrames == resident)
        let elapsed = ContinuousClock.now - start
        #expect(elapsed < .seconds(10), "\(elapsed) with a gone device")
        #expect(space.checkInvariants() == [])

        // Back again: every page is where it was, on the device or in memory.
        flaky.reattach()
        for p in 0..<pages { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        for p in 0..<written { try fresh.withPage(p, for: .read) { #expect(matches($0, page: 1000 + p)) } }
        #expect(space.checkInvariants() == [])
        print(
            "gone device (\(sync)): \(refused) accesses refused with ENODEV, \(written) new pages, then \(failure.map { "\($0.code)" } ?? "no error"); the device refused \(flaky.injected(.goneCalls, on: .read)) reads and \(flaky.injected(.goneCalls, on: .write)) writes, in \(elapsed)"
        )
    }

    @Test("a region on a gone device can still be discarded and destroyed", arguments: bothProtocols)
    func destroyOnGoneDevice(sync: SwapInSync) throws {
        let (space, flaky, _) = try makeFaultySpace(memoryPages: 8, sync: sync)
        do {
            let region = try space.makeRegion(bytes: 16 * SwapPage.size)
            for p in 0..<16 { try region.withPage(p) { fill($0, page: p) } }
            flaky.disappear()
            try region.discard(pages: 0..<4)
            #expect((0..<4).allSatisfy { region.state(ofPage: $0) == .untouched })
        }
        #expect(space.residentFrames == 0 && space.devices[0].usedPages == 0)
        #expect(space.rootGroup.memoryUsage == 0 && space.rootGroup.swapUsage == 0)
        #expect(space.checkInvariants() == [])
    }
}
