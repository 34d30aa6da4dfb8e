import CUserSwap
import Foundation
import Synchronization
import Testing

@testable import UserSwap

/// Transparent regions: plain loads and stores, served through userfaultfd by the same engine.
@Suite("Transparent regions: plain memory that swaps")
struct TransparentRegionTests {
    /// The word plain code writes at word `i` of page `p` in round `g`.
    static func word(_ p: Int, _ i: Int, _ g: Int) -> UInt64 { UInt64(p) &* 0x9e37_79b9 &+ UInt64(i) &+ UInt64(g) << 48 }

    /// Both ways of serving faults: handler threads, and the faulting thread itself.
    static let services: [TransparentRegion.FaultService] = [.handlerThreads(4), .faultingThread]

    /// Waits until the fault handlers have been idle for 20 ms.
    static func settle(_ space: SwapSpace) {
        var last = -1
        while true {
            let now = space.statistics[.minorFaults] + space.statistics[.majorFaults]
            if now == last { return }
            last = now
            usleep(20_000)
        }
    }

    @Test("a plain loop over 4× the budget, on several threads, reads back every byte", arguments: services)
    func plainLoop(faults: TransparentRegion.FaultService) throws {
        let pages = 256
        let (space, _) = try makeSpace(memoryPages: 64, swapPages: 1 + 2 * 512, backgroundReclaim: true)
        let region = try space.makeTransparentRegion(bytes: pages * SwapPage.size, faults: faults)
        let base = UInt(bitPattern: region.base)
        let threads = 4
        let bad = Atomic<Int>(0)
        // Writes: each thread its own stripe of pages, every word.
        runThreads(threads) { t in
            let words = UnsafeMutablePointer<UInt64>(bitPattern: base)!
            for p in stride(from: t, to: pages, by: threads) {
                for i in 0..<512 { words[p * 512 + i] = Self.word(p, i, 1) }
            }
        }
        #expect(space.residentFrames <= 64)
        // Reads: every thread checks every page, in a different order.
        runThreads(threads) { t in
            let words = UnsafeMutablePointer<UInt64>(bitPattern: base)!
            for k in 0..<pages {
                let p = (k * 7 + t * 61) % pages
                for i in 0..<512 where words[p * 512 + i] != Self.word(p, i, 1) { bad.add(1, ordering: .relaxed) }
            }
        }
        #expect(bad.load(ordering: .relaxed) == 0)
        // Late copies of resolved faults may still be served (each pins, and may allocate).
        Self.settle(space)
        #expect(space.statistics[.swapOuts] > 0 && space.statistics[.swapIns] > 0)
        #expect(space.statistics[.majorFaults] > 0)
        #expect(space.residentFrames <= 64)
        #expect(region.lastFaultError == nil)
        #expect(space.checkInvariants() == [])
    }

    @Test("many threads faulting on the same swapped-out page cause one device read", arguments: services)
    func samePageOneRead(faults: TransparentRegion.FaultService) throws {
        let (space, backend) = try makeSpace(memoryPages: 32)
        let region = try space.makeTransparentRegion(bytes: 8 * SwapPage.size, faults: faults)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        for round in 0..<5 {
            words[512 * 3] = UInt64(round + 1)
            // Faults of the last round's racers that found the page already mapped may still be
            // on their way through the handler (each pins the page for a moment, and one that
            // came after the swap-out below would bring the page back early): let them pass.
            Self.settle(space)
            #expect(try region.swapOut(pages: 0..<8) == 1)
            backend.resetReads()
            backend.readDelayMicros.store(20_000, ordering: .relaxed)
            let base = UInt(bitPattern: region.base)
            let seen = Mutex<[UInt64]>([])
            runThreads(12) { _ in
                let v = UnsafeMutablePointer<UInt64>(bitPattern: base)![512 * 3]
                seen.withLock { $0.append(v) }
            }
            backend.readDelayMicros.store(0, ordering: .relaxed)
            #expect(backend.totalReads == 1)
            #expect(seen.withLock { $0 } == Array(repeating: UInt64(round + 1), count: 12))
        }
        // The last round's late fault copies too (each holds the folio locked for a moment).
        Self.settle(space)
        #expect(space.checkInvariants() == [])
    }

