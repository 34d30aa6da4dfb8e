import Glibc
import Synchronization
import Testing
import UserSwapCompression

@testable import UserSwap

@Suite("Compressed tier")
struct CompressedTierTests {
    static let codecs: [CompressionCodec] = [.lz4, .zstd(level: 1), .zstd(level: 3)]

    // MARK: The tier alone

    @Test("text pages round-trip through the pool, compressed, without touching the device", arguments: codecs)
    func compressibleRoundTrip(codec: CompressionCodec) throws {
        let lower = MemoryBackend(pageCount: 1 + 512)
        let tier = try CompressedTier(lower: lower, poolBytes: 1 << 20, codec: codec)
        try withPageBuffer { page in
            for p in 1...64 {
                TierPages.text(page, page: p)
                try tier.write(UnsafeRawBufferPointer(page), atPage: p)
            }
            for p in 1...64 {
                page.initializeMemory(as: UInt8.self, repeating: 0xAA)
                try tier.read(into: page, atPage: p)
                #expect(TierPages.isText(page, page: p), "page \(p) came back different")
            }
        }
        let s = tier.statistics
        #expect(s.storedPages == 64 && s.stores == 64 && s.rejects == 0 && s.loads == 64)
        #expect(lower.writeCount == 0 && lower.readCount == 0)
        let ratio = try #require(s.compressionRatio)
        #expect(ratio > 4, "a repeated sentence compresses far below a page (\(ratio))")
        #expect(s.poolBytes == s.compressedBytes + 64 * CompressedTier.entryOverhead)
        #expect(tier.checkInvariants() == [])
        print("compressed tier \(codec): text pages at ratio \(ratio), \(s.compressedBytes / 64) bytes each")
    }

    @Test("random pages are rejected to the lower device and come back from it", arguments: codecs)
    func incompressibleGoesBelow(codec: CompressionCodec) throws {
        let lower = MemoryBackend(pageCount: 1 + 512)
        let tier = try CompressedTier(lower: lower, poolBytes: 1 << 20, codec: codec)
        try withPageBuffer { page in
            for p in 1...16 {
                TierPages.random(page, page: p)
                try tier.write(UnsafeRawBufferPointer(page), atPage: p)
            }
            for p in 1...16 {
                #expect(try tier.readConsuming(into: page, atPage: p) == false, "a page read from below was not consumed")
                #expect(TierPages.isRandom(page, page: p))
            }
        }
        let s = tier.statistics
        #expect(s.rejects == 16 && s.stores == 0 && s.storedPages == 0 && s.poolBytes == 0)
        #expect(lower.writeCount == 16 && lower.readCount == 16)
    }

