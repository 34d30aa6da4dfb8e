import Dispatch
import Glibc
import Synchronization
import Testing
import UserSwapCompression
import UserSwapEncryption

@testable import UserSwap

@Suite("Encrypted tier")
struct EncryptedTierTests {
    /// Reads page `page` of `backend` as it is stored (ciphertext, for a tier's lower device).
    static func raw(_ backend: any SwapBackend, page: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: SwapPage.size)
        try bytes.withUnsafeMutableBytes { try backend.read(into: $0, atPage: page) }
        return bytes
    }

    static func put(_ bytes: [UInt8], into backend: any SwapBackend, page: Int) throws {
        try bytes.withUnsafeBytes { try backend.write($0, atPage: page) }
    }

    @Test("pages round-trip, and only ciphertext reaches the device")
    func roundTrip() throws {
        let lower = MemoryBackend(pageCount: 1 + 512)
        let tier = try EncryptedTier(lower: lower)
        try withPageBuffer { page in
            for p in 1...32 {
                TierPages.mixed(page, page: p, generation: 1)
                try tier.write(UnsafeRawBufferPointer(page), atPage: p)
                let stored = try Self.raw(lower, page: p)
                #expect(stored != Array(page), "page \(p) reached the device in the clear")
                // A same-filled page would show as a repeated word if it were not sealed.
                #expect(Set(stored).count > 64, "page \(p)'s ciphertext does not look random")
            }
            for p in 1...32 {
                page.initializeMemory(as: UInt8.self, repeating: 0)
                #expect(try tier.readConsuming(into: page, atPage: p) == false)
                #expect(TierPages.isMixed(page, page: p, generation: 1), "page \(p)")
            }
        }
        // The same plaintext written twice gives two different ciphertexts (a new nonce each time).
        try withPageBuffer { page in
            TierPages.text(page, page: 7)
            try tier.write(UnsafeRawBufferPointer(page), atPage: 7)
            let first = try Self.raw(lower, page: 7)
            try tier.write(UnsafeRawBufferPointer(page), atPage: 7)
            #expect(try Self.raw(lower, page: 7) != first)
        }
        let s = tier.statistics
        #expect(s.sealedPages == 34 && s.openedPages == 32 && s.authenticationFailures == 0)
        #expect(s.sideTableBytes == 513 * EncryptedTier.bytesPerPage && EncryptedTier.bytesPerPage == 24)
    }

    @Test("the side table gives back the records of a freed cluster: its slots read as never written until written again")
    func freedClustersLeaveTheSideTable() throws {
        let lower = MemoryBackend(pageCount: 4 * 512)
        let tier = try EncryptedTier(lower: lower)
        let clusterBytes = 512 * EncryptedTier.bytesPerPage
        try withPageBuffer { page in
            for p in Array(512..<1024) + Array(1536..<2048) {
                fill(page, page: p)
                try tier.write(UnsafeRawBufferPointer(page), atPage: p)
            }
            let written = tier.statistics.sideTableResidentBytes
            #expect(written >= 2 * clusterBytes)
            tier.forget(pages: 512..<1024)
            #expect(tier.statistics.sideTableResidentBytes == written - clusterBytes)
            #expect {
                try tier.read(into: page, atPage: 600)
            } throws: { error in
                (error as? SwapError)?.message.contains("never written") == true
            }
            try tier.read(into: page, atPage: 1600)
            #expect(matches(page, page: 1600))
            fill(page, page: 600, generation: 2)
            try tier.write(UnsafeRawBufferPointer(page), atPage: 600)
            page.initializeMemory(as: UInt8.self, repeating: 0)
            try tier.read(into: page, atPage: 600)
            #expect(matches(page, page: 600, generation: 2))
        }

        // In a space: every slot freed, every cluster's records go.
        let device = try EncryptedTier(lower: MemoryBackend(pageCount: 1 + 8 * 512))
        let space = try SwapSpace(.init(memory: 64 * SwapPage.size, devices: [.backend(device)]))
        let region = try space.makeRegion(bytes: 1024 * SwapPage.size)
        for p in 0..<1024 { try region.withPage(p) { fill($0, page: p) } }
        let inUse = device.statistics.sideTableResidentBytes
        #expect(inUse >= 2 * clusterBytes)
        try region.discard(pages: 0..<1024)
        let left = device.statistics.sideTableResidentBytes
        print("side table: \(inUse / 1024) KiB resident with 1,024 pages swapped, \(left / 1024) KiB once they were discarded")
        // The first cluster may keep its records: its slot 0 is the device's header, so it never
        // empties.
        #expect(left <= clusterBytes, "the records of freed clusters stayed: \(left) bytes")
        #expect(space.checkInvariants() == [])
    }

    @Test("vectored and multi-page transfers are sealed page by page")
    func vectored() throws {
        let lower = MemoryBackend(pageCount: 1 + 512)
        let tier = try EncryptedTier(lower: lower)
        let count = 6
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count * SwapPage.size, alignment: SwapPage.size)
        defer { buffer.deallocate() }
        func page(_ i: Int) -> UnsafeMutableRawBufferPointer {
            UnsafeMutableRawBufferPointer(rebasing: buffer[i * SwapPage.size..<(i + 1) * SwapPage.size])
        }
        for i in 0..<count { TierPages.text(page(i), page: 40 + i) }
        let pieces = [
            UnsafeRawBufferPointer(rebasing: buffer[..<(2 * SwapPage.size)]),
            UnsafeRawBufferPointer(rebasing: buffer[(2 * SwapPage.size)...]),
        ]
        try pieces.withUnsafeBufferPointer { try tier.write($0, atPage: 40) }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        try tier.read(into: buffer, atPage: 40)
        for i in 0..<count { #expect(TierPages.isText(page(i), page: 40 + i)) }
        // Each page is sealed on its own: one page read alone opens too.
        try withPageBuffer { one in
            try tier.read(into: one, atPage: 43)
            #expect(TierPages.isText(one, page: 43))
        }
    }

    @Test("a write of a whole swap cluster goes down in runs of the scratch buffer's size, in pieces across runs, and reads back")
    func longWriteInRuns() throws {
        let lower = MemoryBackend(pageCount: 1 + 1024)
        let tier = try EncryptedTier(lower: lower)
        let count = 512
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count * SwapPage.size, alignment: SwapPage.size)
        defer { buffer.deallocate() }
        func page(_ i: Int) -> UnsafeMutableRawBufferPointer {
            UnsafeMutableRawBufferPointer(rebasing: buffer[i * SwapPage.size..<(i + 1) * SwapPage.size])
        }
        for i in 0..<count { TierPages.text(page(i), page: 100 + i) }
        // Pieces whose edges fall inside runs: 100 pages, then 1, then the rest.
        let pieces = [
            UnsafeRawBufferPointer(rebasing: buffer[..<(100 * SwapPage.size)]),
            UnsafeRawBufferPointer(rebasing: buffer[(100 * SwapPage.size)..<(101 * SwapPage.size)]),
            UnsafeRawBufferPointer(rebasing: buffer[(101 * SwapPage.size)...]),
        ]
        try pieces.withUnsafeBufferPointer { try tier.write($0, atPage: 100) }
        // The scratch holds 64 pages (256 KiB): 512 pages are 8 writes below, not one 2 MiB one.
        #expect(lower.writeCallCount == count / EncryptedTier.scratchPages && lower.writeCount == count)
        #expect(tier.statistics.sealedPages == count)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        try tier.read(into: buffer, atPage: 100)
        #expect((0..<count).allSatisfy { TierPages.isText(page($0), page: 100 + $0) })
    }

    @Test("sealing reuses its scratch buffers: one for a stream of writes, one per writer at once, and the pages read back")
    func scratchReused() throws {
        let lower = MemoryBackend(pageCount: 1 + 1024)
        let tier = try EncryptedTier(lower: lower)
        // One thread: single pages, then runs longer than the scratch buffer.
        try withPageBuffer { page in
            for p in 1...200 {
                TierPages.text(page, page: p)
                try tier.write(UnsafeRawBufferPointer(page), atPage: p)
            }
        }
        let run = UnsafeMutableRawBufferPointer.allocate(byteCount: 100 * SwapPage.size, alignment: SwapPage.size)
        defer { run.deallocate() }
        for round in 0..<4 {
            for i in 0..<100 {
                let page = UnsafeMutableRawBufferPointer(rebasing: run[i * SwapPage.size..<(i + 1) * SwapPage.size])
                TierPages.text(page, page: 201 + i + round)
            }
            try tier.write(UnsafeRawBufferPointer(run), atPage: 201)
        }
        #expect(tier.scratch.allocations == 1, "\(tier.scratch.allocations) scratch buffers for 204 writes")

        // Writers at once: never more buffers than writers (each holds one at a time).
        let writers = 4
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: writers) { w in
            withPageBuffer { page in
                for k in 0..<100 {
                    let p = 400 + w * 100 + k
                    TierPages.text(page, page: p)
                    do { try tier.write(UnsafeRawBufferPointer(page), atPage: p) } catch { failures.add(1, ordering: .relaxed) }
                }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(tier.scratch.allocations <= writers, "\(tier.scratch.allocations) scratch buffers for \(writers) writers")
        try withPageBuffer { page in
            for p in 1...200 {
                try tier.read(into: page, atPage: p)
                #expect(TierPages.isText(page, page: p), "page \(p)")
            }
            for i in 0..<100 {
                try tier.read(into: page, atPage: 201 + i)
                #expect(TierPages.isText(page, page: 201 + i + 3), "page \(201 + i)")
            }
            for p in 400..<(400 + writers * 100) {
                try tier.read(into: page, atPage: p)
                #expect(TierPages.isText(page, page: p), "page \(p)")
            }
        }
    }

    @Test("a flipped bit, a moved page or an older copy fails authentication and returns nothing")
    func tamperDetection() throws {
        let lower = MemoryBackend(pageCount: 1 + 512)
        let tier = try EncryptedTier(lower: lower)
        try withPageBuffer { page in
            for p in 1...3 {
                TierPages.text(page, page: p, generation: 1)
                try tier.write(UnsafeRawBufferPointer(page), atPage: p)
            }
            func expectRefused(_ p: Int, _ what: String) {
                page.initializeMemory(as: UInt8.self, repeating: 0x77)
                do {
                    try tier.read(into: page, atPage: p)
                    Issue.record("\(what): page \(p) was returned")
                } catch {
                    #expect(error.code == .ioError)
                    #expect(error.message.contains("failed authentication"), "\(error.message)")
                }
                #expect(page.allSatisfy { $0 == 0 }, "\(what): the buffer still holds bytes of the page")
            }

            // One bit flipped on the device.
            var bytes = try Self.raw(lower, page: 1)
            bytes[1234] ^= 0x10
            try Self.put(bytes, into: lower, page: 1)
            expectRefused(1, "a flipped bit")
            bytes[1234] ^= 0x10
            try Self.put(bytes, into: lower, page: 1)
            try tier.read(into: page, atPage: 1)
            #expect(TierPages.isText(page, page: 1, generation: 1), "the page restored reads again")

            // Page 2's ciphertext copied into slot 3: the offset is authenticated.
            let three = try Self.raw(lower, page: 3)
            try Self.put(try Self.raw(lower, page: 2), into: lower, page: 3)
            expectRefused(3, "a moved page")
            try Self.put(three, into: lower, page: 3)

            // An older ciphertext of the same slot put back (a replay).
            let old = try Self.raw(lower, page: 2)
            TierPages.text(page, page: 2, generation: 2)
            try tier.write(UnsafeRawBufferPointer(page), atPage: 2)
            try Self.put(old, into: lower, page: 2)
            expectRefused(2, "a replayed page")

            // A slot never written through the tier.
            expectRefused(100, "a page never written")

            // A failing page in a multi-page read wipes the whole transfer.
            let two = UnsafeMutableRawBufferPointer.allocate(byteCount: 2 * SwapPage.size, alignment: SwapPage.size)
            defer { two.deallocate() }
            two.initializeMemory(as: UInt8.self, repeating: 0x77)
            #expect(throws: SwapError.self) { try tier.read(into: two, atPage: 1) }  // pages 1 and 2 (replayed)
            #expect(two.allSatisfy { $0 == 0 })
        }
        #expect(tier.statistics.authenticationFailures == 5)
    }

    @Test("a fresh tier cannot read what another tier (another key) wrote")
    func keysDiffer() throws {
        let lower = MemoryBackend(pageCount: 1 + 512)
        let first = try EncryptedTier(lower: lower)
        try withPageBuffer { page in
            TierPages.text(page, page: 9)
            try first.write(UnsafeRawBufferPointer(page), atPage: 9)
        }
        let second = try EncryptedTier(lower: lower)
        _ = withPageBuffer { page in
            #expect(throws: SwapError.self) { try second.read(into: page, atPage: 9) }
        }
    }

    // MARK: Under a swap space

    @Test("a space over an encrypted swap file under reclaim (4× the budget) loses nothing", arguments: bothProtocols)
    func spaceOverEncryptedFile(sync: SwapInSync) throws {
        let scratch = try DeviceScratchDirectory()
        let path = scratch.file("swap0")
        try SwapFile.format(path: path, bytes: Int64((1 + 4 * 512) * SwapPage.size))
        let (_, file) = try SwapFile.open(path: path)
        let tier = try EncryptedTier(lower: file)
        let space = try SwapSpace(.init(memory: 128 * SwapPage.size, devices: [.backend(tier)], sync: sync, backgroundReclaim: true))
        try Self.stress(space: space, pages: 512, name: "encrypted file \(sync)")
        let s = tier.statistics
        #expect(s.sealedPages > 128 && s.openedPages > 0 && s.authenticationFailures == 0)
        // Nothing in the clear on the file: no page of the data shows up in it.
        let contents = try #require(DeviceTestSupport.contents(path))
        let sentence = Array("the quick brown fox jumps over the lazy dog".utf8)
        #expect(
            !contents.indices.dropLast(sentence.count).contains {
                contents[$0] == sentence[0] && Array(contents[$0..<$0 + sentence.count]) == sentence
            },
            "plaintext found in the swap file")
    }

    @Test("compressed over encrypted over a file: pages are compressed in memory and sealed on the way out")
    func compressedOverEncrypted() throws {
        let scratch = try DeviceScratchDirectory()
        let path = scratch.file("swap0")
        try SwapFile.format(path: path, bytes: Int64((1 + 4 * 512) * SwapPage.size))
        let (_, file) = try SwapFile.open(path: path)
        let encrypted = try EncryptedTier(lower: file)
        let compressed = try CompressedTier(lower: encrypted, poolBytes: 24 * (100 + CompressedTier.entryOverhead))
        let space = try SwapSpace(.init(memory: 128 * SwapPage.size, devices: [.backend(compressed)], backgroundReclaim: true))
        try Self.stress(space: space, pages: 512, name: "compressed over encrypted file")
        let c = compressed.statistics
        let e = encrypted.statistics
        #expect(c.rejects > 0 && c.writeBacks > 0 && c.loads > 0)
        #expect(e.sealedPages == c.lowerWrites, "every page that left the pool was sealed")
        #expect(e.openedPages == c.lowerReads && e.authenticationFailures == 0)
        #expect(compressed.checkInvariants() == [])
    }

    /// Two threads write and read their own pages of a region `pages` long (4× the space's
    /// budget or more), then every page is checked.
    static func stress(space: SwapSpace, pages: Int, name: String) throws {
        let threads = 2
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        var rng = SeededRandom.fromEnvironment(name)
        let seeds = (0..<threads).map { _ in rng.next() }
        let generations = Mutex([Int](repeating: 0, count: pages))
        let failures = Atomic<Int>(0)
        let verified = Atomic<Int>(0)
        runThreads(threads) { t in
            var local = SeededRandom(seed: seeds[t])
            var gens = [Int](repeating: 0, count: pages)
            for p in stride(from: t, to: pages, by: threads) {
                gens[p] = 1
                do { try region.withPage(p) { TierPages.mixed($0, page: p, generation: 1) } } catch { failures.add(1, ordering: .relaxed) }
            }
            for _ in 0..<3_000 {
                let p = Int.random(in: 0..<(pages / threads), using: &local) * threads + t
                do {
                    if Int.random(in: 0..<4, using: &local) == 0 {
                        gens[p] += 1
                        try region.withPage(p, for: .write) { TierPages.mixed($0, page: p, generation: gens[p]) }
                    } else {
                        _ = try region.withPage(p, for: .read) { bytes in
                            if TierPages.isMixed(bytes, page: p, generation: gens[p]) {
                                verified.add(1, ordering: .relaxed)
                            } else {
                                failures.add(1, ordering: .relaxed)
                            }
                        }
                    }
                } catch {
                    failures.add(1, ordering: .relaxed)
                }
            }
            generations.withLock { g in for p in stride(from: t, to: pages, by: threads) { g[p] = gens[p] } }
        }
        let final = generations.withLock { $0 }
        for p in 0..<pages {
            _ = try region.withPage(p, for: .read) { bytes in
                if TierPages.isMixed(bytes, page: p, generation: final[p]) {
                    verified.add(1, ordering: .relaxed)
                } else {
                    failures.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(space.statistics[.swapIns] > pages / 2, "the workload must really swap")
        #expect(space.checkInvariants() == [])
        print(
            "\(name): \(verified.load(ordering: .relaxed)) page checks, swap-outs \(space.statistics[.swapOuts]), swap-ins \(space.statistics[.swapIns])"
        )
    }
}
