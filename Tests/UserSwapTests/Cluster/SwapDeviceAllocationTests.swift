import Dispatch
import Foundation
import Synchronization
import Testing

@testable import UserSwap

/// A device over memory with `clusters` clusters (plus the header page's cluster share).
func makeDevice(pages: Int, type: Int = 0, priority: Int = 0, badPages: [UInt32] = []) throws -> SwapDevice {
    let header = SwapHeader(pageCount: pages, label: "", badPages: badPages, uuid: nil)
    return try SwapDevice(backend: MemoryBackend(pageCount: pages), header: header, type: type, priority: priority)
}

@Suite("Swap slot allocator")
struct SwapDeviceAllocationTests {
    @Test("the header slot, bad pages and the tail past the end are never handed out")
    func neverHandsOutBadSlots() throws {
        let pages = 2 * 512 + 100
        let device = try makeDevice(pages: pages, badPages: [7, 600])
        #expect(device.usablePages == pages - 3)
        var seen = Set<Int>()
        while let e = try? device.allocate() {
            #expect(e.offset != 0 && e.offset != 7 && e.offset != 600 && e.offset < pages)
            #expect(seen.insert(e.offset).inserted, "slot \(e.offset) handed out twice")
        }
        #expect(seen.count == device.usablePages)
        #expect(device.checkInvariants() == [])
    }

    @Test("a page allocation that finds every cluster off its list (other threads scanning) waits for them while slots are free")
    func waitsForScanners() throws {
        let device = try makeDevice(pages: 1 + 2 * 512)
        // Another scanner holds both clusters, locked and off the lists: each guard stays on
        // the stack of one level of `holdingAll` until `body` has run.
        let lists = [ClusterLists.free] + (0...SwapCluster.maxOrder).flatMap { [ClusterLists.nonfull($0), ClusterLists.frag($0)] }
        var held = 0
        func holdingAll(_ body: () -> Void) {
            for list in lists {
                guard let g = device.isolateAndLock(list) else { continue }
                held += 1
                holdingAll(body)
                device.relocateAfterAllocationLocked(g, failedScan: false)
                g.unlock()
                return
            }
            body()
        }
        let got = Mutex<SwapEntry?>(nil)
        let done = DispatchSemaphore(value: 0)
        holdingAll {
            #expect(held >= 2)
            Thread {
                got.withLock { $0 = device.allocateSlots(order: 0, initial: .counted(1)) }
                done.signal()
            }.start()
            // Longer than a count of yields lasts on an idle core; well within the wait's bound.
            usleep(20_000)
            #expect(done.wait(timeout: .now()) == .timedOut, "gave up while the clusters were only being scanned")
        }
        #expect(done.wait(timeout: .now() + 10) == .success)
        #expect(got.withLock { $0 } != nil)
        // A device with no slot free is full at once.
        while (try? device.allocate()) != nil {}
        #expect(device.freePages == 0 && device.allocateSlots(order: 0, initial: .counted(1)) == nil)
        #expect(device.checkInvariants() == [])
    }