    @Test("a negative pool, a rejectAbove outside a page or a Zstandard level outside 1...19 is a typed error")
    func invalidArguments() throws {
        let lower = MemoryBackend(pageCount: 1 + 16)
        #expect(throws: SwapError(.invalidArgument, "")) { try CompressedTier(lower: lower, poolBytes: -1) }
        for rejectAbove in [0, SwapPage.size] {
            #expect(throws: SwapError(.invalidArgument, "")) {
                try CompressedTier(lower: lower, poolBytes: 1 << 20, rejectAbove: rejectAbove)
            }
        }
        for level: Int32 in [0, 20] {
            let error = try #require(throws: SwapError.self) {
                try CompressedTier(lower: lower, poolBytes: 1 << 20, codec: .zstd(level: level))
            }
            #expect(error.code == .invalidArgument && error.message.contains("level \(level)"), "\(error.message)")
        }
        _ = try CompressedTier(lower: lower, poolBytes: 0, codec: .zstd(level: 19), rejectAbove: 1)
    }

    @Test("zero and same-filled pages are kept as one word, uncompressed and free of charge")
    func sameFilled() throws {
        let lower = MemoryBackend(pageCount: 1 + 512)
        let tier = try CompressedTier(lower: lower, poolBytes: 0)  // no room for anything compressed
        let words: [UInt64] = [0, 0xFFFF_FFFF_FFFF_FFFF, 0x0102_0304_0506_0708, 42]
        try withPageBuffer { page in
            for (i, word) in words.enumerated() {
                page.bindMemory(to: UInt64.self).initialize(repeating: word)
                try tier.write(UnsafeRawBufferPointer(page), atPage: 1 + i)
            }
            // One differing byte at the end: not same-filled, and (with no pool room) rejected.
            page.bindMemory(to: UInt64.self).initialize(repeating: 7)
            page[SwapPage.size - 1] = 1
            try tier.write(UnsafeRawBufferPointer(page), atPage: 10)
            for (i, word) in words.enumerated() {
                page.initializeMemory(as: UInt8.self, repeating: 0x55)
                #expect(try tier.readConsuming(into: page, atPage: 1 + i) == true)
                #expect(page.bindMemory(to: UInt64.self).allSatisfy { $0 == word })
            }
        }
        let s = tier.statistics
        #expect(s.sameFilledStores == 4 && s.rejects == 1 && s.poolLimitRejects == 1)
        #expect(s.storedPages == 0 && s.poolBytes == 0, "exclusive loads emptied the pool")
        #expect(lower.writeCount == 1)
    }

    @Test("vectored and multi-page transfers mix pool pages and device pages in one call")
    func vectored() throws {
        let lower = MemoryBackend(pageCount: 1 + 512)
        let tier = try CompressedTier(lower: lower, poolBytes: 1 << 20)
        let count = 8
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count * SwapPage.size, alignment: SwapPage.size)
        defer { buffer.deallocate() }
        func page(_ i: Int) -> UnsafeMutableRawBufferPointer {
            UnsafeMutableRawBufferPointer(rebasing: buffer[i * SwapPage.size..<(i + 1) * SwapPage.size])
        }
        for i in 0..<count { TierPages.mixed(page(i), page: 100 + i, generation: 1) }
        try tier.write(UnsafeRawBufferPointer(buffer), atPage: 100)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        let halves = [
            UnsafeMutableRawBufferPointer(rebasing: buffer[..<(3 * SwapPage.size)]),
            UnsafeMutableRawBufferPointer(rebasing: buffer[(3 * SwapPage.size)...]),
        ]
        let consumed = try halves.withUnsafeBufferPointer { try tier.readConsuming(into: $0, atPage: 100) }
        #expect(consumed)
        for i in 0..<count { #expect(TierPages.isMixed(page(i), page: 100 + i, generation: 1), "page \(100 + i)") }
        // Pages 102 and 106 (random) were rejected: each its own run below.
        #expect(lower.writeCount == 2 && lower.readCount == 2)
        #expect(tier.statistics.storedPages == 0)
    }

    @Test("a full pool writes its oldest entries back, and every page still comes back byte for byte")
    func writeBackWhenFull() throws {
        let lower = MemoryBackend(pageCount: 1 + 1024)
        // Room for about 20 text pages.
        let probe = try CompressedTier(lower: MemoryBackend(pageCount: 1 + 512), poolBytes: 1 << 20)
        try withPageBuffer { page in
            TierPages.text(page, page: 1)
            try probe.write(UnsafeRawBufferPointer(page), atPage: 1)
        }
        let perPage = probe.statistics.poolBytes
        let tier = try CompressedTier(lower: lower, poolBytes: 20 * perPage + perPage / 2)
        try withPageBuffer { page in
            for p in 1...200 {
                TierPages.text(page, page: p)
                try tier.write(UnsafeRawBufferPointer(page), atPage: p)
                #expect(tier.statistics.poolBytes <= tier.statistics.poolLimit)
            }
            let s = tier.statistics
            #expect(s.writeBacks >= 170, "\(s.writeBacks) write-backs")
            #expect(s.storedPages <= 21)
            #expect(lower.writeCount == s.writeBacks)
            // Oldest first: page 1 went below, page 200 is still in the pool.
            #expect(lower.readCount == 0)
            for p in 1...200 {
                page.initializeMemory(as: UInt8.self, repeating: 0)
                try tier.read(into: page, atPage: p)
                #expect(TierPages.isText(page, page: p), "page \(p) came back different")
            }
            #expect(lower.readCount == s.writeBacks, "every written-back page is read from below, every other from the pool")
            #expect(s.peakPoolBytes <= s.poolLimit)
        }
        #expect(tier.checkInvariants() == [])
    }

    @Test("a failed write-back keeps the entry in the pool, and a later one succeeds")
    func writeBackFailure() throws {
        let lower = SlowBackend(pageCount: 1 + 512)
        let tier = try CompressedTier(lower: lower, poolBytes: 1 << 20)
        try withPageBuffer { page in
            for p in 1...4 {
                TierPages.text(page, page: p)
                try tier.write(UnsafeRawBufferPointer(page), atPage: p)
            }
            lower.failWrites.store(1, ordering: .relaxed)
            #expect(tier.writeBack(pages: 1) == 0)
            #expect(tier.statistics.writeBackFailures == 1 && tier.statistics.storedPages == 4)
            #expect(tier.checkInvariants() == [])
            // The failed entry went to the young end: the next write-backs take 2, 3, 4, then 1.
            #expect(tier.writeBack(pages: 4) == 4)
            #expect(tier.statistics.storedPages == 0)
            for p in 1...4 {
                try tier.read(into: page, atPage: p)
                #expect(TierPages.isText(page, page: p))
            }
        }
    }

    @Test("storing a page again replaces its entry; invalidating drops it")
    func replaceAndInvalidate() throws {
        let lower = MemoryBackend(pageCount: 1 + 512)
        let tier = try CompressedTier(lower: lower, poolBytes: 1 << 20)
        try withPageBuffer { page in
            TierPages.text(page, page: 5, generation: 1)
            try tier.write(UnsafeRawBufferPointer(page), atPage: 5)
            TierPages.text(page, page: 5, generation: 2)
            try tier.write(UnsafeRawBufferPointer(page), atPage: 5)
            #expect(tier.statistics.storedPages == 1)
            try tier.read(into: page, atPage: 5)
            #expect(TierPages.isText(page, page: 5, generation: 2))
            // Now incompressible: the pool's older copy must go, or a load would return it.
            TierPages.random(page, page: 5, generation: 3)
            try tier.write(UnsafeRawBufferPointer(page), atPage: 5)
            #expect(tier.statistics.storedPages == 0)
            try tier.read(into: page, atPage: 5)
            #expect(TierPages.isRandom(page, page: 5, generation: 3))
            TierPages.text(page, page: 6)
            try tier.write(UnsafeRawBufferPointer(page), atPage: 6)
        }
        tier.invalidate(page: 6)
        tier.invalidate(page: 7)  // nothing there: nothing happens
        let s = tier.statistics
        #expect(s.storedPages == 0 && s.poolBytes == 0 && s.invalidations == 1)
        #expect(tier.checkInvariants() == [])
    }

    @Test("threads on their own pages race write-backs, loads, stores and frees without losing a byte")
    func directRaces() throws {
        let threads = 4
        let pagesPerThread = 64
        let lower = SlowBackend(pageCount: 1 + 1024)
        lower.writeDelayMicros.store(50, ordering: .relaxed)
        lower.readDelayMicros.store(20, ordering: .relaxed)
        // Room for about 40 of the 256 pages: write-backs all the time.
        let tier = try CompressedTier(lower: lower, poolBytes: 40 * 400)
        var rng = SeededRandom.fromEnvironment("compressed tier direct races")
        let seeds = (0..<threads).map { _ in rng.next() }
        let failures = Atomic<Int>(0)
        let checks = Atomic<Int>(0)
        let running = Atomic<Bool>(true)
        let finished = Atomic<Int>(0)
        runThreads(threads + 1) { t in
            if t == threads {
                // The shrinker: write back a few of the oldest entries, again and again.
                while running.load(ordering: .acquiring) { _ = tier.writeBack(pages: 3) }
                return
            }
            var local = SeededRandom(seed: seeds[t])
            // Per page: what the tier holds (nil: nothing, freed) and whether we hold the only
            // copy (after a consuming load, the page must be stored again before its next read).
            var generation = [Int?](repeating: nil, count: pagesPerThread)
            var held = [Bool](repeating: false, count: pagesPerThread)
            // Never reused, even after a free: a stale copy can never pass for a new one.
            var lastGeneration = [Int](repeating: 0, count: pagesPerThread)
            withPageBuffer { page in
                for _ in 0..<3_000 {
                    let i = Int.random(in: 0..<pagesPerThread, using: &local)
                    let p = 1 + i * threads + t
                    do {
                        switch Int.random(in: 0..<10, using: &local) {
                        case 0..<4:
                            lastGeneration[i] += 1
                            let g = lastGeneration[i]
                            TierPages.mixed(page, page: p, generation: g)
                            try tier.write(UnsafeRawBufferPointer(page), atPage: p)
                            generation[i] = g
                            held[i] = false
                        case 4..<8:
                            guard let g = generation[i] else { continue }
                            if held[i] {
                                // The engine would write it again before it leaves memory.
                                TierPages.mixed(page, page: p, generation: g)
                                try tier.write(UnsafeRawBufferPointer(page), atPage: p)
                                held[i] = false
                            }
                            page.initializeMemory(as: UInt8.self, repeating: 0)
                            let consumed = try tier.readConsuming(into: page, atPage: p)
                            held[i] = consumed
                            if TierPages.isMixed(page, page: p, generation: g) {
                                checks.add(1, ordering: .relaxed)
                            } else {
                                failures.add(1, ordering: .relaxed)
                            }
                        case 8:
                            guard let g = generation[i], !held[i] else { continue }
                            try tier.read(into: page, atPage: p)
                            if TierPages.isMixed(page, page: p, generation: g) {
                                checks.add(1, ordering: .relaxed)
                            } else {
                                failures.add(1, ordering: .relaxed)
                            }
                        default:
                            tier.invalidate(page: p)
                            generation[i] = nil
                            held[i] = false
                        }
                    } catch {
                        failures.add(1, ordering: .relaxed)
                    }
                }
            }
            if finished.add(1, ordering: .acquiringAndReleasing).newValue == threads {
                running.store(false, ordering: .releasing)
            }
        }
        let s = tier.statistics
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(s.writeBacks > 100, "write-backs must really race the transfers (\(s.writeBacks))")
        #expect(tier.checkInvariants() == [])
        print(
            "compressed tier direct races: \(checks.load(ordering: .relaxed)) page checks, \(s.writeBacks) write-backs, \(s.writeBackWaits) waits for a write-back, \(s.loads) loads, \(s.rejects) rejects, \(s.invalidations) invalidations"
        )
    }

    // MARK: Under a swap space

    /// A space whose only device is a compressed tier over a memory device.
    static func makeSpace(
        memoryPages: Int, swapPages: Int = 1 + 8 * 512, poolBytes: Int, exclusiveLoads: Bool = true,
        sync: SwapInSync = .swapCache, backgroundReclaim: Bool = false
    ) throws -> (SwapSpace, CompressedTier, SlowBackend) {
        let lower = SlowBackend(pageCount: swapPages)
        let tier = try CompressedTier(lower: lower, poolBytes: poolBytes, exclusiveLoads: exclusiveLoads)
        let space = try SwapSpace(
            .init(
                memory: memoryPages * SwapPage.size, devices: [.backend(tier)], sync: sync,
                // The pool's own behaviour: a sealing tier above it would hand it ciphertext.
                backgroundReclaim: backgroundReclaim, encryption: .none))
        return (space, tier, lower)
    }

    @Test("an exclusive load leaves the page dirty: swapped out again, it is stored again")
    func exclusiveLoadMarksDirty() throws {
        for exclusive in [true, false] {
            let (space, tier, _) = try Self.makeSpace(memoryPages: 64, poolBytes: 1 << 20, exclusiveLoads: exclusive)
            let region = try space.makeRegion(bytes: 8 * SwapPage.size)
            for p in 0..<8 { try region.withPage(p) { TierPages.text($0, page: p) } }
            #expect(try region.swapOut(pages: 0..<8) == 8)
            #expect(tier.statistics.stores == 8)
            for p in 0..<8 { try region.withPage(p, for: .read) { #expect(TierPages.isText($0, page: p)) } }
            #expect(tier.statistics.loads == 8)
            #expect(tier.statistics.storedPages == (exclusive ? 0 : 8))
            _ = try region.swapOut(pages: 0..<8)
            let stores = tier.statistics.stores
            if exclusive {
                #expect(stores == 16, "a consumed page must be written again when it leaves memory")
            } else {
                #expect(stores == 8, "a page the pool kept leaves memory clean, without a write")
            }
            for p in 0..<8 { try region.withPage(p, for: .read) { #expect(TierPages.isText($0, page: p)) } }
            #expect(space.checkInvariants() == [])
            #expect(tier.checkInvariants() == [])
        }
    }

    @Test("discarding swapped-out pages frees their pool entries")
    func discardInvalidates() throws {
        let (space, tier, _) = try Self.makeSpace(memoryPages: 64, poolBytes: 1 << 20)
        let region = try space.makeRegion(bytes: 32 * SwapPage.size)
        for p in 0..<32 { try region.withPage(p) { TierPages.mixed($0, page: p, generation: 1) } }
        #expect(try region.swapOut(pages: 0..<32) == 32)
        let before = tier.statistics
        #expect(before.storedPages == 24 && before.rejects == 8 && before.sameFilledPages == 8)
        try region.discard(pages: 0..<32)
        let after = tier.statistics
        #expect(after.storedPages == 0 && after.poolBytes == 0)
        #expect(after.invalidations == 24)
        #expect(space.devices[0].usedPages == 0)
        #expect(space.checkInvariants() == [])
        #expect(tier.checkInvariants() == [])
    }

    @Test("threads on 4× the budget over a small pool lose nothing, and the pool stays in its limit", arguments: bothProtocols)
    func reclaimStress(sync: SwapInSync) throws {
        let frames = 128
        let threads = 4
        let ownPages = 4 * frames
        let sharedPages = 32
        let poolBytes = 32 * (100 + CompressedTier.entryOverhead)  // about 32 text pages: the rest is written back
        let (space, tier, lower) = try Self.makeSpace(memoryPages: frames, poolBytes: poolBytes, sync: sync, backgroundReclaim: true)
        let own = try space.makeRegion(bytes: ownPages * SwapPage.size)
        let shared = try space.makeRegion(bytes: sharedPages * SwapPage.size)
        for p in 0..<sharedPages { try shared.withPage(p) { TierPages.mixed($0, page: 10_000 + p, generation: 7) } }

        var rng = SeededRandom.fromEnvironment("compressed tier reclaim stress \(sync)")
        let seeds = (0..<threads).map { _ in rng.next() }
        let generations = Mutex([Int](repeating: 0, count: ownPages))
        let failures = Atomic<Int>(0)
        let verified = Atomic<Int>(0)
        let running = Atomic<Bool>(true)
        let finished = Atomic<Int>(0)
        runThreads(threads + 1) { t in
            if t == threads {
                // Write-backs racing swap-in and free, besides those a full pool makes.
                while running.load(ordering: .acquiring) {
                    _ = tier.writeBack(pages: 2)
                    usleep(100)
                }
                return
            }
            var local = SeededRandom(seed: seeds[t])
            var gens = [Int](repeating: 0, count: ownPages)  // 0: a zero page
            var lastGens = [Int](repeating: 0, count: ownPages)  // never reused after a discard
            for _ in 0..<2_500 {
                let roll = Int.random(in: 0..<20, using: &local)
                do {
                    if roll < 5 {
                        let p = Int.random(in: 0..<sharedPages, using: &local)
                        _ = try shared.withPage(p, for: .read) { bytes in
                            if TierPages.isMixed(bytes, page: 10_000 + p, generation: 7) {
                                verified.add(1, ordering: .relaxed)
                            } else {
                                failures.add(1, ordering: .relaxed)
                            }
                        }
                        continue
                    }
                    let p = Int.random(in: 0..<(ownPages / threads), using: &local) * threads + t
                    if roll < 11 {
                        lastGens[p] += 1
                        gens[p] = lastGens[p]
                        try own.withPage(p, for: .write) { TierPages.mixed($0, page: p, generation: gens[p]) }
                    } else if roll < 19 {
                        try own.withPage(p, for: .read) { bytes in
                            let ok = gens[p] == 0 ? bytes.allSatisfy { $0 == 0 } : TierPages.isMixed(bytes, page: p, generation: gens[p])
                            if ok { verified.add(1, ordering: .relaxed) } else { failures.add(1, ordering: .relaxed) }
                        }
                    } else {
                        try own.discard(pages: p..<p + 1)
                        gens[p] = 0
                    }
                } catch {
                    failures.add(1, ordering: .relaxed)
                }
            }
            generations.withLock { g in for p in 0..<ownPages where p % threads == t { g[p] = gens[p] } }
            if finished.add(1, ordering: .acquiringAndReleasing).newValue == threads {
                running.store(false, ordering: .releasing)
            }
        }
        let final = generations.withLock { $0 }
        for p in 0..<ownPages {
            try own.withPage(p, for: .read) { bytes in
                let ok = final[p] == 0 ? bytes.allSatisfy { $0 == 0 } : TierPages.isMixed(bytes, page: p, generation: final[p])
                if ok { verified.add(1, ordering: .relaxed) } else { failures.add(1, ordering: .relaxed) }
            }
        }
        let s = tier.statistics
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(space.statistics[.swapOuts] > frames, "the workload must really swap")
        #expect(s.writeBacks > 0 && s.rejects > 0 && s.loads > 0 && s.sameFilledStores > 0 && s.invalidations > 0)
        #expect(s.peakPoolBytes <= poolBytes, "the pool passed its limit: \(s.peakPoolBytes) > \(poolBytes)")
        #expect(lower.memory.writeCount == s.lowerWrites)
        #expect(space.checkInvariants() == [])
        #expect(tier.checkInvariants() == [])
        print(
            "compressed tier reclaim stress (\(sync)): \(verified.load(ordering: .relaxed)) page checks, swap-outs \(space.statistics[.swapOuts]), swap-ins \(space.statistics[.swapIns]); tier: \(s.stores) stores (\(s.sameFilledStores) same-filled), \(s.rejects) rejects, \(s.writeBacks) write-backs, \(s.writeBackWaits) write-back waits, \(s.loads) loads, \(s.invalidations) invalidations, peak pool \(s.peakPoolBytes)/\(poolBytes) bytes, ratio \(s.cumulativeCompressionRatio ?? 0)"
        )
    }
}
