import Foundation
import Synchronization
import Testing

@testable import UserSwap

/// The workload `scripts/tsan-planted-race` runs under ThreadSanitizer to prove that TSan sees a
/// lock-asymmetry race: one side under the lock the contract asks for, the other under another
/// lock. The planted side is the device's invariant walker reading the clusters under the device
/// lock (a `Mutex`) instead of each one's cluster lock (`SwapDevice.walkerSkipsClusterLock`), on a
/// thread of its own; the other side is the background reclaimer taking slots for the pages it
/// writes out, under the cluster lock. The script checks that TSan reports the race with the
/// project's setup and not with the former blanket suppression of every access made inside a
/// `Mutex.withLock` closure, and that the same workload without the plant reports nothing.
///
/// Only the reclaimer takes slots: the writer touches each page once and waits for free frames
/// rather than reclaim itself.
///
/// `USERSWAP_PLANTED_RACE=1` runs it with the plant, `=0` without; unset, it is skipped (without
/// the sanitizer it proves nothing).
@Suite("Planted lock-asymmetry race")
struct PlantedRaceTests {
    static let mode = ProcessInfo.processInfo.environment["USERSWAP_PLANTED_RACE"]

    @Test(
        "the background reclaimer swaps pages out while a walker reads the device's clusters",
        .enabled(if: mode != nil, "runs under ThreadSanitizer from scripts/tsan-planted-race (USERSWAP_PLANTED_RACE=1 or 0)"))
    func reclaimerAgainstWalker() throws {
        let frames = 64
        let pages = 1024
        let space = try SwapSpace(
            .init(
                memory: frames * SwapPage.size, devices: [.memory(bytes: (1 + 4 * 512) * SwapPage.size)],
                backgroundReclaim: true))
        let device = space.devices[0]
        #if DEBUG
        device.walkerSkipsClusterLock.store(Self.mode == "1", ordering: .relaxed)
        #endif
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        let writing = Atomic<Bool>(true)
        let walks = Atomic<Int>(0)
        let walkerDone = Atomic<Bool>(false)
        let walker = Thread {
            while writing.load(ordering: .acquiring) {
                _ = device.checkInvariants()
                walks.add(1, ordering: .relaxed)
            }
            walkerDone.store(true, ordering: .releasing)
        }
        walker.start()
        let engine = space.engine
        for p in 0..<pages {
            // Leave reclaim to the background reclaimer: wait for it rather than reclaim here
            // (an allocation reclaims itself only when no frame is free).
            while engine.allocator.pool.freeFrames < 2 {
                engine.reclaimer.wakeBackgroundReclaim()
                usleep(100)
            }
            try region.withPage(p, for: .write) { fill($0, page: p) }
        }
        writing.store(false, ordering: .releasing)
        while !walkerDone.load(ordering: .acquiring) { usleep(1000) }
        #expect(device.usedPages > 0, "the background reclaimer wrote nothing out")
        #expect(walks.load(ordering: .relaxed) > 0)
        print(
            "planted race workload (\(Self.mode == "1" ? "planted" : "clean")): \(pages) pages written through \(frames) frames, \(device.usedPages) on the device, \(walks.load(ordering: .relaxed)) walks"
        )
    }
}
