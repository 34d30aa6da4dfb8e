import Foundation
import Synchronization
import Testing

@testable import UserSwap

/// The background slot reclaimer: while swap is over half full, each cluster that fills sends a
/// thread over the device's full clusters to free the slots only the swap cache holds, so that
/// allocations find free slots without failing first.
@Suite("Background slot reclaim")
struct SlotReclaimWorkerTests {
    enum Owner: String, CaseIterable, CustomStringConvertible {
        case root, limitedGroup
        var description: String { rawValue }
    }

    /// Swaps out every page of `pages`. A pass of the worker scheduled by this very swap-out may
    /// hold a reference on a folio whose slots look cache-only for a moment (in the swap cache,
    /// not yet unmapped), and pageout then leaves that folio in memory, busy, as the kernel's
    /// does; such a page goes out on the next try. Each page left behind must be one of those.
    func swapOutAll(_ region: Region, pages: Range<Int>, space: SwapSpace) throws {
        var out = 0
        for _ in 0..<10 where out < pages.count {
            let busy = space.statistics[.busyFolios]
            let n = try region.swapOut(pages: pages)
            let left = pages.count - out - n
            #expect(left <= space.statistics[.busyFolios] - busy, "\(left) pages left in memory, not found busy")
            out += n
        }
        #expect(out == pages.count)
    }

