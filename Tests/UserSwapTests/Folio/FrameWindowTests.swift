import Foundation
import Synchronization
import Testing

@testable import UserSwap

@Suite("Frame windows")
struct FrameWindowTests {
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
}
