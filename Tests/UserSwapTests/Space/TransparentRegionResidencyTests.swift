import Foundation
import Testing

@testable import UserSwap

/// RSS of a transparent region: its memfd is mapped twice (the engine's view and the
/// application's), and RSS counts a page once per mapping that maps it; the engine's view maps
/// a page only while the engine uses it, so each resident page counts once.
@Suite("Transparent regions: each resident page counted once in RSS")
struct TransparentRegionResidencyTests {
    /// The `Rss` of the mapping that starts at `address`, in bytes, from /proc/self/smaps.
    static func rss(ofMappingAt address: UnsafeMutableRawPointer) throws -> Int {
        let smaps = try #require(ProcFile.text("/proc/self/smaps"))
        let start = String(UInt(bitPattern: address), radix: 16) + "-"
        var inMapping = false
        for line in smaps.split(separator: "\n") {
            // A mapping's first line starts with its range ("7f00…-7f00… rw-s …"); its fields
            // with a name and a colon.
            let head = line.prefix { $0 != " " }
            if head.contains("-") && head.allSatisfy({ $0.isHexDigit || $0 == "-" }) {
                inMapping = line.hasPrefix(start)
                continue
            }
            if inMapping && line.hasPrefix("Rss:") {
                let kib = try #require(Int(line.dropFirst(4).split(separator: " ")[0]))
                return kib << 10
            }
        }
        Issue.record("no mapping starts at \(start) in /proc/self/smaps")
        return -1
    }

    /// The `Rss` of `region`'s engine's view once the zaps its faulting threads queued are done
    /// (at most `SignalUnmapRing.capacity` pages wait there: see `engineViewWithQueuedZaps`).
    static func engineRSS(_ region: TransparentRegion) throws -> Int {
        region.window.signalZaps.flushAll()
        return try rss(ofMappingAt: region.window.engineView)
    }

    @Test(
        "a region whose pages are all resident and mapped by the application has none in the engine's view",
        arguments: TransparentRegionTests.services)
    func firstTouchesCountOnce(faults: TransparentRegion.FaultService) throws {
        let pages = 128
        let (space, _) = try makeSpace(memoryPages: 256)
        let region = try space.makeTransparentRegion(bytes: pages * SwapPage.size, faults: faults)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        for p in 0..<pages { words[p * 512 + 1] = UInt64(p) }
        TransparentRegionTests.settle(space)
        #expect(space.residentFrames == pages)
        let app = try Self.rss(ofMappingAt: region.window.appView)
        let engine = try Self.engineRSS(region)
        #expect(app == pages * SwapPage.size, "the application's view maps \(app >> 10) KiB of \(pages * 4) KiB resident")
        #expect(engine == 0, "the engine's view maps \(engine >> 10) KiB besides")
        // Pins read and write through the engine's view, mapping the page there again.
        for p in 0..<pages {
            let pin = try region.pin(p)
            #expect(pin.bytes.load(fromByteOffset: 8, as: UInt64.self) == UInt64(p))
        }
        #expect(try Self.engineRSS(region) == pages * SwapPage.size)
        // Unmapped from the application (access tracking) and faulted in again: the install
        // zaps the engine's entries.
        try region.deactivate(pages: 0..<pages)
        for p in 0..<pages { #expect(words[p * 512 + 1] == UInt64(p)) }
        TransparentRegionTests.settle(space)
        #expect(try Self.engineRSS(region) == 0)
        #expect(try Self.rss(ofMappingAt: region.window.appView) == pages * SwapPage.size)
        #expect(space.checkInvariants() == [])
    }

    @Test(
        "an engine read of one page maps that page alone in the engine's view, not its neighbours the application maps",
        arguments: TransparentRegionTests.services)
    func engineReadMapsOnePage(faults: TransparentRegion.FaultService) throws {
        let pages = 64
        let (space, _) = try makeSpace(memoryPages: 128)
        let region = try space.makeTransparentRegion(bytes: pages * SwapPage.size, faults: faults)
        // The kernel maps a read fault's neighbours too (fault-around) unless the range is
        // registered with userfaultfd, which needs write protection on shared memory.
        try #require(region.tracksWrites, "this kernel has no userfaultfd write protection on shared memory")
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        for p in 0..<pages { words[p * 512] = UInt64(p) + 1 }
        TransparentRegionTests.settle(space)
        #expect(try Self.engineRSS(region) == 0)
        let pin = try region.pin(32, for: .read)
        #expect(pin.bytes.load(as: UInt64.self) == 33)
        let engine = try Self.engineRSS(region)
        #expect(engine == SwapPage.size, "a read of one page mapped \(engine >> 10) KiB of the engine's view")
    }

    @Test(
        "a loop over 4× the budget keeps the region's RSS in both views within the budget",
        arguments: TransparentRegionTests.services)
    func swappingCountsOnce(faults: TransparentRegion.FaultService) throws {
        let budget = 64
        let pages = 4 * budget
        let (space, _) = try makeSpace(memoryPages: budget, swapPages: 1 + 2 * 512)
        let region = try space.makeTransparentRegion(bytes: pages * SwapPage.size, faults: faults)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        var bad = 0
        for round in 0..<3 {
            for p in 0..<pages {
                if round > 0 && words[p * 512] != UInt64(p * 3 + round - 1) { bad += 1 }
                words[p * 512] = UInt64(p * 3 + round)
            }
        }
        TransparentRegionTests.settle(space)
        #expect(bad == 0)
        #expect(space.statistics[.majorFaults] > 0)
        let app = try Self.rss(ofMappingAt: region.window.appView)
        let engine = try Self.engineRSS(region)
        // Every page in RSS is a resident frame; frames never pass the budget.
        #expect(
            app + engine <= budget * SwapPage.size,
            "RSS of the views: \(app >> 10) KiB (application) + \(engine >> 10) KiB (engine) for a budget of \(budget * 4) KiB")
        #expect(region.lastFaultError == nil)
        #expect(space.checkInvariants() == [])
    }