    @Test("stores racing with swap-out are never lost", arguments: services)
    func storesRacingSwapOut(faults: TransparentRegion.FaultService) throws {
        let pages = 16
        let (space, _) = try makeSpace(memoryPages: 64)
        let region = try space.makeTransparentRegion(bytes: pages * SwapPage.size, faults: faults)
        let base = UInt(bitPattern: region.base)
        let stop = Atomic<Bool>(false)
        let writers = 3
        let done = Atomic<Int>(0)
        // Each writer owns one word per page and counts it up; a lost store shows as a gap.
        let finals = Mutex([Int: UInt64]())
        runThreads(writers + 1) { t in
            if t == writers {
                while done.load(ordering: .acquiring) < writers {
                    _ = try? region.swapOut(pages: 0..<pages)
                }
                return
            }
            let words = UnsafeMutablePointer<UInt64>(bitPattern: base)!
            var n: UInt64 = 0
            // At least 3000 rounds, and on until a swap-out went through (on a loaded machine
            // the swapper may not get a core before 3000 rounds are done).
            while n < 3000 || (space.statistics[.swapOuts] == 0 && n < 3_000_000) {
                n += 1
                for p in 0..<pages { words[p * 512 + t] = n }
            }
            finals.withLock { $0[t] = n }
            done.add(1, ordering: .releasing)
        }
        _ = stop
        #expect(space.statistics[.swapOuts] > 0, "swap-out ran while the stores went on")
        // A handler thread may still be taking a late copy of a fault that was already
        // resolved (it pins the page, which may read it back in): let them finish first.
        Self.settle(space)
        try region.swapOut(pages: 0..<pages)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        for t in 0..<writers {
            let last = finals.withLock { $0[t] }
            for p in 0..<pages { #expect(words[p * 512 + t] == last, "page \(p) word \(t)") }
        }
        #expect(space.checkInvariants() == [])
    }

    @Test("pages read back and not written are dropped again without a write", arguments: services)
    func readOnlyPagesStayClean(faults: TransparentRegion.FaultService) throws {
        let (space, backend) = try makeSpace(memoryPages: 32)
        let region = try space.makeTransparentRegion(bytes: 8 * SwapPage.size, faults: faults)
        guard region.tracksWrites else {
            try Test.cancel("this kernel cannot write-protect the region's pages (uffd-wp on shmem), so every page is written back")
        }
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        for p in 0..<8 { words[p * 512] = UInt64(p) }
        #expect(try region.swapOut(pages: 0..<8) == 8)
        let writes = backend.memory.writeCount
        var sum: UInt64 = 0
        for p in 0..<8 { sum += words[p * 512] }
        #expect(sum == 28)
        #expect(try region.swapOut(pages: 0..<8) == 8)
        #expect(backend.memory.writeCount == writes, "clean pages need no write")
        // Read, then write: the first store after a read fault is a write-protect fault.
        #expect(words[5 * 512] == 5)
        words[5 * 512] = 99
        #expect(try region.swapOut(pages: 0..<8) == 1)
        #expect(backend.memory.writeCount == writes + 1, "a written page is written again")
        #expect(words[5 * 512] == 99 && words[4 * 512] == 4)
        #expect(space.statistics[.writeProtectFaults] >= 1)
    }

    @Test("pins and plain access see the same page", arguments: services)
    func pinsShareThePage(faults: TransparentRegion.FaultService) throws {
        let (space, _) = try makeSpace(memoryPages: 16)
        let region = try space.makeTransparentRegion(bytes: 4 * SwapPage.size, faults: faults)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        words[512] = 7
        do {
            let pin = try region.pin(1)
            #expect(pin.bytes.load(as: UInt64.self) == 7)
            pin.bytes.storeBytes(of: 8, as: UInt64.self)
        }
        #expect(words[512] == 8)
        try region.swapOut(pages: 0..<4)
        #expect(region.state(ofPage: 1) == .swapped)
        #expect(words[512] == 8)
        try region.discard(pages: 1..<2)
        #expect(words[512] == 0, "a discarded page reads as zero")
        #expect(space.checkInvariants() == [])
    }

    @Test("kernel code can read into the memory (read(2) into swapped-out pages)")
    func kernelWrites() throws {
        let (space, _) = try makeSpace(memoryPages: 16)
        let region = try space.makeTransparentRegion(bytes: 8 * SwapPage.size)
        guard region.handlesKernelFaults else {
            try Test.cancel(
                "the region's userfaultfd serves user-mode faults only: kernel faults need root (CAP_SYS_PTRACE) or vm.unprivileged_userfaultfd=1"
            )
        }
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        for p in 0..<8 { words[p * 512] = 1 }
        try region.swapOut(pages: 0..<8)
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        let message = Array(repeating: UInt8(0xab), count: 3 * SwapPage.size)
        let writeEnd = fds[1]
        let writer = Thread { _ = message.withUnsafeBytes { write(writeEnd, $0.baseAddress, $0.count) } }
        writer.start()
        var got = 0
        while got < message.count {
            let n = read(fds[0], region.base + SwapPage.size + got, message.count - got)
            #expect(n > 0)
            if n <= 0 { break }
            got += n
        }
        #expect(region.bytes[SwapPage.size..<(4 * SwapPage.size)].allSatisfy { $0 == 0xab })
        #expect(words[0] == 1 && words[4 * 512] == 1)
    }

    @Test("served on the faulting thread from a signal-safe device, a sequential scan reads ahead: hits, few read calls")
    func faultingThreadReadsAhead() throws {
        let pages = 128
        let backend = MemoryBackend(pageCount: 1 + 4 * 512)
        let space = try SwapSpace(.init(memory: 2 * pages * SwapPage.size, devices: [.backend(backend)], encryption: .none))
        let region = try space.makeTransparentRegion(bytes: pages * SwapPage.size, faults: .faultingThread)
        try region.region.advise(.sequential)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        for p in 0..<pages { words[p * 512] = Self.word(p, 0, 1) }
        try region.swapOut(pages: 0..<pages)
        backend.resetCounters()
        var wrong = 0
        var patient = true
        for p in 0..<pages {
            let stats = space.statistics
            let (majors, hits, planned) = (stats[.majorFaults], stats[.readaheadHits], stats[.readaheadPages])
            if words[p * 512] != Self.word(p, 0, 1) { wrong += 1 }
            // A miss leaves its window to a thread of the engine: let it start before the scan
            // goes on, or a loaded machine's scan outruns it and every page is a miss.
            let missed = stats[.majorFaults] != majors && stats[.readaheadHits] == hits
            let deadline = Date().addingTimeInterval(2)
            while patient && missed && stats[.readaheadPages] == planned {
                if Date() > deadline { patient = false }
                usleep(1000)  // A poll on purpose: a statistic, in a test
            }
        }
        Self.settle(space)
        let s = space.statistics
        #expect(wrong == 0, "\(wrong) pages read back wrong")
        print(
            "faulting-thread readahead: \(s[.majorFaults]) major faults, \(s[.readaheadHits]) hits, \(s[.readaheadPages]) read ahead, \(backend.readCallCount) read calls"
        )
        // Hits counted in the handler, windows read by the engine's threads (`readAhead(.planned)`).
        #expect(
            s[.readaheadHits] >= pages / 2 && s[.readaheadPages] >= pages / 2,
            "hits \(s[.readaheadHits]), read ahead \(s[.readaheadPages])")
        #expect(backend.readCallCount < pages / 4, "\(backend.readCallCount) read calls for \(pages) pages")
        #expect(space.checkInvariants() == [])
    }

