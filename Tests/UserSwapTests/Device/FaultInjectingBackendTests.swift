import Glibc
import Testing
import UserSwapTestSupport

@testable import UserSwap

/// The wrapper itself: each trigger fires when it says, each fault does what it says to the
/// bytes, and the counters count it. (What the engine does with the faults is in
/// `Reliability/FaultInjectionTests.swift`.)
@Suite("Fault-injecting backend")
struct FaultInjectingBackendTests {
    private func makeBackend(seed: UInt64 = 1) -> (FaultInjectingBackend, MemoryBackend) {
        let memory = MemoryBackend(pageCount: 1 + 512)
        return (FaultInjectingBackend(memory, seed: seed), memory)
    }

    private func page(_ byte: UInt8) -> UnsafeMutableRawBufferPointer {
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: SwapPage.size, alignment: SwapPage.size)
        b.initializeMemory(as: UInt8.self, repeating: byte)
        return b
    }

    @Test("a .call(n) rule fails exactly the nth call after it was added, once")
    func nthCall() throws {
        let (flaky, _) = makeBackend()
        let buffer = page(1)
        defer { buffer.deallocate() }
        try flaky.write(UnsafeRawBufferPointer(buffer), atPage: 1)
        flaky.inject(.ioError, on: .write, when: .call(3))
        var failed: [Int] = []
        for i in 1...6 {
            do { try flaky.write(UnsafeRawBufferPointer(buffer), atPage: 1) } catch {
                #expect(error.code == .ioError && error.errno == .ioError)
                failed.append(i)
            }
        }
        #expect(failed == [3])
        #expect(flaky.injected(.ioErrors, on: .write) == 1 && flaky.injected(.ioErrors, on: .read) == 0)
        #expect(flaky.calls(.write) == 7)
    }

    @Test("a page-range rule fails every call touching the range, up to its limit")
    func pageRange() throws {
        let (flaky, _) = makeBackend()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2 * SwapPage.size, alignment: SwapPage.size)
        defer { buffer.deallocate() }
        flaky.inject(.noSpace, on: .write, when: .pages(10..<12), times: 3)
        var outcomes: [SwapError.Code?] = []
        for start in [8, 9, 10, 11, 12, 10, 10] {
            do {
                try flaky.write(UnsafeRawBufferPointer(buffer), atPage: start)
                outcomes.append(nil)
            } catch { outcomes.append(error.code) }
        }
        // 8..<10 misses, 9..<11, 10..<12 and 11..<13 overlap, then the limit of 3 is used up.
        #expect(outcomes == [nil, .diskFull, .diskFull, .diskFull, nil, nil, nil])
        #expect(flaky.injected(.noSpace, on: .write) == 3)
        // On a read, ENOSPC makes no sense: it is an EIO.
        flaky.inject(.noSpace, on: .read, when: .always)
        #expect(throws: SwapError(.ioError, "", errno: .ioError)) { try flaky.read(into: buffer, atPage: 1) }
    }

    @Test("probability rules replay with the same seed and hit about p of the calls")
    func probability() throws {
        func pattern(seed: UInt64) -> [Bool] {
            let (flaky, _) = makeBackend(seed: seed)
            flaky.inject(.ioError, on: .read, when: .probability(0.25))
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: SwapPage.size, alignment: SwapPage.size)
            defer { buffer.deallocate() }
            return (0..<4000).map { i in (try? flaky.read(into: buffer, atPage: 1 + i % 512)) == nil }
        }
        let a = pattern(seed: 7), b = pattern(seed: 7), c = pattern(seed: 8)
        #expect(a == b)
        #expect(a != c)
        let hits = a.filter { $0 }.count
        #expect(hits > 850 && hits < 1150, "\(hits) of 4000 at p = 0.25")
    }

    @Test("corruption succeeds silently: a read inverts one byte of each page it hands out, a write of each page it stores")
    func corruption() throws {
        let (flaky, memory) = makeBackend()
        let two = UnsafeMutableRawBufferPointer.allocate(byteCount: 2 * SwapPage.size, alignment: SwapPage.size)
        defer { two.deallocate() }
        two.initializeMemory(as: UInt8.self, repeating: 0x5A)
        try flaky.write(UnsafeRawBufferPointer(two), atPage: 3)
        flaky.inject(.corrupt(), on: .read, when: .call(1))
        try flaky.read(into: two, atPage: 3)
        for offset in [0, SwapPage.size] {
            #expect(two[offset] == ~0x5A && two[offset + 1] == 0x5A && two[offset + SwapPage.size - 1] == 0x5A)
        }
        // The device kept the right bytes; the next read is clean again.
        try flaky.read(into: two, atPage: 3)
        #expect(two.allSatisfy { $0 == 0x5A })

        flaky.inject(.corrupt(byte: 1000), on: .write, when: .always)
        try flaky.write(UnsafeRawBufferPointer(two), atPage: 3)
        #expect(two.allSatisfy { $0 == 0x5A }, "the caller's buffer changed")
        let stored = page(0)
        defer { stored.deallocate() }
        try memory.read(into: stored, atPage: 4)
        #expect(stored[1000] == ~0x5A && stored.indices.allSatisfy { $0 == 1000 || stored[$0] == 0x5A })
        #expect(flaky.injected(.corruptions, on: .read) == 1 && flaky.injected(.corruptions, on: .write) == 1)
    }

    @Test("a short read fills the start of the buffer and fails; the device is untouched")
    func shortRead() throws {
        let (flaky, memory) = makeBackend()
        let new = page(0xAB), old = page(0x11)
        defer {
            new.deallocate()
            old.deallocate()
        }
        try memory.write(UnsafeRawBufferPointer(new), atPage: 5)
        flaky.inject(.short(bytes: 100), on: .read, when: .call(1))
        #expect(throws: SwapError.self) { try flaky.read(into: old, atPage: 5) }
        #expect(old[..<100].allSatisfy { $0 == 0xAB } && old[100...].allSatisfy { $0 == 0x11 })
        #expect(flaky.injected(.shortTransfers, on: .read) == 1)
        // Vectored: half of two pages is the whole first buffer.
        let a = page(0), b = page(0)
        defer {
            a.deallocate()
            b.deallocate()
        }
        try memory.write(UnsafeRawBufferPointer(new), atPage: 6)
        flaky.inject(.short(), on: .read, when: .call(1))
        let buffers = [a, b]
        _ = buffers.withUnsafeBufferPointer { list in
            #expect(throws: SwapError.self) { try flaky.read(into: list, atPage: 5) }
        }
        #expect(a.allSatisfy { $0 == 0xAB } && b.allSatisfy { $0 == 0 })
    }

    @Test("a torn write leaves the new bytes up to the cut and the old ones after it")
    func tornWrite() throws {
        let (flaky, memory) = makeBackend()
        let old = page(0x11), new = page(0xCD), check = page(0)
        defer {
            old.deallocate()
            new.deallocate()
            check.deallocate()
        }
        try memory.write(UnsafeRawBufferPointer(old), atPage: 3)
        flaky.inject(.short(bytes: 1000), on: .write, when: .call(1))
        #expect(throws: SwapError(.ioError, "", errno: .ioError)) { try flaky.write(UnsafeRawBufferPointer(new), atPage: 3) }
        try memory.read(into: check, atPage: 3)
        #expect(check[..<1000].allSatisfy { $0 == 0xCD } && check[1000...].allSatisfy { $0 == 0x11 })
        // The next write is whole again.
        try flaky.write(UnsafeRawBufferPointer(new), atPage: 3)
        try memory.read(into: check, atPage: 3)
        #expect(check.allSatisfy { $0 == 0xCD })
        #expect(flaky.injected(.shortTransfers, on: .write) == 1 && flaky.injectedTotal == 1)
    }

    @Test("a device that disappears fails every call with ENODEV until reattached, contents kept")
    func disappear() throws {
        let (flaky, _) = makeBackend()
        let data = page(0x5A), check = page(0)
        defer {
            data.deallocate()
            check.deallocate()
        }
        try flaky.write(UnsafeRawBufferPointer(data), atPage: 2)
        flaky.inject(.disappear, on: .read, when: .call(2))
        try flaky.read(into: check, atPage: 2)
        let enodev = SwapError(.ioError, "", errno: Errno(rawValue: ENODEV))
        #expect(throws: enodev) { try flaky.read(into: check, atPage: 2) }
        #expect(flaky.isGone)
        #expect(throws: enodev) { try flaky.write(UnsafeRawBufferPointer(data), atPage: 2) }
        #expect(throws: enodev) { try flaky.discard(pages: 1..<3) }
        #expect(flaky.injected(.goneCalls, on: .read) == 1 && flaky.injected(.goneCalls, on: .write) == 2)
        flaky.reattach()
        check.initializeMemory(as: UInt8.self, repeating: 0)
        try flaky.read(into: check, atPage: 2)
        #expect(check.allSatisfy { $0 == 0x5A })
    }

    @Test("a latency spike delays the transfer and lets it succeed")
    func latency() throws {
        let (flaky, _) = makeBackend()
        let data = page(7)
        defer { data.deallocate() }
        flaky.inject(.latency(.milliseconds(30)), on: .write, when: .call(1))
        let start = ContinuousClock.now
        try flaky.write(UnsafeRawBufferPointer(data), atPage: 1)
        #expect(ContinuousClock.now - start >= .milliseconds(30))
        #expect(flaky.injected(.latencySpikes, on: .write) == 1)
    }
}