    @Test("the zaps a faulting thread queues wait at most a ring's worth of pages")
    func engineViewWithQueuedZaps() throws {
        let pages = 3 * SignalUnmapRing.capacity
        let (space, _) = try makeSpace(memoryPages: 2 * pages)
        let region = try space.makeTransparentRegion(bytes: pages * SwapPage.size, faults: .faultingThread)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        for p in 0..<pages { words[p * 512] = UInt64(p) + 1 }
        // Pins map every page in the engine's view; access tracking unmaps them from the
        // application's, whose faults queue the engine's zaps.
        for p in 0..<pages { #expect(try region.pin(p).bytes.load(as: UInt64.self) == UInt64(p) + 1) }
        try region.deactivate(pages: 0..<pages)
        for p in 0..<pages { #expect(words[p * 512] == UInt64(p) + 1) }
        let queued = try Self.rss(ofMappingAt: region.window.engineView)
        #expect(queued <= SignalUnmapRing.capacity * SwapPage.size, "\(queued >> 10) KiB of the engine's view still mapped")
        #expect(try Self.engineRSS(region) == 0)
        #expect(space.checkInvariants() == [])
    }

    @Test(
        "pages read ahead into the cache are stored in the memfd, not mapped in the engine's view",
        arguments: TransparentRegionTests.services)
    func readAheadCountsOnce(faults: TransparentRegion.FaultService) throws {
        let pages = 64
        let (space, _) = try makeSpace(memoryPages: 4 * pages, swapPages: 1 + 2 * 512)
        let region = try space.makeTransparentRegion(bytes: pages * SwapPage.size, faults: faults)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        for p in 0..<pages { words[p * 512 + 7] = UInt64(p) &* 0x9E37_79B9 }
        TransparentRegionTests.settle(space)
        #expect(try region.swapOut(pages: 0..<pages) == pages)
        #expect(try Self.rss(ofMappingAt: region.window.engineView) == 0, "write-outs zap what they read")
        // Read runs into the swap cache, which the application's faults then map.
        #expect(try region.prefetch(pages: 0..<pages) > 0)
        space.engine.cache.asyncReads.waitUntilIdle()
        let engine = try Self.rss(ofMappingAt: region.window.engineView)
        #expect(engine == 0, "the reads mapped \(engine >> 10) KiB of the engine's view")
        let reads = space.statistics[.swapIns]
        for p in 0..<pages { #expect(words[p * 512 + 7] == UInt64(p) &* 0x9E37_79B9) }
        #expect(space.statistics[.swapIns] == reads, "every page came from the cache")
        #expect(space.checkInvariants() == [])
    }
}
