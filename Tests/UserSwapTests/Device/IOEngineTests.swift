import CUserSwap
import Foundation
import Glibc
import Synchronization
import Testing
import UserSwapCLI
import UserSwapTestSupport

@testable import UserSwap
@testable import UserSwapBench

/// A memory backend whose writes take a while and are counted as they finish: a device with a
/// real write queue.
final class SlowWriteBackend: SwapBackend, @unchecked Sendable {
    let memory: MemoryBackend
    let writeMicros: UInt32
    let writesDone = Atomic<Int>(0)

    init(pageCount: Int, writeMicros: UInt32) {
        memory = MemoryBackend(pageCount: pageCount)
        self.writeMicros = writeMicros
    }

    var pageCount: Int { memory.pageCount }

    func read(into buffer: UnsafeMutableRawBufferPointer, atPage page: Int) throws(SwapError) {
        try memory.read(into: buffer, atPage: page)
    }

    func write(_ buffer: UnsafeRawBufferPointer, atPage page: Int) throws(SwapError) {
        usleep(writeMicros)
        try memory.write(buffer, atPage: page)
        writesDone.add(1, ordering: .relaxed)
    }
}

/// Page-aligned pages for transfers (O_DIRECT needs the alignment), freed at the end.
final class AlignedPages {
    let base: UnsafeMutableRawPointer
    let count: Int

    init(_ count: Int) {
        self.count = count
        base = UnsafeMutableRawPointer.allocate(byteCount: count * SwapPage.size, alignment: SwapPage.size)
    }

    deinit { base.deallocate() }

    func page(_ i: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + i * SwapPage.size, count: SwapPage.size)
    }

    func fill(_ i: Int, with value: UInt64) {
        let words = page(i).bindMemory(to: UInt64.self)
        for w in 0..<words.count { words[w] = value &+ UInt64(w) }
    }

    func holds(_ i: Int, _ value: UInt64) -> Bool {
        let words = page(i).bindMemory(to: UInt64.self)
        return (0..<words.count).allSatisfy { words[$0] == value &+ UInt64($0) }
    }
}

@Suite("I/O engine")
struct IOEngineTests {
    /// A fresh swap file of `pages` pages in a scratch folder on disk.
    static func withSwapFile<T>(pages: Int, _ body: (FileBackend) throws -> T) throws -> T {
        try ScratchDirectory.with(prefix: "userswap-io-test") { folder in
            let path = folder + "/swap0"
            try SwapFile.format(path: path, bytes: Int64(pages * SwapPage.size))
            let (_, file) = try SwapFile.open(path: path)
            return try body(file)
        }
    }

    @Test("automatic picks io_uring for a swap file and the calling thread for memory; a refused choice says why")
    func choice() throws {
        try Self.withSwapFile(pages: 1 + 512) { file in
            let engine = IOEngine(backend: file)
            // io_uring works on the machines we build on; where it does not, the reason says why.
            if engine.info.kind == .threadPool {
                #expect(engine.info.reason.contains("io_uring setup failed"))
            } else {
                #expect(engine.info == IOEngineInfo(kind: .ioUring, reason: "automatic: swap file"))
            }
        }
        let memory = IOEngine(backend: MemoryBackend(pageCount: 1 + 512))
        #expect(memory.info.kind == .synchronous)
        let asked = IOEngine(backend: MemoryBackend(pageCount: 1 + 512), choice: .ioUring)
        #expect(asked.info.kind == .threadPool)
        #expect(asked.info.reason.contains("not a swap file"))
    }

    @Test("IORing: no-ops come back with their tags; a bad descriptor is the request's -EBADF")
    func ring() throws {
        let ring: IORing
        do { ring = try IORing(entries: 8) } catch {
            try Test.cancel("io_uring unavailable here (\(error))")
        }
        #expect(ring.prepareNop(tag: 41) && ring.prepareNop(tag: 42))
        #expect(try ring.submit() == 2)
        var tags: Set<UInt64> = []
        tags.insert(try ring.wait().tag)
        tags.insert(try ring.wait().tag)
        #expect(tags == [41, 42])
        #expect(ring.poll() == nil)
        var v = iovec(iov_base: nil, iov_len: 0)
        #expect(ring.prepare(write: false, fd: -1, vectors: &v, count: 1, offset: 0, tag: 7))
        #expect(try ring.submit() == 1)
        let c = try ring.wait()
        #expect(c.tag == 7 && c.result == -EBADF)
    }

