import CUserSwap
import Foundation
import Synchronization
import Testing

@testable import UserSwap

/// Discarding pages of a transparent region while another thread swaps them out: the
/// application's view must not keep a page its region no longer has, or loads read the old data
/// instead of zeroes and stores land in memory that is about to be punched out.
@Suite("Transparent regions: discard racing swap-out")
struct TransparentDiscardTests {
    #if DEBUG
    /// The touching thread: its kernel id once it is about to touch, what it loaded, and whether
    /// it is done.
    final class Toucher: Sendable {
        let tid = Atomic<Int32>(0)
        let seen = Atomic<UInt64>(.max)
        let done = Atomic<Bool>(false)
    }

    @Test(
        "a page discarded between its swap-out's page-table unmap and view unmap reads as zeroes, and a store to it is kept",
        arguments: TransparentRegionTests.services)
    func discardBetweenSwapOutUnmaps(faults: TransparentRegion.FaultService) throws {
        let (space, _) = try makeSpace(memoryPages: 16)
        let region = try space.makeTransparentRegion(bytes: 4 * SwapPage.size, faults: faults)
        let base = UInt(bitPattern: region.base)
        // Page 0 in memory and mapped writable in the application's view.
        region.base.storeBytes(of: 0xa11ce, as: UInt64.self)
        TransparentRegionTests.settle(space)
        // Hold the swap-out of page 0 after its page-table entry became a swap entry, before it
        // unmaps the page from the application's view (its folio locked).
        let inGap = DispatchSemaphore(value: 0), resume = DispatchSemaphore(value: 0), swappedOut = DispatchSemaphore(value: 0)
        let hook = region.region.pageTableUnmapped
        hook.arm {
            hook.disarm()
            inGap.signal()
            resume.wait()
        }
        defer { hook.disarm() }
        Thread {
            _ = try? region.swapOut(pages: 0..<1)
            swappedOut.signal()
        }.start()
        #expect(inGap.wait(timeout: .now() + 10) == .success)
        try region.discard(pages: 0..<1)
        #expect(region.state(ofPage: 0) == .untouched)
        // The owner touches the page it discarded: a load (zeroes) and a store.
        let toucher = Toucher()
        Thread {
            let words = UnsafeMutablePointer<UInt64>(bitPattern: base)!
            toucher.tid.store(cus_gettid(), ordering: .releasing)
            toucher.seen.store(words[0], ordering: .releasing)
            words[0] = 0xb0b
            toucher.done.store(true, ordering: .releasing)
        }.start()
        // With the view unmapped the load faults, and its zero fill waits for the folio the
        // swap-out holds locked: the faulting thread sleeps on its lock in futex(2); with handler
        // threads it sleeps in the fault itself (blocked outside any system call, -1). A view
        // still mapped lets it finish at once instead.
        let asleep = faults == .faultingThread ? ThreadProbe.futexSyscall : -1
        let deadline = Date().addingTimeInterval(10)
        while !toucher.done.load(ordering: .acquiring) && Date() < deadline {
            let tid = toucher.tid.load(ordering: .acquiring)
            if tid != 0 && ThreadProbe.blockedSyscall(tid: tid) == asleep { break }
            usleep(1000)  // A poll on purpose: the kernel tells no one when a thread falls asleep.
        }
        resume.signal()
        #expect(swappedOut.wait(timeout: .now() + 10) == .success)
        while !toucher.done.load(ordering: .acquiring) && Date() < deadline { usleep(1000) }  // A poll on purpose: a test's wait
        let finished = toucher.done.load(ordering: .acquiring)
        #expect(finished, "the touch finished")
        let seen = toucher.seen.load(ordering: .acquiring)
        #expect(seen == 0, "a discarded page read \(String(seen, radix: 16))")
        let now = region.base.load(as: UInt64.self)
        #expect(now == 0xb0b, "the store after the discard reads back as \(String(now, radix: 16))")
        #expect(region.state(ofPage: 0) == .resident)
        #expect(region.lastFaultError == nil)
        #expect(space.checkInvariants() == [])
    }
    #endif
}