    @Test(
        "clean cached pages fill swap past half: the worker frees their slots before any allocation fails",
        arguments: bothProtocols, Owner.allCases)
    func workerFreesBeforeAllocationsFail(sync: SwapInSync, owner: Owner) throws {
        // 2,048 usable slots; memory holds every page, so only swap fills.
        let (space, _) = try makeSpace(memoryPages: 4096, swapPages: 1 + 4 * 512, sync: sync, backgroundReclaim: true)
        let device = space.devices[0]
        let worker = try #require(space.slotReclaimer)
        let group = owner == .root ? nil : try space.makeGroup(name: "g", swapLimit: 2048 * SwapPage.size)
        let cached = try space.makeRegion(bytes: 1200 * SwapPage.size, group: group)
        try cached.advise(.random)
        for p in 0..<1200 { try cached.withPage(p) { fill($0, page: p, generation: 1) } }
        #expect(try cached.swapOut(pages: 0..<1200) == 1200)
        // Passes scheduled by this swap-out found no cache-only slot (every page was mapped
        // from swap); let them end so the read-back below is alone.
        worker.flush()
        #expect(space.statistics[.backgroundSlotReclaims] == 0)
        // Read back: each swap-in frees its slot while swap is over half full, then the rest keep
        // their clean copies, cache-only.
        for p in 0..<1200 { try cached.withPage(p, for: .read) { #expect(matches($0, page: p, generation: 1)) } }
        let cacheOnly = device.usedPages
        #expect(cacheOnly >= 1000 && cacheOnly <= 1024, "\(cacheOnly) cache-only slots")

        // Fresh pages: their swap-out fills clusters with swap over half full.
        let fresh = try space.makeRegion(bytes: 400 * SwapPage.size, group: group)
        for p in 0..<400 { try fresh.withPage(p) { fill($0, page: p, generation: 2) } }
        try swapOutAll(fresh, pages: 0..<400, space: space)
        worker.flush()
        let freed = space.statistics[.backgroundSlotReclaims]
        #expect(space.statistics[.slotReclaimPasses] > 0)
        #expect(freed >= 512, "a whole full cluster of cache-only slots, at least; freed \(freed)")
        #expect(device.usedPages == cacheOnly + 400 - freed)
        #expect(space.statistics[.slotReclaims] == 0, "no allocation found swap full")

        // More than was free before the worker ran: fits only in the slots it freed.
        let freeBefore = 2048 - cacheOnly - 400
        let more = freeBefore + 100
        let third = try space.makeRegion(bytes: more * SwapPage.size, group: group)
        for p in 0..<more { try third.withPage(p) { fill($0, page: p, generation: 3) } }
        try swapOutAll(third, pages: 0..<more, space: space)
        worker.flush()
        #expect(space.statistics[.slotReclaims] == 0, "no allocation found swap full")
        if let group { #expect(group.swapUsage == (400 + more) * SwapPage.size) }
        #expect(space.checkInvariants() == [])
        // Every page reads back: the reclaimed ones from memory (dirty now), the rest from swap.
        for p in 0..<1200 { try cached.withPage(p, for: .read) { #expect(matches($0, page: p, generation: 1)) } }
        for p in 0..<400 { try fresh.withPage(p, for: .read) { #expect(matches($0, page: p, generation: 2)) } }
        for p in 0..<more { try third.withPage(p, for: .read) { #expect(matches($0, page: p, generation: 3)) } }
        #expect(space.checkInvariants() == [])
    }

    @Test(
        "a cache-only slot whose folio is busy during a pass is freed once the folio is let go, with no cluster filling",
        arguments: bothProtocols)
    func busyFolioFreedOnceLetGo(sync: SwapInSync) throws {
        let (space, _) = try makeSpace(memoryPages: 4096, swapPages: 1 + 4 * 512, sync: sync, backgroundReclaim: true)
        let device = space.devices[0]
        let worker = try #require(space.slotReclaimer)
        let frames = space.engine.frames
        let cached = try space.makeRegion(bytes: 1200 * SwapPage.size)
        try cached.advise(.random)
        for p in 0..<1200 { try cached.withPage(p) { fill($0, page: p) } }
        #expect(try cached.swapOut(pages: 0..<1200) == 1200)
        // Read back: swap-ins free their slots down to half full; the rest stay cache-only, in
        // at least one full cluster (1,024 slots over three clusters and the header).
        for p in 0..<1200 { try cached.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        worker.flush()
        let full = try #require(device.lists.withLock { $0.members(ClusterLists.full) }.first)
        let entry = try #require(
            (0..<SwapCluster.slotCount).lazy.map { SwapEntry(type: device.type, offset: full << SwapCluster.slotShift | $0) }
                .first {
                    let s = device.slot($0)
                    return s.isFolio && s.count == 0
                })
        // Busy, as a folio a swap-out or a fault holds: locked while a pass looks at it.
        let f = try #require(space.engine.cache.swapCacheGetFolio(entry))
        frames.lock(f)
        // Past half full, then a pass (one may already have run when a cluster filled).
        let fresh = try space.makeRegion(bytes: 100 * SwapPage.size)
        for p in 0..<100 { try fresh.withPage(p) { fill($0, page: p, generation: 2) } }
        try swapOutAll(fresh, pages: 0..<100, space: space)
        #expect(space.statistics[.slotReclaims] == 0, "no allocation found swap full")
        worker.schedule(device)
        // Until a pass has found the folio busy: a generous deadline for a loaded machine.
        let start = ContinuousClock.now
        while space.statistics[.slotReclaimBusy] == 0 && ContinuousClock.now - start < .seconds(120) { usleep(1000) }
        #expect(space.statistics[.slotReclaimBusy] > 0, "no pass found the locked folio busy")
        #expect(device.slot(entry).isFolio, "the locked folio's slot was freed")
        let freedByPasses = space.statistics[.backgroundSlotReclaims]
        #expect(freedByPasses >= 511, "the rest of the full cluster at least; the passes freed \(freedByPasses) slots")

        // Let go: nothing fills a cluster or asks for a slot from here on, yet the slot comes free.
        frames.unlock(f)
        space.engine.allocator.putFolio(f)
        worker.flush()
        #expect(device.slot(entry).isFree, "the slot of the folio let go is still \(device.slot(entry))")
        #expect(space.statistics[.backgroundSlotReclaims] >= freedByPasses + 1)
        #expect(space.statistics[.slotReclaims] == 0)
        #expect(space.checkInvariants() == [])
        for p in 0..<1200 { try cached.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        for p in 0..<100 { try fresh.withPage(p, for: .read) { #expect(matches($0, page: p, generation: 2)) } }
        #expect(space.checkInvariants() == [])
    }

    @Test("while swap is at most half full, a filled cluster schedules no pass")
    func noPassBelowHalf() throws {
        let (space, _) = try makeSpace(memoryPages: 2048, swapPages: 1 + 4 * 512, backgroundReclaim: true)
        let worker = try #require(space.slotReclaimer)
        let region = try space.makeRegion(bytes: 1000 * SwapPage.size)
        try region.advise(.random)
        for p in 0..<1000 { try region.withPage(p) { fill($0, page: p) } }
        // Fills the first cluster and then some, below half of 2,048 slots.
        #expect(try region.swapOut(pages: 0..<1000) == 1000)
        for p in 0..<1000 { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        worker.flush()
        #expect(space.statistics[.slotReclaimPasses] == 0)
        #expect(space.devices[0].usedPages == 1000, "clean copies keep their slots")
    }

    @Test("the worker's thread ends with its space")
    func threadEndsWithSpace() throws {
        func make() throws -> SlotReclaimWorker {
            let (space, _) = try makeSpace(memoryPages: 64, backgroundReclaim: true)
            return try #require(space.slotReclaimer)
        }
        let worker = try make()
        #expect(worker.hasExited)
    }

    @Test(
        "swapoff races passes over the device it removes: nothing lost, no pass once it is gone",
        arguments: bothProtocols)
    func swapOffRacesWorker(sync: SwapInSync) throws {
        let (space, _) = try makeSpace(memoryPages: 2048, swapPages: 1 + 4 * 512, sync: sync, backgroundReclaim: true)
        let worker = try #require(space.slotReclaimer)
        let pages = 1200
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        try region.advise(.random)
        let generations = _UnsafeAtomicArray<Int>(count: pages, initialValue: 0)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }
        let wrong = Atomic<Int>(0)
        let checks = Atomic<Int>(0)
        let failure = Mutex<SwapError?>(nil)
        // At least 8 rounds; more (up to 40) while no pass has run yet: on a loaded machine
        // swapoff's own sweep can win every race of the first rounds.
        var rounds = 0
        while rounds < 8 || (space.statistics[.slotReclaimPasses] == 0 && rounds < 40) {
            let round = rounds
            rounds += 1
            // A small device of higher priority takes a band of pages that fills its only
            // cluster; they come back clean: its slots are cache-only, in a full cluster, the
            // worker's to free while swapoff empties the device.
            let device = try space.swapOn(.memory(bytes: (1 + 512) * SwapPage.size, priority: 1))
            let band = (round * 150) % (pages - 520)
            _ = try region.swapOut(pages: band..<(band + 520))
            for p in band..<(band + 520) {
                let g = generations[p].pointee.load(ordering: .relaxed)
                try region.withPage(p, for: .read) { #expect(matches($0, page: p, generation: g)) }
            }
            let done = Atomic<Bool>(false)
            runThreads(4) { t in
                switch t {
                case 0:
                    defer { done.store(true, ordering: .releasing) }
                    // A pass and swapoff's own sweep start on the cache-only slots together.
                    worker.schedule(device)
                    do { try space.swapOff(device) } catch { failure.withLock { $0 = $0 ?? (error as? SwapError) } }
                case 1:
                    while !done.load(ordering: .acquiring) {
                        worker.schedule(device)
                        sched_yield()
                    }
                default:
                    // Each thread owns the pages p with p % 2 == t - 2: reads check, writes bump
                    // the generation, swap-outs keep slots coming and going on the device.
                    var i = 0
                    while !done.load(ordering: .acquiring) || i < 300 {
                        let p = ((i * 7919 + round) % (pages / 2)) * 2 + (t - 2)
                        do {
                            if i % 4 == 0 {
                                let g = generations[p].pointee.load(ordering: .relaxed) + 1
                                try region.withPage(p) { fill($0, page: p, generation: g) }
                                generations[p].pointee.store(g, ordering: .relaxed)
                            } else {
                                let g = generations[p].pointee.load(ordering: .relaxed)
                                try region.withPage(p, for: .read) {
                                    if !matches($0, page: p, generation: g) { wrong.add(1, ordering: .relaxed) }
                                }
                            }
                            if i % 50 == 0 { _ = try region.swapOut(pages: p..<(p + 1)) }
                            checks.add(1, ordering: .relaxed)
                        } catch {
                            failure.withLock { $0 = $0 ?? (error as? SwapError) }
                        }
                        i += 1
                    }
                }
            }
            #expect(device.usedPages == 0)
            #expect(!space.devices.contains { $0 === device })
            // Gone: a pass asked for now finds the device's references dead and does nothing.
            worker.flush()
            let passes = space.statistics[.slotReclaimPasses]
            worker.schedule(device)
            worker.flush()
            #expect(space.statistics[.slotReclaimPasses] == passes, "a pass ran on a removed device")
        }
        #expect(failure.withLock { $0 } == nil)
        #expect(wrong.load(ordering: .relaxed) == 0)
        #expect(space.statistics[.slotReclaimPasses] > 0)
        #expect(space.checkInvariants() == [])
        for p in 0..<pages {
            let g = generations[p].pointee.load(ordering: .relaxed)
            try region.withPage(p, for: .read) { #expect(matches($0, page: p, generation: g)) }
        }
        print(
            "slot reclaimer vs swapoff (\(sync)): \(rounds) swapoffs, \(checks.load(ordering: .relaxed)) page checks, 0 wrong, \(space.statistics[.slotReclaimPasses]) passes, \(space.statistics[.backgroundSlotReclaims]) slots freed in the background"
        )
    }
}
