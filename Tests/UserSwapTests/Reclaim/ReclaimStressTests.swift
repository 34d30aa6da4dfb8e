import Glibc
import Synchronization
import Testing

@testable import UserSwap

@Suite("Reclaim under a RAM budget")
struct ReclaimStressTests {
    @Test("threads reading and writing 4× the budget lose nothing and never exceed it", arguments: bothProtocols)
    func stress(sync: SwapInSync) throws {
        let frames = 256
        let threads = 6
        let ownPages = 4 * frames  // written by their owner, read back by it
        let sharedPages = 64  // written once, read by everyone at once
        let opsPerThread = 6_000
        let (space, _) = try makeSpace(memoryPages: frames, swapPages: 1 + 12 * 512, sync: sync, backgroundReclaim: true)
        let own = try space.makeRegion(bytes: ownPages * SwapPage.size)
        let shared = try space.makeRegion(bytes: sharedPages * SwapPage.size)
        for p in 0..<sharedPages { try shared.withPage(p) { fill($0, page: p, generation: 7) } }

        // Last generation written per own page: only the owner thread (p % threads) touches it.
        let generations = Mutex([Int](repeating: -1, count: ownPages))
        let failures = Atomic<Int>(0)
        let verified = Atomic<Int>(0)
        let maxResident = Atomic<Int>(0)
        let running = Atomic<Bool>(true)
        var rng = SeededRandom.fromEnvironment("reclaim stress \(sync)")
        let seeds = (0..<threads).map { _ in rng.next() }

        runThreads(threads + 1) { t in
            if t == threads {
                // Monitor: the frames in use never exceed the budget.
                while running.load(ordering: .acquiring) {
                    let r = space.residentFrames
                    if r > maxResident.load(ordering: .relaxed) { maxResident.store(r, ordering: .relaxed) }
                    usleep(200)
                }
                return
            }
            var local = SeededRandom(seed: seeds[t])
            var gens = [Int](repeating: -1, count: ownPages)
            for _ in 0..<opsPerThread {
                let roll = Int.random(in: 0..<10, using: &local)
                do {
                    if roll < 3 {
                        let p = Int.random(in: 0..<sharedPages, using: &local)
                        _ = try shared.withPage(p, for: .read) { bytes in
                            if matches(bytes, page: p, generation: 7) {
                                verified.add(1, ordering: .relaxed)
                            } else {
                                failures.add(1, ordering: .relaxed)
                            }
                        }
                        continue
                    }
                    // An own page: one this thread owns.
                    let p = Int.random(in: 0..<(ownPages / threads), using: &local) * threads + t
                    if roll < 6 {
                        gens[p] += 1
                        try own.withPage(p, for: .write) { fill($0, page: p, generation: gens[p]) }
                    } else {
                        try own.withPage(p, for: .read) { bytes in
                            let ok = gens[p] < 0 ? bytes.allSatisfy { $0 == 0 } : matches(bytes, page: p, generation: gens[p])
                            if ok { verified.add(1, ordering: .relaxed) } else { failures.add(1, ordering: .relaxed) }
                        }
                    }
                } catch {
                    failures.add(1, ordering: .relaxed)
                }
            }
            generations.withLock { g in for p in 0..<ownPages where p % threads == t { g[p] = gens[p] } }
            if t == 0 { running.store(false, ordering: .releasing) }
        }
        running.store(false, ordering: .releasing)

        // Every page checked against what was last written to it.
        let final = generations.withLock { $0 }
        for p in 0..<ownPages {
            try own.withPage(p, for: .read) { bytes in
                let ok = final[p] < 0 ? bytes.allSatisfy { $0 == 0 } : matches(bytes, page: p, generation: final[p])
                if ok { verified.add(1, ordering: .relaxed) } else { failures.add(1, ordering: .relaxed) }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(maxResident.load(ordering: .relaxed) <= frames)
        #expect(space.statistics[.swapOuts] > frames, "the workload must really swap")
        #expect(space.checkInvariants() == [])
        print(
            "reclaim stress (\(sync)): \(threads * opsPerThread) operations, \(verified.load(ordering: .relaxed)) page checks, max resident \(maxResident.load(ordering: .relaxed))/\(frames) frames, swap-ins \(space.statistics[.swapIns]), swap-outs \(space.statistics[.swapOuts]), direct reclaims \(space.statistics[.directReclaims]), kswapd wake-ups \(space.statistics[.kswapdWakeups])"
        )
    }

    @Test("reclaim gets through a budget of recently touched pages instead of giving up")
    func everyPageReferenced() throws {
        // Every resident page was just touched (referenced): reclaim must clear those bits on
        // the whole list before it may declare the budget full.
        let (space, _) = try makeSpace(memoryPages: 1024, swapPages: 1 + 10 * 512)
        let region = try space.makeRegion(bytes: 4096 * SwapPage.size)
        for p in 0..<4096 { try region.withPage(p) { fill($0, page: p) } }
        for p in stride(from: 0, to: 4096, by: 97) { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.checkInvariants() == [])
    }

    @Test("direct reclaim of a fill writes requests of its whole batch, 1/32 of the budget")
    func directReclaimWritesLargeRequests() throws {
        // 4,096 frames: batches of 128 pages. With the kernel's 32 the fill wrote 128 KiB
        // requests at most, and a 4 KiB fill reached 55–65 % of the disk's sequential write.
        let (space, _) = try makeSpace(memoryPages: 4096, swapPages: 1 + 40 * 512)
        #expect(space.engine.reclaimer.largeBatch == 128)
        let region = try space.makeRegion(bytes: 16384 * SwapPage.size)
        for p in 0..<16384 { try region.withPage(p) { fill($0, page: p) } }
        let writes = space.statistics[.deviceWrites], pages = space.statistics[.swapOuts]
        #expect(pages >= 12288)
        #expect(Double(pages) / Double(max(writes, 1)) > 96, "\(pages) pages in \(writes) writes")
        for p in stride(from: 0, to: 16384, by: 61) { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(space.checkInvariants() == [])
    }

    @Test("deactivated pages carry the workingset bit into their shadows")
    func restores() throws {
        let (space, _) = try makeSpace(memoryPages: 64, policy: .workingset)
        let region = try space.makeRegion(bytes: 256 * SwapPage.size)
        for round in 0..<3 {
            for p in 0..<256 { try region.withPage(p, for: round == 0 ? .write : .read) { _ in } }
        }
        #expect(space.statistics[.refaults] > 0)
        #expect(space.statistics[.restores] > 0)
    }

    @Test("a page evicted and soon refaulted is activated by its shadow")
    func refaultActivation() throws {
        let (space, _) = try makeSpace(memoryPages: 64, policy: .workingset)
        let region = try space.makeRegion(bytes: 8 * SwapPage.size)
        for p in 0..<8 { try region.withPage(p) { fill($0, page: p) } }
        try region.swapOut(pages: 0..<8)
        #expect(space.devices[0].slot(region.pte(3).swapEntry).isShadow)
        try region.withPage(3, for: .read) { #expect(matches($0, page: 3)) }
        #expect(space.statistics[.refaults] == 1)
        // Nothing active yet: the distance (8 evictions) is more than the active list (0 pages).
        #expect(space.statistics[.activations] == 0)
    }

    @Test("shadows round-trip age, group, workingset bit and use count")
    func shadowEncoding() {
        for (age, group, ws, uses) in [
            (UInt64(0), 0, false, 0), (Shadow.ageMask, 1023, true, UseCount.maxCount),
            (12345, 7, true, 9), (1 << 37, 512, false, 1),
        ] {
            let s = Shadow(age: age, group: group, workingset: ws, uses: uses)
            #expect(Shadow(packed: s.packed) == s)
            #expect(s.packed <= SwapTableSlot.maxPayload)
        }
    }
}
