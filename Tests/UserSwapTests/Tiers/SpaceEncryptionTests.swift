import Testing
import UserSwapCompression

@testable import UserSwap
@testable import UserSwapEncryption

/// `SwapSpace.Configuration.encryption`: one setting (on by default) seals every device of a
/// space but `.memory`.
@Suite("Space encryption")
struct SpaceEncryptionTests {
    @Test("by default every device but .memory is sealed; .none uses devices as given; a tier that seals is not sealed again")
    func sealedByDefault() throws {
        let space = try SwapSpace(
            .init(
                memory: 64 * SwapPage.size,
                devices: [.memory(bytes: 4 << 20), .backend(MemoryBackend(pageCount: 1024))]))
        #expect(space.configuration.encryption.name == "randomKey" && space.warnings.isEmpty)
        #expect(space.devices.contains { $0.backend is MemoryBackend }, ".memory keeps its pages in the process: not sealed")
        #expect(space.devices.contains { $0.backend is EncryptedTier }, "any other backend is sealed")
        let clear = try SwapSpace(
            .init(
                memory: 64 * SwapPage.size, devices: [.backend(MemoryBackend(pageCount: 1024))],
                encryption: .none))
        #expect(clear.devices[0].backend is MemoryBackend)
        let tier = try EncryptedTier(lower: MemoryBackend(pageCount: 1024))
        let given = try SwapSpace(.init(memory: 64 * SwapPage.size, devices: [.backend(tier)]))
        #expect((given.devices[0].backend as? EncryptedTier) === tier, "an EncryptedTier given by hand is not wrapped in another")
        // A pool over a sealing tier seals too: used as given, so it still compresses.
        let pool = try CompressedTier(lower: try EncryptedTier(lower: MemoryBackend(pageCount: 1024)), poolBytes: 1 << 20)
        let stacked = try SwapSpace(.init(memory: 64 * SwapPage.size, devices: [.backend(pool)]))
        #expect(pool.sealsPages && (stacked.devices[0].backend as? CompressedTier) === pool)
        // A pool over a plain device does not: the space seals above it.
        let plainPool = try CompressedTier(lower: MemoryBackend(pageCount: 1024), poolBytes: 1 << 20)
        let wrapped = try SwapSpace(.init(memory: 64 * SwapPage.size, devices: [.backend(plainPool)]))
        #expect(!plainPool.sealsPages && wrapped.devices[0].backend is EncryptedTier)
    }

