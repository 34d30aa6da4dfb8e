import Foundation
import Synchronization
import Testing

@testable import UserSwap

/// An allocation that finds nothing to reclaim while another thread's swap-in holds a new folio
/// off the lists, reading it, waits for that read instead of failing: the folio joins the LRU
/// once read and can then be reclaimed (`FolioFlags.arriving`).
@Suite("Allocations waiting for frames that are on their way")
struct AllocationWaitTests {
    @Test("a fault that finds every frame pinned or being read waits for the read and succeeds")
    func waitsForArrivingFolio() throws {
        let frames = 16
        let (space, backend) = try makeSpace(memoryPages: frames)
        let a = try space.makeRegion(bytes: SwapPage.size)
        let b = try space.makeRegion(bytes: SwapPage.size)
        try a.withPage(0) { fill($0, page: 1) }
        try b.withPage(0) { fill($0, page: 2) }
        try a.swapOut(pages: 0..<1)
        try b.swapOut(pages: 0..<1)
        // Every frame but one pinned: nothing to reclaim.
        let pinned = try space.makeRegion(bytes: (frames - 1) * SwapPage.size)
        var pins: [PinBox] = []
        for p in 0..<(frames - 1) { pins.append(PinBox(try pinned.pin(p, for: .write))) }
        #expect(space.engine.allocator.pool.freeFrames == 1)

        backend.holdReads()
        let failures = Mutex<[String]>([])
        let reader = Thread {
            do {
                try a.withPage(0, for: .read) { bytes in
                    if !matches(bytes, page: 1) { failures.withLock { $0.append("page of a is wrong") } }
                }
            } catch { failures.withLock { $0.append("a: \(error)") } }
        }
        reader.start()
        // The reader took the last frame and is reading into it.
        let deadline = Date().addingTimeInterval(10)
        while space.engine.frames.arrivingPages.load(ordering: .relaxed) == 0 && Date() < deadline { usleep(100) }
        #expect(space.engine.frames.arrivingPages.load(ordering: .relaxed) == 1)

        let reclaimsBefore = space.statistics[.directReclaims]
        let done = DispatchSemaphore(value: 0)
        let faulter = Thread {
            defer { done.signal() }
            do {
                try b.withPage(0, for: .read) { bytes in
                    if !matches(bytes, page: 2) { failures.withLock { $0.append("page of b is wrong") } }
                }
            } catch { failures.withLock { $0.append("b: \(error)") } }
        }
        faulter.start()
        // The faulter found no free frame and is in direct reclaim; give it time to give up, as
        // it did when it did not know the reader's folio would become reclaimable.
        while space.statistics[.directReclaims] == reclaimsBefore && Date() < deadline { usleep(100) }
        usleep(20_000)
        backend.releaseReads()
        #expect(done.wait(timeout: .now() + 10) == .success, "the fault hung")
        #expect(failures.withLock { $0 } == [])
        #expect(space.engine.frames.arrivingPages.load(ordering: .relaxed) == 0)
        pins.removeAll()
        #expect(space.checkInvariants() == [])
    }

    @Test("arriving pages are counted until the folio joins a list or is freed, on every protocol", arguments: allProtocols)
    func arrivingCountReturnsToZero(sync: SwapInSync) throws {
        let (space, backend) = try makeSpace(memoryPages: 32, sync: sync)
        let region = try space.makeRegion(bytes: 64 * SwapPage.size)
        for p in 0..<64 { try region.withPage(p) { fill($0, page: p) } }
        backend.failReads.store(3, ordering: .relaxed)
        var errors = 0
        for p in 0..<64 {
            do { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } } catch { errors += 1 }
        }
        try region.prefetch(pages: 0..<64)
        for p in 0..<64 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        #expect(errors > 0)
        #expect(space.engine.frames.arrivingPages.load(ordering: .relaxed) == 0)
        #expect(space.checkInvariants() == [])
    }
}