    @Test("many writes in flight, then vectored reads: every page comes back", arguments: IOEngineChoice.allCases)
    func roundTrip(choice: IOEngineChoice) throws {
        try Self.withSwapFile(pages: 1 + 512) { file in
            let engine = IOEngine(backend: file, choice: choice, options: IOEngineOptions(slots: 64, readsInCaller: false))
            let pages = 256
            let out = AlignedPages(pages)
            for i in 0..<pages { out.fill(i, with: UInt64(i) << 32 | 0xABCD) }
            // Runs of 4 pages, all submitted before any is waited for (more than the slots: the
            // rest are done by the caller).
            var tickets: [IOTicket] = []
            for run in stride(from: 0, to: pages, by: 4) {
                let buffers = (run..<run + 4).map { UnsafeRawBufferPointer(out.page($0)) }
                tickets.append(buffers.withUnsafeBufferPointer { engine.submitWrite($0, atPage: 1 + run) })
            }
            for t in tickets { try engine.wait(t) }
            let back = AlignedPages(pages)
            for run in stride(from: 0, to: pages, by: 8) {
                let buffers = (run..<run + 8).map { back.page($0) }
                _ = try buffers.withUnsafeBufferPointer { try engine.read(into: $0, atPage: 1 + run) }
            }
            for i in 0..<pages { #expect(back.holds(i, UInt64(i) << 32 | 0xABCD), "page \(i)") }
            _ = try engine.read(into: back.page(0), atPage: 1 + 17)
            #expect(back.holds(0, UInt64(17) << 32 | 0xABCD))
            // Nothing to move is done at once.
            try engine.wait(engine.submitWrite(UnsafeBufferPointer(start: nil, count: 0), atPage: 1))
        }
    }

    @Test(
        "a batch of reads is one hand-off to the driver; requests past the free slots are done by the caller",
        arguments: IOEngineChoice.allCases)
    func batchedReads(choice: IOEngineChoice) throws {
        try Self.withSwapFile(pages: 1 + 512) { file in
            let stats = SwapStatistics()
            let engine = IOEngine(backend: file, choice: choice, options: IOEngineOptions(slots: 16, readsInCaller: false), stats: stats)
            let pages = 256
            let out = AlignedPages(pages)
            for i in 0..<pages { out.fill(i, with: UInt64(i) << 32 | 0x5EED) }
            _ = try (0..<pages).map { UnsafeRawBufferPointer(out.page($0)) }.withUnsafeBufferPointer { b in
                try engine.wait(engine.submitWrite(UnsafeBufferPointer(rebasing: b[0..<pages]), atPage: 1))
            }
            let submissions = stats[.ioSubmissions]
            // 24 requests of 1 to 3 pages at scattered places, more than the 16 slots.
            let back = AlignedPages(pages)
            var requests: [(buffers: [UnsafeMutableRawBufferPointer], page: Int)] = []
            var next = 0
            for r in 0..<24 {
                let n = 1 + r % 3
                requests.append(((next..<next + n).map { back.page($0) }, page: 1 + (r * 37) % 200))
                next += n
            }
            let tickets = engine.submitReads(requests)
            for t in tickets { try engine.wait(t) }
            var k = 0
            for (r, request) in requests.enumerated() {
                for i in 0..<request.buffers.count {
                    #expect(back.holds(k, UInt64(request.page - 1 + i) << 32 | 0x5EED), "request \(r) page \(i)")
                    k += 1
                }
            }
            let handOffs = stats[.ioSubmissions] - submissions
            #expect(handOffs == (engine.info.kind == .synchronous ? 0 : 1), "\(handOffs) hand-offs for one batch")
            if engine.info.kind != .synchronous { #expect(stats[.ioInline] == 24 - 16) }
        }
    }

    @Test("a read submitted while 1,000 write-backs are queued completes before they do (thread pool)")
    func readOvertakesWritesInPool() throws {
        let backend = SlowWriteBackend(pageCount: 1 + 2048, writeMicros: 200)
        let engine = IOEngine(
            backend: backend, choice: .threadPool,
            options: IOEngineOptions(slots: 1100, workers: 4, maxWritesInFlight: 2, readsInCaller: false))
        let pages = AlignedPages(2)
        pages.fill(0, with: 7)
        try backend.memory.write(UnsafeRawBufferPointer(pages.page(0)), atPage: 2000)
        var one = UnsafeRawBufferPointer(pages.page(1))
        let writes = (0..<1000).map { i in
            withUnsafePointer(to: &one) { engine.submitWrite(UnsafeBufferPointer(start: $0, count: 1), atPage: 1 + i) }
        }
        let doneBeforeRead = backend.writesDone.load(ordering: .relaxed)
        let start = cus_monotonic_ns()
        _ = try engine.read(into: pages.page(0), atPage: 2000)
        let readNs = cus_monotonic_ns() - start
        let doneWhenReadDone = backend.writesDone.load(ordering: .relaxed)
        print(
            "read done after \(readNs / 1000) µs; writes done: \(doneBeforeRead) of 1000 when it was submitted, \(doneWhenReadDone) when it completed"
        )
        #expect(pages.holds(0, 7))
        // The writes already running (2) and those that finish while the read's worker is
        // scheduled (200 µs each: a few, dozens on a loaded machine) — not the ~1,000 queued
        // ahead of it, which a FIFO queue would make it wait for.
        #expect(doneWhenReadDone - doneBeforeRead <= 100, "\(doneWhenReadDone - doneBeforeRead) writes finished while the read waited")
        #expect(doneWhenReadDone < 1000)
        for w in writes { try engine.wait(w) }
        #expect(backend.writesDone.load(ordering: .relaxed) == 1000)
    }

    @Test("a read submitted while 1,000 write-backs are queued completes before they do (io_uring, swap file)")
    func readOvertakesWritesInRing() throws {
        try Self.withSwapFile(pages: 1 + 2048) { file in
            let engine = IOEngine(
                backend: file, choice: .ioUring,
                options: IOEngineOptions(slots: 1100, maxWritesInFlight: 2, readsInCaller: false))
            guard engine.info.kind == .ioUring else {
                try Test.cancel("io_uring unavailable here (\(engine.info.reason))")
            }
            let pages = AlignedPages(1 + 1000)
            for i in 0...1000 { pages.fill(i, with: UInt64(i) &* 0x9E37_79B9) }
            _ = try withUnsafePointer(to: UnsafeRawBufferPointer(pages.page(1000))) {
                try engine.write(UnsafeBufferPointer(start: $0, count: 1), atPage: 2000)
            }
            var writes: [IOTicket] = []
            for i in 0..<1000 {
                var b = UnsafeRawBufferPointer(pages.page(i))
                writes.append(withUnsafePointer(to: &b) { engine.submitWrite(UnsafeBufferPointer(start: $0, count: 1), atPage: 1 + i) })
            }
            let back = AlignedPages(1)
            let doneBeforeRead = writes.filter { engine.isDone($0) }.count
            _ = try engine.read(into: back.page(0), atPage: 2000)
            let doneWhenReadDone = writes.filter { engine.isDone($0) }.count
            print("io_uring: writes done: \(doneBeforeRead) of 1000 when the read was submitted, \(doneWhenReadDone) when it completed")
            #expect(back.holds(0, UInt64(1000) &* 0x9E37_79B9))
            #expect(doneWhenReadDone < 1000, "the read completed only after every write")
            for w in writes { try engine.wait(w) }
            for i in stride(from: 0, to: 1000, by: 97) {
                _ = try engine.read(into: back.page(0), atPage: 1 + i)
                #expect(back.holds(0, UInt64(i) &* 0x9E37_79B9), "page \(i)")
            }
        }
    }

    @Test("a failed transfer is the backend's typed error, in every engine", arguments: [IOEngineChoice.synchronous, .threadPool])
    func errors(choice: IOEngineChoice) throws {
        let flaky = FaultInjectingBackend(MemoryBackend(pageCount: 1 + 512))
        let engine = IOEngine(backend: flaky, choice: choice, options: IOEngineOptions(readsInCaller: false))
        let pages = AlignedPages(1)
        flaky.inject(.ioError, on: .write, when: .call(1))
        let error = #expect(throws: SwapError.self) {
            _ = try withUnsafePointer(to: UnsafeRawBufferPointer(pages.page(0))) {
                try engine.write(UnsafeBufferPointer(start: $0, count: 1), atPage: 3)
            }
        }
        #expect(error?.code == .ioError)
        flaky.inject(.ioError, on: .read, when: .call(1))
        #expect(throws: SwapError.self) { _ = try engine.read(into: pages.page(0), atPage: 3) }
        // The next transfers work again.
        _ = try engine.read(into: pages.page(0), atPage: 3)
    }

    @Test("io_uring reports the file's typed error for a failed transfer")
    func ringError() throws {
        try Self.withSwapFile(pages: 1 + 512) { file in
            let engine = IOEngine(backend: file, choice: .ioUring, options: IOEngineOptions(readsInCaller: false))
            guard engine.info.kind == .ioUring else {
                try Test.cancel("io_uring unavailable here (\(engine.info.reason))")
            }
            // A buffer the kernel cannot write to: EFAULT comes back as the request's result.
            let bad = UnsafeMutableRawBufferPointer(start: UnsafeMutableRawPointer(bitPattern: 4096), count: SwapPage.size)
            let error = #expect(throws: SwapError.self) { _ = try engine.read(into: bad, atPage: 5) }
            #expect(error?.errno == .badAddress)
        }
    }

    @Test(
        "a space over a swap file with each engine, 4× its budget, 3 threads: every page intact, invariants hold",
        arguments: [IOEngineChoice.ioUring, .threadPool, .synchronous])
    func space(choice: IOEngineChoice) throws {
        try ScratchDirectory.with(prefix: "userswap-io-space") { folder in
            // The engines on the file itself: a sealed file goes through its tier (thread pool).
            let space = try SwapSpace(
                .init(
                    memory: 1 << 20, devices: [.file(path: folder + "/swap0", size: 16 << 20)],
                    encryption: .none, ioEngine: choice, ioOptions: IOEngineOptions(readsInCaller: false)))
            let engine = space.statistics.ioEngine
            if choice == .ioUring, engine?.kind != .ioUring {
                try Test.cancel("io_uring unavailable here (\(engine?.reason ?? "no engine"))")
            }
            #expect(engine?.kind == (choice == .ioUring ? .ioUring : choice == .threadPool ? .threadPool : .synchronous))
            let pages = 1024
            let region = try space.makeRegion(bytes: pages * SwapPage.size)
            let failures = Atomic<Int>(0)
            runThreads(3) { t in
                do {
                    for round in 0..<2 {
                        for p in stride(from: t, to: pages, by: 3) {
                            try region.withPage(p) { b in
                                if round == 0 {
                                    b.storeBytes(of: UInt64(p) * 31, as: UInt64.self)
                                } else if b.load(as: UInt64.self) != UInt64(p) * 31 {
                                    failures.add(1, ordering: .relaxed)
                                }
                            }
                        }
                    }
                } catch {
                    failures.add(1, ordering: .relaxed)
                }
            }
            #expect(failures.load(ordering: .relaxed) == 0)
            #expect(space.statistics[.swapOuts] > 0 && space.statistics[.swapIns] > 0)
            if choice != .synchronous {
                #expect(space.statistics[.ioReads] > 0 && space.statistics[.ioWrites] > 0)
            }
            #expect(space.checkInvariants().isEmpty)
        }
    }
}
