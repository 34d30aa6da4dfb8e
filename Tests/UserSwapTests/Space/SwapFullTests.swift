import CUserSwap
import Foundation
import Synchronization
import Testing

@testable import UserSwap

/// Regions written past what memory and swap can hold: the access that finds no room fails with
/// `.swapFull`, saying so — a transparent region's store gets SIGBUS (the kernel's answer to
/// memory that cannot be provided) within a bounded time, never a fault retried forever — and
/// every page written before it keeps its data.
@Suite("Memory and swap full")
struct SwapFullTests {
    @Test("writing past memory and swap fails as swap full, not out of memory; the pages written before keep their data")
    func writePastSwap() throws {
        let memoryPages = 16
        let swapPages = 1 + 512
        let (space, _) = try makeSpace(memoryPages: memoryPages, swapPages: swapPages)
        let pages = memoryPages + swapPages + 64
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        var written = 0
        var failure: SwapError?
        for p in 0..<pages {
            do {
                try region.withPage(p) { fill($0, page: p) }
                written += 1
            } catch let e as SwapError {
                failure = e
                break
            }
        }
        #expect(failure?.code == .swapFull, "\(String(describing: failure))")
        #expect(written >= swapPages - 1 && written < pages)
        // Reading back needs a slot to swap out to: give one back.
        try region.discard(pages: 0..<1)
        for p in 1..<written {
            try region.withPage(p, for: .read) { #expect(matches($0, page: p), "page \(p)") }
        }
        #expect(space.checkInvariants() == [])
    }

    /// What storing page after page found.
    struct Outcome: Sendable {
        var stored = 0
        var signal: Int32 = 0
        /// How long the store that got the signal took.
        var seconds = 0.0
    }

    @Test(
        "a store that finds memory and swap full gets SIGBUS within seconds; the pages stored before it keep their data",
        arguments: TransparentRegionTests.services, [false, true])
    func storeIntoFullSwap(faults: TransparentRegion.FaultService, backgroundReclaim: Bool) throws {
        try Self.storePastSwap(memoryPages: 16, swapPages: 1 + 512, faults: faults, backgroundReclaim: backgroundReclaim, limit: 3)
    }

    /// Swap full at a size where reclaim has thousands of folios on its lists and a failed
    /// swap-out could look at thousands of slots: memory and swap full must still end in a signal
    /// within seconds, not a reclaim pass that rescans every slot for every folio.
    @Test(
        "a store into full swap gets SIGBUS within seconds with 512 frames over 2,048 slots",
        arguments: TransparentRegionTests.services)
    func storeIntoFullSwapAtScale(faults: TransparentRegion.FaultService) throws {
        try Self.storePastSwap(memoryPages: 512, swapPages: 1 + 2048, faults: faults, backgroundReclaim: true, limit: 3)
    }

    /// Stores one word into page after page of a transparent region until a store gets a
    /// signal; expects SIGBUS for swap full within `limit` seconds, and every page stored
    /// before it intact.
    static func storePastSwap(
        memoryPages: Int, swapPages: Int, faults: TransparentRegion.FaultService, backgroundReclaim: Bool, limit: Double
    ) throws {
        let (space, _) = try makeSpace(memoryPages: memoryPages, swapPages: swapPages, backgroundReclaim: backgroundReclaim)
        let dataSlots = swapPages - 1
        let pages = memoryPages + dataSlots + 64
        let region = try space.makeTransparentRegion(bytes: pages * SwapPage.size, faults: faults)
        let base = UInt(bitPattern: region.base)
        let outcome = Mutex(Outcome())
        let finished = DispatchSemaphore(value: 0)
        // On a thread of its own, so that a fault that never ends fails the test instead of
        // hanging the run.
        Thread {
            let words = UnsafeMutablePointer<UInt64>(bitPattern: base)!
            for p in 0..<pages {
                let start = cus_monotonic_ns()
                let signal = cus_probe_store(words + p * 512, UInt64(p) + 1)
                if signal != 0 {
                    outcome.withLock {
                        $0.signal = signal
                        $0.seconds = Double(cus_monotonic_ns() - start) / 1e9
                    }
                    break
                }
                outcome.withLock { $0.stored = p + 1 }
            }
            finished.signal()
        }.start()
        // Stores go on while pages are stored; a minute with none is a hang.
        let timeout = 60
        var last = -1
        while finished.wait(timeout: .now() + .seconds(timeout)) == .timedOut {
            let stored = outcome.withLock { $0.stored }
            if stored != last {
                last = stored
                continue
            }
            Issue.record("the store of page \(stored) did not end within \(timeout) s (\(space.statistics[.faultRetries]) fault retries)")
            // The thread is stuck in the region: leave both alive rather than wait on it.
            _ = Unmanaged.passRetained(region)
            return
        }
        let result = outcome.withLock { $0 }
        print(
            "store into full swap (\(memoryPages) frames, \(dataSlots) slots, \(faults), background reclaim \(backgroundReclaim)): \(result.stored) pages stored, the next got signal \(result.signal) after \(result.seconds) s"
        )
        #expect(result.signal == SIGBUS)
        // Memory and swap were full: nothing was wrong with the device.
        #expect(result.stored >= dataSlots && result.stored < pages)
        #expect(region.lastFaultError?.code == .swapFull, "\(String(describing: region.lastFaultError))")
        #expect(result.seconds < limit)
        // Every page stored before it reads back (with a slot given back to swap out to).
        try region.discard(pages: 0..<1)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        var wrong = 0
        for p in 1..<result.stored {
            var value: UInt64 = 0
            if cus_probe_load(words + p * 512, &value) != 0 || value != UInt64(p) + 1 { wrong += 1 }
        }
        #expect(wrong == 0)
        #expect(space.checkInvariants() == [])
    }
}
