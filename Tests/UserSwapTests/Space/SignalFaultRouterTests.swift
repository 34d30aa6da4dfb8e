import CUserSwap
import Foundation
import Synchronization
import Testing

@testable import UserSwap

@Suite("Signal fault router")
struct SignalFaultRouterTests {
    @Test("removing a slot sleeps on its user count while a user is inside, and wakes when the last one leaves")
    func removeSleepsUntilUsersLeave() throws {
        let (space, _) = try makeSpace(memoryPages: 16)
        let region = try space.makeTransparentRegion(bytes: 4 * SwapPage.size, faults: .handlerThreads(1))
        let router = SignalFaultRouter.shared
        let slot = try router.add(region.resolver)
        let bits = UInt(bitPattern: Unmanaged.passUnretained(region.resolver).toOpaque())
        let inside = DispatchSemaphore(value: 0), leave = DispatchSemaphore(value: 0)
        let seen = Seen()
        let user = Thread {
            router.withResolver(slot: slot, bits: bits) { _ in
                seen.used.store(true, ordering: .releasing)
                inside.signal()
                leave.wait()
            }
        }
        user.start()
        inside.wait()
        let removed = DispatchSemaphore(value: 0)
        let remover = Thread {
            seen.tid.store(cus_gettid(), ordering: .releasing)
            router.remove(slot)
            removed.signal()
        }
        remover.start()
        while seen.tid.load(ordering: .acquiring) == 0 { sched_yield() }  // A poll on purpose: a moment, in a test
        let asleep = ThreadProbe.waitUntilInFutex(tid: seen.tid.load(ordering: .acquiring))
        let early = removed.wait(timeout: .now()) == .success
        leave.signal()
        let woken = removed.wait(timeout: .now() + 10) == .success
        let used = seen.used.load(ordering: .acquiring)
        #expect(used, "the user ran inside the slot")
        #expect(asleep, "the remover sleeps in futex(2) while a user is inside (a poll would be seen elsewhere)")
        #expect(!early, "the remover waits for the user")
        #expect(woken, "the last user's leaving wakes the remover")
    }

    /// What the test's threads report.
    final class Seen: Sendable {
        let used = Atomic<Bool>(false)
        let tid = Atomic<Int32>(0)
    }
}