    @Test(
        "randomKey seals a swap file under reclaim (4× the budget), both protocols: nothing lost, no plaintext in the file",
        arguments: bothProtocols)
    func sealsFile(sync: SwapInSync) throws {
        let scratch = try DeviceScratchDirectory()
        let path = scratch.file("swap0")
        let space = try SwapSpace(
            .init(
                memory: 128 * SwapPage.size,
                devices: [.file(path: path, size: Int64((1 + 4 * 512) * SwapPage.size))],
                sync: sync, backgroundReclaim: true, encryption: .randomKey))
        let tier = try #require(space.devices[0].backend as? EncryptedTier)
        #expect(tier.lower is FileBackend)
        try EncryptedTierTests.stress(space: space, pages: 512, name: "space encryption \(sync)")
        let s = tier.statistics
        #expect(s.sealedPages > 128 && s.openedPages > 0 && s.authenticationFailures == 0)
        let contents = try #require(DeviceTestSupport.contents(path))
        let sentence = Array("the quick brown fox jumps over the lazy dog".utf8)
        #expect(
            !contents.indices.dropLast(sentence.count).contains {
                contents[$0] == sentence[0] && Array(contents[$0..<$0 + sentence.count]) == sentence
            },
            "plaintext found in the swap file")
    }

    @Test("a device added by swapOn is sealed too, and pages move to it and back intact")
    func swapOnIsSealed() throws {
        let space = try SwapSpace(
            .init(
                memory: 64 * SwapPage.size, devices: [.backend(MemoryBackend(pageCount: 1024))],
                backgroundReclaim: false, encryption: .randomKey))
        let added = try space.swapOn(.backend(MemoryBackend(pageCount: 1024), priority: 10))
        let tier = try #require(added.backend as? EncryptedTier)
        let region = try space.makeRegion(bytes: 256 * SwapPage.size)
        for p in 0..<256 { try region.withPage(p) { TierPages.text($0, page: p) } }
        #expect(try region.swapOut(pages: 0..<256) > 0)
        #expect(tier.statistics.sealedPages > 0, "the higher-priority device added later took pages, sealed")
        for p in 0..<256 {
            try region.withPage(p, for: .read) { bytes in #expect(TierPages.isText(bytes, page: p), "page \(p)") }
        }
        #expect(tier.statistics.openedPages > 0 && tier.statistics.authenticationFailures == 0)
    }

    @Test("a page changed on the device is a typed error when it is swapped in, never its bytes")
    func tamperedPageIsTypedError() throws {
        let space = try SwapSpace(
            .init(
                memory: 64 * SwapPage.size, devices: [.backend(MemoryBackend(pageCount: 1024))],
                backgroundReclaim: false, encryption: .randomKey))
        let tier = try #require(space.devices[0].backend as? EncryptedTier)
        let region = try space.makeRegion(bytes: 32 * SwapPage.size)
        for p in 0..<32 { try region.withPage(p) { TierPages.text($0, page: p) } }
        #expect(try region.swapOut(pages: 0..<32) == 32)
        // Flip one bit of every page below the tier (the allocator picks which slots hold them).
        for page in 1..<tier.pageCount {
            var bytes = try EncryptedTierTests.raw(tier.lower, page: page)
            bytes[100] ^= 0x01
            try EncryptedTierTests.put(bytes, into: tier.lower, page: page)
        }
        var refused = 0
        for p in 0..<32 {
            do {
                _ = try region.withPage(p, for: .read) { _ in Issue.record("page \(p) was returned after tampering") }
            } catch let error as SwapError {
                #expect(error.code == .ioError && error.message.contains("failed authentication"), "\(error)")
                refused += 1
            }
        }
        #expect(refused == 32)
        #expect(tier.statistics.authenticationFailures >= 32)
    }

    @Test("one key per space: the devices of a space share it, another space has its own")
    func keyPerSpace() throws {
        let a = try SwapSpace(
            .init(
                memory: 64 * SwapPage.size, devices: [.backend(MemoryBackend(pageCount: 1024)), .backend(MemoryBackend(pageCount: 1024))],
                encryption: .randomKey))
        let b = try SwapSpace(
            .init(memory: 64 * SwapPage.size, devices: [.backend(MemoryBackend(pageCount: 1024))], encryption: .randomKey))
        let a0 = try #require(a.devices[0].backend as? EncryptedTier)
        let a1 = try #require(a.devices[1].backend as? EncryptedTier)
        let b0 = try #require(b.devices[0].backend as? EncryptedTier)
        #expect(a0.key === a1.key)
        #expect(a0.key !== b0.key)
        #expect(
            !UnsafeBufferPointer(start: a0.key.bytes, count: 32).elementsEqual(UnsafeBufferPointer(start: b0.key.bytes, count: 32)),
            "two spaces drew the same key")
        try withPageBuffer { page in
            TierPages.text(page, page: 5)
            try b0.write(UnsafeRawBufferPointer(page), atPage: 5)
            // B's record for page 5 over A's ciphertext of the same page: refused.
            try a0.write(UnsafeRawBufferPointer(page), atPage: 5)
            try EncryptedTierTests.put(try EncryptedTierTests.raw(a0.lower, page: 5), into: b0.lower, page: 5)
            #expect(throws: SwapError.self) { try b0.read(into: page, atPage: 5) }
        }
    }
}
