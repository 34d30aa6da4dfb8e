#if DEBUG
import Foundation
import Testing

@testable import UserSwap

/// The debug-build lock-order check (`LockRank`, `LockOrder`): an inverted order traps and
/// names both locks; the order of the table, and a `tryLock` against it, pass.
@Suite("Lock order: ranks checked in debug builds")
struct LockOrderTests {
    @Test("a mutex taken under one of lower rank traps, naming both locks")
    func invertedMutexes() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let device = AnnotatedMutex(0, rank: .device)
            let cluster = AnnotatedMutex(0, rank: .cluster)
            device.withLock { _ in cluster.withLock { $0 += 1 } }
        }
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(
            stderr.contains("taking the cluster lock (rank 130) while holding the device lock (rank 120)"),
            "the child's stderr: \(stderr)")
    }

    @Test("two locks of the same rank taken one under the other trap")
    func equalRanks() async {
        await #expect(processExitsWith: .failure) {
            let a = AnnotatedMutex(0, rank: .lru)
            let b = AnnotatedMutex(0, rank: .lru)
            a.withLock { _ in b.withLock { $0 += 1 } }
        }
    }

    @Test("a folio lock taken under a page-table lock traps")
    func folioUnderPageTable() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let (space, _) = try makeSpace(memoryPages: 4)
            let region = try space.makeRegion(bytes: SwapPage.size)
            let folio = try region.pin(0).folio
            let ptl = region.ptl(0)
            ptl.lock()
            space.engine.frames.lock(folio)
            // Not reached while the check works; without it, leave at once (tearing the
            // space down would wait for the page-table lock held here).
            exit(0)
        }
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(
            stderr.contains("taking the folio lock (rank 150) while holding the page-table lock (rank 140)"),
            "the child's stderr: \(stderr)")
    }

    @Test("locks taken in the table's order pass; a tryLock against it passes and is recorded")
    func inOrder() throws {
        let (space, _) = try makeSpace(memoryPages: 4)
        let region = try space.makeRegion(bytes: SwapPage.size)
        let folio = try region.pin(0).folio
        let device = space.engine.devices.devices[0]
        space.engine.frames.lock(folio)
        let ptl = region.ptl(0)
        ptl.lock()
        let g = device.clusters.lock(1)
        let recorded = device.lists.withLock { _ in LockOrder.holds(ptl.word) }
        g.unlock()
        ptl.unlock()
        space.engine.frames.unlock(folio)
        #expect(recorded && !LockOrder.holds(ptl.word))
        // Under the device lock a cluster is only tried: allowed, and recorded while held.
        let tried = device.lists.withLock { _ -> Bool in
            guard let g = device.clusters.tryLock(2) else { return false }
            g.unlock()
            return true
        }
        #expect(tried)
    }
}
#endif