    @Test("served on the faulting thread, kernel code gets EFAULT on a page not mapped, and succeeds once it is prefaulted")
    func kernelAccessOnFaultingThread() throws {
        let (space, _) = try makeSpace(memoryPages: 16)
        let region = try space.makeTransparentRegion(bytes: 8 * SwapPage.size, faults: .faultingThread)
        #expect(!region.handlesKernelFaults)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        for p in 0..<8 { words[p * 512] = UInt64(p) }
        try region.swapOut(pages: 0..<8)
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        let message = Array(repeating: UInt8(0xab), count: SwapPage.size)
        #expect(message.withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) } == SwapPage.size)
        #expect(read(fds[0], region.base + SwapPage.size, SwapPage.size) == -1 && errno == EFAULT)
        #expect(region.state(ofPage: 1) == .swapped, "the page stays swapped out, its data intact")
        try region.prefault(pages: 1..<2)
        #expect(read(fds[0], region.base + SwapPage.size, SwapPage.size) == SwapPage.size)
        #expect(region.bytes[SwapPage.size..<(2 * SwapPage.size)].allSatisfy { $0 == 0xab })
        #expect(words[0] == 0 && words[2 * 512] == 2)
        #expect(space.checkInvariants() == [])
    }

    @Test("served on the faulting thread, Dispatch's worker threads and Swift tasks fault in too (their signal masks leave SIGBUS open)")
    func faultingThreadOnDispatchAndTasks() async throws {
        let (space, _) = try makeSpace(memoryPages: 16)
        let pages = 64
        let region = try space.makeTransparentRegion(bytes: pages * SwapPage.size, faults: .faultingThread)
        let base = UInt(bitPattern: region.base)
        DispatchQueue.concurrentPerform(iterations: pages) { p in
            UnsafeMutablePointer<UInt64>(bitPattern: base)![p * 512] = UInt64(p) + 1
        }
        try region.swapOut(pages: 0..<pages)
        let sum = await withTaskGroup(of: UInt64.self) { group in
            for p in 0..<pages {
                group.addTask { UnsafeMutablePointer<UInt64>(bitPattern: base)![p * 512] }
            }
            return await group.reduce(0, +)
        }
        #expect(sum == UInt64(pages * (pages + 1) / 2))
        #expect(space.statistics[.majorFaults] >= pages)
        #expect(region.lastFaultError == nil)
        #expect(space.checkInvariants() == [])
    }

