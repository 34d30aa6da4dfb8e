import Foundation
import Glibc
import Synchronization
import Testing

@testable import UserSwap

@Suite("Memory backend")
struct MemoryBackendTests {
    @Test("a new device reads zeros, and written pages come back byte for byte")
    func roundTrip() throws {
        let backend = MemoryBackend(pageCount: 64)
        var buffer = [UInt8](repeating: 0xEE, count: SwapPage.size)
        try buffer.withUnsafeMutableBytes { try backend.read(into: $0, atPage: 63) }
        #expect(buffer.allSatisfy { $0 == 0 })
        for page in 1..<64 {
            try DeviceTestSupport.pattern(page: page).withUnsafeBytes { try backend.write($0, atPage: page) }
        }
        for page in 1..<64 {
            try buffer.withUnsafeMutableBytes { try backend.read(into: $0, atPage: page) }
            #expect(buffer == DeviceTestSupport.pattern(page: page), "page \(page)")
        }
    }

    @Test("counters count pages and calls, a vectored transfer being one call")
    func counters() throws {
        let backend = MemoryBackend(pageCount: 64)
        let three = [UInt8](repeating: 7, count: 3 * SwapPage.size)
        try three.withUnsafeBytes { try backend.write($0, atPage: 1) }
        var one = [UInt8](repeating: 0, count: SwapPage.size)
        try one.withUnsafeMutableBytes { try backend.read(into: $0, atPage: 2) }
        #expect(one.allSatisfy { $0 == 7 })
        #expect(backend.writeCount == 3 && backend.writeCallCount == 1)
        #expect(backend.readCount == 1 && backend.readCallCount == 1)

        let a = UnsafeMutableRawBufferPointer.allocate(byteCount: 2 * SwapPage.size, alignment: 64)
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: SwapPage.size, alignment: 64)
        defer {
            a.deallocate()
            b.deallocate()
        }
        a.initializeMemory(as: UInt8.self, repeating: 1)
        b.initializeMemory(as: UInt8.self, repeating: 2)
        try [UnsafeRawBufferPointer(a), UnsafeRawBufferPointer(b)].withUnsafeBufferPointer {
            try backend.write($0, atPage: 10)
        }
        #expect(backend.writeCount == 6 && backend.writeCallCount == 2)
        try [b, a].withUnsafeBufferPointer { try backend.read(into: $0, atPage: 10) }
        #expect(b.allSatisfy { $0 == 1 }, "page 10 lands in the first buffer")
        #expect(a[..<SwapPage.size].allSatisfy { $0 == 1 } && a[SwapPage.size...].allSatisfy { $0 == 2 })
        #expect(backend.readCount == 4 && backend.readCallCount == 2)

        backend.resetCounters()
        #expect(backend.readCount == 0 && backend.writeCount == 0)
        #expect(backend.readCallCount == 0 && backend.writeCallCount == 0)
    }

    @Test("discard zeros exactly the discarded pages and counts them")
    func discard() throws {
        let backend = MemoryBackend(pageCount: 64)
        for page in 1..<64 {
            try DeviceTestSupport.pattern(page: page).withUnsafeBytes { try backend.write($0, atPage: page) }
        }
        try backend.discard(pages: 5..<40)
        try backend.discard(pages: 41..<42)
        #expect(backend.discardCount == 36)
        var buffer = [UInt8](repeating: 0, count: SwapPage.size)
        for page in 1..<64 {
            try buffer.withUnsafeMutableBytes { try backend.read(into: $0, atPage: page) }
            let discarded = (5..<40).contains(page) || page == 41
            if discarded {
                #expect(buffer.allSatisfy { $0 == 0 }, "page \(page) was discarded")
            } else {
                #expect(buffer == DeviceTestSupport.pattern(page: page), "page \(page) was kept")
            }
        }
    }

    /// Resident set size of this process, from /proc/self/statm.
    private func residentBytes() -> Int {
        guard let text = ProcFile.text("/proc/self/statm") else { return 0 }
        let fields = text.split(separator: " ")
        return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    @Test("a 64 GiB device costs memory only for the pages written")
    func sparse() throws {
        let before = residentBytes()
        let backend = MemoryBackend(pageCount: 16 << 20)
        let page = DeviceTestSupport.pattern(page: 3)
        for index in stride(from: 1, to: 16 << 20, by: 1 << 20) {
            try page.withUnsafeBytes { try backend.write($0, atPage: index) }
        }
        var buffer = [UInt8](repeating: 0, count: SwapPage.size)
        try buffer.withUnsafeMutableBytes { try backend.read(into: $0, atPage: (16 << 20) - 1) }
        #expect(buffer.allSatisfy { $0 == 0 })
        try buffer.withUnsafeMutableBytes { try backend.read(into: $0, atPage: 1 + (15 << 20)) }
        #expect(buffer == page)
        let grown = residentBytes() - before
        // Generous: other tests run in parallel in this process; touching the whole device would be 64 GiB.
        #expect(grown < 512 << 20, "resident set grew by \(grown) bytes for 17 touched pages of 64 GiB")
    }

    @Test("threads transferring their own pages at once see their own bytes, and every page is counted")
    func concurrent() throws {
        let threads = 8
        let perThread = 500
        let backend = MemoryBackend(pageCount: 1 + threads * perThread)
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            var buffer = [UInt8](repeating: 0, count: SwapPage.size)
            for i in 0..<perThread {
                let index = 1 + i * threads + thread
                let bytes = DeviceTestSupport.pattern(page: index, seed: UInt8(thread))
                do {
                    try bytes.withUnsafeBytes { try backend.write($0, atPage: index) }
                    try buffer.withUnsafeMutableBytes { try backend.read(into: $0, atPage: index) }
                    if buffer != bytes { failures.withLock { $0 += 1 } }
                } catch {
                    failures.withLock { $0 += 1 }
                }
            }
        }
        #expect(failures.withLock { $0 } == 0)
        #expect(backend.writeCount == threads * perThread, "counted \(backend.writeCount) writes")
        #expect(backend.readCount == threads * perThread)
        #expect(backend.readCallCount == threads * perThread)
    }
}
