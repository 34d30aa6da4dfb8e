import CUserSwap
import Foundation
import Synchronization
import Testing

@testable import UserSwap

/// Fault messages that a handler thread resolves after their thread went on. A thread waiting
/// in a userfaultfd fault may be woken before its message is resolved (a signal interrupts the
/// wait; the kernel drops only the messages nobody read yet): it touches the page again, which
/// another message brings in, and goes on — maybe to discard the page. The first message is
/// still in a handler's hands, and must not bring the discarded page back.
@Suite("Transparent regions: fault messages resolved late")
struct TransparentLateFaultTests {
    #if DEBUG
    /// The touching thread: what it loaded, and whether it is done.
    final class Toucher: Sendable {
        let seen = Atomic<UInt64>(.max)
        let done = Atomic<Bool>(false)
    }

    /// Waits up to 10 s for `condition`; a poll on purpose: a test's wait for other threads.
    static func wait(for condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while !condition() {
            if Date() >= deadline { return false }
            usleep(1000)
        }
        return true
    }

    /// Holds the first fault message a handler of `region` reads until `resume` is signalled
    /// (`held` says it is held); later messages go through. The caller disarms the hook.
    static func holdFirstMessage(of region: TransparentRegion) -> (held: DispatchSemaphore, resume: DispatchSemaphore) {
        let held = DispatchSemaphore(value: 0), resume = DispatchSemaphore(value: 0)
        let first = Atomic<Bool>(true)
        region.resolver.messageRead.arm {
            guard first.exchange(false, ordering: .acquiringAndReleasing) else { return }
            held.signal()
            resume.wait()
        }
        return (held, resume)
    }

    /// Loads the region's first word on a thread of its own.
    static func load(at region: TransparentRegion) -> Toucher {
        let toucher = Toucher()
        let base = UInt(bitPattern: region.base)
        Thread {
            let words = UnsafeMutablePointer<UInt64>(bitPattern: base)!
            toucher.seen.store(words[0], ordering: .releasing)
            toucher.done.store(true, ordering: .releasing)
        }.start()
        return toucher
    }

    @Test(
        "a fault message resolved after its thread was woken, touched the page again and discarded it, maps nothing",
        arguments: [false, true])
    func messageResolvedAfterDiscard(swappedFirst: Bool) throws {
        let (space, _) = try makeSpace(memoryPages: 16)
        let region = try space.makeTransparentRegion(bytes: 4 * SwapPage.size, faults: .handlerThreads(2))
        if swappedFirst {
            // The page on swap: the late message would read it back, had the discard not freed it.
            region.base.storeBytes(of: 0x5eed, as: UInt64.self)
            TransparentRegionTests.settle(space)
            try region.swapOut(pages: 0..<1)
            #expect(region.state(ofPage: 0) == .swapped)
        }
        let faultsBefore = space.statistics[.faultWaits]
        let (held, resume) = Self.holdFirstMessage(of: region)
        defer { region.resolver.messageRead.disarm() }
        let toucher = Self.load(at: region)
        #expect(held.wait(timeout: .now() + 10) == .success, "the first fault message reached a handler")
        // Wake the faulting thread without resolving its message, as a signal does: it faults
        // again, the other handler resolves that fault, and the load finishes.
        region.resolver.uffd.wake(region.base, length: SwapPage.size)
        #expect(Self.wait { toucher.done.load(ordering: .acquiring) }, "the load finished on its second fault")
        #expect(toucher.seen.load(ordering: .acquiring) == (swappedFirst ? 0x5eed : 0))
        // The thread goes on and discards the page; then the first message is resolved.
        try region.discard(pages: 0..<1)
        #expect(region.state(ofPage: 0) == .untouched)
        resume.signal()
        #expect(Self.wait { space.statistics[.faultWaits] >= faultsBefore + 2 }, "the first message was resolved")
        #expect(region.state(ofPage: 0) == .untouched, "a late message brought back a discarded page")
        #expect(space.statistics[.lateFaults] >= 1)
        // The page still works: a load reads zeroes, a store sticks.
        #expect(region.base.load(as: UInt64.self) == 0)
        region.base.storeBytes(of: 0xb0b, as: UInt64.self)
        #expect(region.base.load(as: UInt64.self) == 0xb0b)
        #expect(region.state(ofPage: 0) == .resident)
        #expect(region.lastFaultError == nil)
        #expect(space.checkInvariants() == [])
    }

    @Test("a thread still waiting for a page discarded after its message was read gets a zero page on its next fault")
    func waitingThreadGetsDiscardedPage() throws {
        let (space, _) = try makeSpace(memoryPages: 16)
        let region = try space.makeTransparentRegion(bytes: 4 * SwapPage.size, faults: .handlerThreads(2))
        region.base.storeBytes(of: 0x5eed, as: UInt64.self)
        TransparentRegionTests.settle(space)
        try region.swapOut(pages: 0..<1)
        let (held, resume) = Self.holdFirstMessage(of: region)
        defer { region.resolver.messageRead.disarm() }
        let toucher = Self.load(at: region)
        #expect(held.wait(timeout: .now() + 10) == .success, "the fault message reached a handler")
        // Another thread discards the page while the load still waits: the held message is
        // answered with a wake, and the load's next fault gets the zero page.
        try region.discard(pages: 0..<1)
        resume.signal()
        #expect(Self.wait { toucher.done.load(ordering: .acquiring) }, "the load finished")
        #expect(toucher.seen.load(ordering: .acquiring) == 0)
        #expect(space.statistics[.lateFaults] == 1)
        #expect(region.state(ofPage: 0) == .resident)
        #expect(region.lastFaultError == nil)
        #expect(space.checkInvariants() == [])
    }
    #endif
}
