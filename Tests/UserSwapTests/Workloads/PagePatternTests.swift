import Testing

@testable import UserSwapBench
@testable import UserSwapCLI

extension Workloads {
    @Suite("Page pattern and versions")
    struct PagePatternTests {
        @Test("a filled page checks against its own page and version and fails any other")
        func fillAndCheck() {
            let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
            defer { bytes.deallocate() }
            bytes.initializeMemory(as: UInt8.self, repeating: 0)
            #expect(PagePattern.check(UnsafeRawBufferPointer(bytes), page: 3, version: 0, seed: 1))
            PagePattern.fill(bytes, page: 3, version: 5, seed: 1)
            let read = UnsafeRawBufferPointer(bytes)
            #expect(PagePattern.check(read, page: 3, version: 5, seed: 1))
            #expect(PagePattern.quickCheck(read, page: 3, version: 5, seed: 1))
            #expect(!PagePattern.check(read, page: 3, version: 4, seed: 1))
            #expect(!PagePattern.quickCheck(read, page: 3, version: 4, seed: 1))
            #expect(!PagePattern.check(read, page: 4, version: 5, seed: 1))
            #expect(!PagePattern.check(read, page: 3, version: 5, seed: 2))
            #expect(!PagePattern.check(read, page: 3, version: 0, seed: 1))
            // One torn word in the middle: the quick check misses it, the full check does not.
            bytes.storeBytes(of: 0, toByteOffset: 2048, as: UInt64.self)
            #expect(PagePattern.quickCheck(read, page: 3, version: 5, seed: 1))
            #expect(!PagePattern.check(read, page: 3, version: 5, seed: 1))
        }

        @Test("a shorter period repeats the page's first words, and checks only against the same period", arguments: [1, 8, 128])
        func period(period: Int) {
            let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
            defer { bytes.deallocate() }
            PagePattern.fill(bytes, page: 9, version: 2, seed: 1, period: period)
            let words = UnsafeRawBufferPointer(bytes).bindMemory(to: UInt64.self)
            #expect((0..<512).allSatisfy { words[$0] == words[$0 % period] })
            #expect(Set(words).count == period)
            let read = UnsafeRawBufferPointer(bytes)
            #expect(PagePattern.check(read, page: 9, version: 2, seed: 1, period: period))
            #expect(PagePattern.quickCheck(read, page: 9, version: 2, seed: 1, period: period))
            #expect(!PagePattern.check(read, page: 9, version: 2, seed: 1))
            #expect(!PagePattern.check(read, page: 9, version: 1, seed: 1, period: period))
        }

        @Test("versions count up under the lock and skip zero when they wrap")
        func versions() {
            let versions = PageVersions(count: 4)
            #expect(versions.version(2) == 0)
            let old = versions.lock(2)
            versions.unlock(2, version: PageVersions.successor(of: old))
            #expect(versions.version(2) == 1)
            #expect(PageVersions.successor(of: PageVersions.versionMask) == 1)
        }
    }
}