    @Test("releasing a region with faults in flight neither hangs nor loses them", arguments: services)
    func teardownWithFaultsInFlight(faults: TransparentRegion.FaultService) throws {
        let (space, backend) = try makeSpace(memoryPages: 32)
        for round in 0..<3 {
            var region: TransparentRegion? = try space.makeTransparentRegion(bytes: 8 * SwapPage.size, faults: faults)
            let words = region!.base.assumingMemoryBound(to: UInt64.self)
            for p in 0..<8 { words[p * 512] = UInt64(p + round) }
            try region!.swapOut(pages: 0..<8)
            backend.readDelayMicros.store(30_000, ordering: .relaxed)
            let base = UInt(bitPattern: region!.base)
            let got = Mutex([Int: UInt64]())
            let majorBefore = space.statistics[.majorFaults]
            let readers = DispatchGroup()
            for p in 0..<4 {
                readers.enter()
                Thread {
                    let v = UnsafeMutablePointer<UInt64>(bitPattern: base)![p * 512]
                    got.withLock { $0[p] = v }
                    readers.leave()
                }.start()
            }
            // Release once every reader's fault reached the handler (its read is slow).
            while space.statistics[.majorFaults] < majorBefore + 4 { usleep(200) }
            region = nil
            #expect(readers.wait(timeout: .now() + 30) == .success)
            backend.readDelayMicros.store(0, ordering: .relaxed)
            #expect(got.withLock { $0 } == [0: UInt64(round), 1: UInt64(1 + round), 2: UInt64(2 + round), 3: UInt64(3 + round)])
            #expect(space.residentFrames == 0)
            #expect(space.checkInvariants() == [])
        }
    }

    @Test(
        "a read into a window page still in flight when the page is discarded and touched again does not land on the new data",
        arguments: services)
    func discardDuringReadIntoWindow(faults: TransparentRegion.FaultService) throws {
        let (space, backend) = try makeSpace(memoryPages: 32)
        let region = try space.makeTransparentRegion(bytes: 4 * SwapPage.size, faults: faults)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        words[512] = 0xdead
        try region.swapOut(pages: 1..<2)
        backend.readDelayMicros.store(100_000, ordering: .relaxed)
        let reading = DispatchSemaphore(value: 0)
        let inner = region.region
        Thread {
            // Readahead of page 1 (its folio takes the window page, then reads slowly).
            _ = try? inner.prefetch(pages: 1..<2)
            reading.signal()
        }.start()
        usleep(30_000)
        try region.discard(pages: 1..<2)
        words[512] = 0xbeef
        #expect(reading.wait(timeout: .now() + 10) == .success)
        backend.readDelayMicros.store(0, ordering: .relaxed)
        #expect(words[512] == 0xbeef)
        #expect(region.lastFaultError == nil)
        #expect(space.checkInvariants() == [])
    }