    @Test("every order's runs are aligned to the order", arguments: 0...SwapCluster.maxOrder)
    func alignment(order: Int) throws {
        let device = try makeDevice(pages: 8 * 512)
        var got = 0
        while let e = try? device.allocate(order: order) {
            #expect(e.offset % (1 << order) == 0, "\(e) not aligned to order \(order)")
            #expect(e.clusterIndex == e.advanced(by: (1 << order) - 1).clusterIndex, "run straddles clusters")
            for i in 0..<(1 << order) { #expect(device.swapCount(e.advanced(by: i)) == 1) }
            got += 1
        }
        // Cluster 0 holds the header, so it serves order 0 only; the other 7 clusters serve runs.
        let expected = order == 0 ? device.usablePages : 7 * 512 / (1 << order)
        #expect(got == expected)
        #expect(device.checkInvariants() == [])
    }

    @Test("a full device answers with a typed error, and frees make room again")
    func fullDevice() throws {
        let device = try makeDevice(pages: 1 + 512)
        var entries: [SwapEntry] = []
        while let e = try? device.allocate() { entries.append(e) }
        #expect(entries.count == 512)
        #expect(device.freePages == 0)
        #expect(throws: SwapError(.swapFull, "")) { try device.allocate() }
        device.put(entries[100])
        #expect(try device.allocate().offset == entries[100].offset)
        #expect(device.checkInvariants() == [])
    }

    @Test("fragmentation makes large orders fail cleanly while order 0 still succeeds")
    func fragmentation() throws {
        let device = try makeDevice(pages: 1 + 4 * 512)
        var entries: [SwapEntry] = []
        while let e = try? device.allocate() { entries.append(e) }
        // Free every other slot: plenty of free space, no aligned pair anywhere.
        for (i, e) in entries.enumerated() where i % 2 == 0 { device.put(e) }
        #expect(device.freePages >= device.usablePages / 2 - 1)
        for order in 1...SwapCluster.maxOrder {
            #expect(throws: SwapError(.swapFull, "")) { try device.allocate(order: order) }
        }
        let small = try device.allocate()
        #expect(device.swapCount(small) == 1)
        #expect(device.checkInvariants() == [])
    }

    @Test("freeing a whole cluster returns it to the free list for any order")
    func clusterReturnsToFreeList() throws {
        let device = try makeDevice(pages: 1 + 2 * 512)
        var entries: [SwapEntry] = []
        for _ in 0..<(512 / 16) { entries.append(try device.allocate(order: 4)) }
        // The order-4 cluster is full; no free cluster is left for order 5.
        #expect(throws: SwapError(.swapFull, "")) { try device.allocate(order: 5) }
        for e in entries { device.put(e, count: 16) }
        #expect(device.clusterListLengths["free"] == 1)
        let big = try device.allocate(order: 9)
        #expect(big.offset == 512)
        #expect(device.checkInvariants() == [])
    }

    @Test("random allocate and free never hands a slot out twice (10⁵ operations, seeded)")
    func randomAgainstReferenceSet() throws {
        var rng = SeededRandom.fromEnvironment("allocator random")
        let device = try makeDevice(pages: 1 + 16 * 512 - 37, badPages: [1000, 1001, 4097])
        var live: [(SwapEntry, Int)] = []  // entry, order
        var used = Set<Int>()  // the reference: every slot in use
        var fullErrors = 0
        for step in 0..<100_000 {
            if live.isEmpty || Int.random(in: 0..<100, using: &rng) < 55 {
                let order = [0, 0, 0, 0, 1, 2, 4, 9].randomElement(using: &rng)!
                do {
                    let e = try device.allocate(order: order)
                    #expect(e.offset % (1 << order) == 0)
                    for i in 0..<(1 << order) {
                        let (ok, _) = used.insert(e.offset + i)
                        if !ok {
                            Issue.record("step \(step): slot \(e.offset + i) handed out twice (seed \(rng.seed))")
                            return
                        }
                    }
                    live.append((e, order))
                } catch {
                    fullErrors += 1
                    #expect(error.code == .swapFull)
                }
            } else {
                let k = Int.random(in: 0..<live.count, using: &rng)
                live.swapAt(k, live.count - 1)
                let (e, order) = live.removeLast()
                device.put(e, count: 1 << order)
                for i in 0..<(1 << order) { used.remove(e.offset + i) }
            }
            if step % 20_000 == 0 {
                #expect(device.usedPages == used.count)
                let problems = device.checkInvariants()
                if !problems.isEmpty {
                    Issue.record("step \(step), seed \(rng.seed): \(problems.prefix(5))")
                    return
                }
            }
        }
        #expect(device.usedPages == used.count)
        #expect(device.checkInvariants() == [])
        print("allocator random: 100000 operations, \(fullErrors) full answers, \(used.count) slots in use at the end")
    }

    @Test("threads allocating and freeing at once never share a slot", arguments: [0, 3])
    func concurrentAllocation(order: Int) throws {
        let device = try makeDevice(pages: 1 + 32 * 512)
        let threads = 8
        let owners = Mutex([Int: Int]())  // slot → thread, checked at every allocation
        let clashes = Atomic<Int>(0)
        let allocations = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var mine: [SwapEntry] = []
            var rng = SeededRandom(seed: UInt64(t + 1))
            for _ in 0..<4_000 {
                if mine.count < 100, let e = try? device.allocate(order: order) {
                    allocations.add(1, ordering: .relaxed)
                    owners.withLock { o in
                        for i in 0..<(1 << order) where o.updateValue(t, forKey: e.offset + i) != nil {
                            clashes.add(1, ordering: .relaxed)
                        }
                    }
                    mine.append(e)
                } else if !mine.isEmpty {
                    let e = mine.remove(at: Int.random(in: 0..<mine.count, using: &rng))
                    owners.withLock { o in for i in 0..<(1 << order) { o[e.offset + i] = nil } }
                    device.put(e, count: 1 << order)
                }
            }
            for e in mine {
                owners.withLock { o in for i in 0..<(1 << order) { o[e.offset + i] = nil } }
                device.put(e, count: 1 << order)
            }
        }
        #expect(clashes.load(ordering: .relaxed) == 0)
        #expect(allocations.load(ordering: .relaxed) > 1000)
        #expect(device.usedPages == 0)
        #expect(device.checkInvariants() == [])
        print("concurrent allocation order \(order): \(allocations.load(ordering: .relaxed)) allocations by \(threads) threads, 0 clashes")
    }
}
