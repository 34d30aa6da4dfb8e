import CUserSwap
import Foundation
import Synchronization
import Testing

@testable import UserSwap

@Suite("Frame windows")
struct FrameWindowTests {
    @Test("a window keeps 14 bytes of state per page: its two flags are bytes")
    func pageStateBytes() {
        #expect(FrameWindow.pageStateBytes == 14)
    }

    @Test("waiting for a window to drain sleeps until its last folio is freed, and wakes then")
    func drainWakes() throws {
        let window = try FrameWindow(slot: 0, pageCount: 4)
        window.liveFolios.add(2, ordering: .relaxed)
        let thread = Thread {
            usleep(50_000)
            window.folioFreed()
            usleep(150_000)
            window.folioFreed()
        }
        thread.start()
        let start = ContinuousClock.now
        // Not done at the first free; woken by the last, long before the 10 s bound.
        let drained = window.waitUntilDrained(timeoutNanoseconds: 10_000_000_000)
        let waited = ContinuousClock.now - start
        #expect(drained && window.liveFolios.load(ordering: .acquiring) == 0)
        #expect(waited >= .milliseconds(150) && waited < .seconds(5), "waited \(waited) for a window drained after 0.2 s")
    }

    @Test("waiting for a window that never drains gives up at its bound")
    func drainTimesOut() throws {
        let window = try FrameWindow(slot: 0, pageCount: 1)
        window.liveFolios.add(1, ordering: .relaxed)
        #expect(!window.waitUntilDrained(timeoutNanoseconds: 50_000_000))
        window.folioFreed()
        #expect(window.waitUntilDrained(timeoutNanoseconds: 0))
    }

    #if DEBUG
    @Test("claiming a page whose memory is being punched out sleeps until the release ends, and wakes then")
    func claimSleepsThroughRelease() throws {
        let window = try FrameWindow(slot: 0, pageCount: 2)
        window.claim(0, frame: 5)
        let inRelease = DispatchSemaphore(value: 0), finish = DispatchSemaphore(value: 0)
        let claimed = DispatchSemaphore(value: 0), released = DispatchSemaphore(value: 0)
        window.duringRelease.arm {
            inRelease.signal()
            finish.wait()
        }
        defer { window.duringRelease.disarm() }
        Thread {
            window.release(0, frame: 5)
            released.signal()
        }.start()
        inRelease.wait()
        #expect(window.owner(0) == FrameWindow.releasing)
        let claimer = ClaimerThread()
        Thread {
            claimer.tid.store(cus_gettid(), ordering: .releasing)
            window.claim(0, frame: 7)
            claimed.signal()
        }.start()
        while claimer.tid.load(ordering: .acquiring) == 0 { sched_yield() }  // A poll on purpose: a moment, in a test
        let asleep = ThreadProbe.waitUntilInFutex(tid: claimer.tid.load(ordering: .acquiring))
        let early = claimed.wait(timeout: .now()) == .success
        #expect(window.owner(0) == FrameWindow.releasing, "a sleeper's mark reads as releasing")
        finish.signal()
        let woken = claimed.wait(timeout: .now() + 10) == .success
        #expect(asleep, "the claimer sleeps in futex(2) while the page is released (a poll would be seen elsewhere)")
        #expect(!early, "the claim waits for the release")
        #expect(woken && released.wait(timeout: .now() + 10) == .success, "the release's end wakes the claimer")
        #expect(window.owner(0) == 8, "the claimer owns the page")
    }

    /// The claiming thread's kernel id, once it runs.
    final class ClaimerThread: Sendable {
        let tid = Atomic<Int32>(0)
    }
    #endif

    @Test("a store puts its page into the memfd without mapping it in the engine's view")
    func storeBypassesEngineView() throws {
        let window = try FrameWindow(slot: 0, pageCount: 8)
        let data = UnsafeMutableRawBufferPointer.allocate(byteCount: SwapPage.size, alignment: SwapPage.size)
        defer { data.deallocate() }
        data.initializeMemory(as: UInt8.self, repeating: 0)
        data.storeBytes(of: 0xFEED_F00D, toByteOffset: 8, as: UInt64.self)
        window.store(3, from: UnsafeRawBufferPointer(data))
        #expect(window.appAddress(3).load(fromByteOffset: 8, as: UInt64.self) == 0xFEED_F00D)
        #expect(try TransparentRegionResidencyTests.rss(ofMappingAt: window.engineView) == 0)
    }

    @Test("a bounce pool lends each page to one borrower at a time, and every page once")
    func bounceLoans() throws {
        let pool = try #require(BouncePages(count: 128))
        var lent = Set<Int>()
        while let i = pool.borrow() { #expect(lent.insert(i).inserted) }
        #expect(lent == Set(0..<128))
        #expect(pool.withPage { _ in true } == nil, "a page more than the pool holds")
        pool.giveBack(77)
        #expect(pool.borrow() == 77)
        for i in lent { pool.giveBack(i) }
        #expect(pool.withPage { page in page.count } == SwapPage.size)
    }
}