    @Test("the invariant walker notices a window page its folio does not own", arguments: services)
    func walkerSeesStolenWindowPage(faults: TransparentRegion.FaultService) throws {
        let (space, _) = try makeSpace(memoryPages: 8)
        let region = try space.makeTransparentRegion(bytes: 2 * SwapPage.size, faults: faults)
        region.base.storeBytes(of: 1, as: UInt64.self)
        #expect(space.checkInvariants() == [])
        let frame = region.region.pte(0).frame
        region.window.claim(0, frame: frame + 1)
        #expect(space.checkInvariants().contains { $0.contains("which another frame owns") })
        region.window.claim(0, frame: frame)
        #expect(space.checkInvariants() == [])
    }

    @Test("a transparent region's pages are charged to its group and held to its limit", arguments: services)
    func groupLimit(faults: TransparentRegion.FaultService) throws {
        let (space, _) = try makeSpace(memoryPages: 128)
        let group = try space.makeGroup(name: "tenant", memoryLimit: 16 * SwapPage.size)
        let region = try space.makeTransparentRegion(bytes: 64 * SwapPage.size, group: group, faults: faults)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        for p in 0..<64 { words[p * 512] = UInt64(p) + 1 }
        #expect(group.memoryUsage <= 16 * SwapPage.size)
        #expect(group.memoryPeak <= 16 * SwapPage.size)
        for p in 0..<64 { #expect(words[p * 512] == UInt64(p) + 1) }
        #expect(space.checkInvariants() == [])
    }

    @Test("a page that cannot be read gets the faulting thread SIGBUS, not a hang or a wrong page; the data stays", arguments: services)
    func unreadablePageSignals(faults: TransparentRegion.FaultService) throws {
        let (space, backend) = try makeSpace(memoryPages: 16)
        let region = try space.makeTransparentRegion(bytes: 4 * SwapPage.size, faults: faults)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        words[512] = 42
        try region.swapOut(pages: 0..<4)
        backend.failReads.store(1_000, ordering: .relaxed)
        var value: UInt64 = 0
        let signal = cus_probe_load(words + 512, &value)
        #expect(signal == SIGBUS)
        #expect(region.lastFaultError?.code == .ioError)
        #expect(space.statistics[.faultErrors] == 1 && space.statistics[.faultRetries] >= 5)
        // The device recovers: the page comes back intact.
        backend.failReads.store(0, ordering: .relaxed)
        #expect(cus_probe_load(words + 512, &value) == 0 && value == 42)
        #expect(space.checkInvariants() == [])
    }

    @Test("a read that fails once is retried: the access succeeds", arguments: services)
    func transientReadErrorRetried(faults: TransparentRegion.FaultService) throws {
        let (space, backend) = try makeSpace(memoryPages: 16)
        let region = try space.makeTransparentRegion(bytes: 4 * SwapPage.size, faults: faults)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        words[512] = 7
        try region.swapOut(pages: 0..<4)
        backend.failReads.store(2, ordering: .relaxed)
        #expect(words[512] == 7)
        #expect(space.statistics[.faultRetries] >= 2 && space.statistics[.faultErrors] == 0)
    }

    @Test(
        "regions made and released on several threads at once keep their pages apart",
        arguments: [TransparentRegion.FaultService.handlerThreads(1), .faultingThread])
    func concurrentRegions(faults: TransparentRegion.FaultService) throws {
        let (space, _) = try makeSpace(memoryPages: 64)
        let bad = Atomic<Int>(0)
        runThreads(6) { t in
            for round in 0..<3 {
                guard let region = try? space.makeTransparentRegion(bytes: 4 * SwapPage.size, faults: faults) else {
                    bad.add(1, ordering: .relaxed)
                    return
                }
                let words = region.base.assumingMemoryBound(to: UInt64.self)
                for p in 0..<4 { words[p * 512] = UInt64(t * 100 + round * 10 + p) }
                _ = try? region.swapOut(pages: 0..<4)
                for p in 0..<4 where words[p * 512] != UInt64(t * 100 + round * 10 + p) { bad.add(1, ordering: .relaxed) }
            }
        }
        #expect(bad.load(ordering: .relaxed) == 0)
        #expect(space.residentFrames == 0)
        #expect(space.checkInvariants() == [])
    }
}
