import Synchronization
import Testing

@testable import UserSwap

/// A record whose stride (24 bytes) does not divide a page: 170 per page, 16 bytes unused.
private struct Record: Equatable {
    var id: Int64
    var a: UInt64
    var b: UInt32

    init(_ i: Int) {
        id = Int64(i)
        a = UInt64(i) &* 0x9e37_79b9_7f4a_7c15
        b = UInt32(truncatingIfNeeded: i ^ 0x5a5a)
    }
}

/// The value element `i` carries in the tests.
private func value(_ i: Int) -> UInt64 { UInt64(i) &* 0x9e37_79b9_7f4a_7c15 &+ 1 }

@Suite("SwappableArray: a growable, Sendable array in swappable memory")
struct SwappableArrayTests {
    @Test("appending grows across pages and segments, and the data survives swapping")
    func growth() throws {
        // 8 frames for ~40 pages of data: pages really go to swap and come back.
        let (space, _) = try makeSpace(memoryPages: 8)
        let array = try SwappableArray<UInt64>(count: 0, in: space)
        #expect(array.isEmpty && array.capacity == 512 && array.regions.count == 1)
        for i in 0..<3000 { try array.append(value(i)) }  // element by element
        try array.append(contentsOf: (3000..<9000).map(value))  // contiguous
        try array.append(contentsOf: (9000..<20_000).lazy.map(value))  // any sequence
        #expect(array.count == 20_000)
        // 1 + 16 + 32 pages hold 40: three segments.
        #expect(array.regions.count == 3 && array.capacity == 49 * 512)
        #expect(space.statistics[.swapOuts] > 0)
        for i in stride(from: 0, to: 20_000, by: 7) { #expect(try array.element(at: i) == value(i)) }
        var mismatches = 0
        for (i, v) in array.enumerated() where v != value(i) { mismatches += 1 }
        #expect(mismatches == 0)
        #expect(space.statistics[.swapIns] > 0)
        #expect(space.checkInvariants() == [])
    }

    @Test("reserveCapacity makes the segments at once; appending up to it makes none")
    func reserve() throws {
        let (space, _) = try makeSpace(memoryPages: 8)
        let array = try SwappableArray<Record>(count: 10, in: space)
        try array.reserveCapacity(170 * 100)
        let regions = array.regions.count
        #expect(array.capacity >= 170 * 100)
        try array.append(contentsOf: (10..<17_000).map(Record.init))
        #expect(array.regions.count == regions)
        #expect(try array.element(at: 0).id == 0 && array.element(at: 0).a == 0)  // made zero
        #expect(try array.element(at: 16_999) == Record(16_999))
    }

    @Test("removing elements releases the pages left empty and keeps the rest")
    func removal() throws {
        let (space, _) = try makeSpace(memoryPages: 8)
        let array = try SwappableArray<UInt64>(count: 0, in: space)
        try array.append(contentsOf: (0..<5000).map(value))
        #expect(try array.removeLast() == value(4999))
        try array.removeLast(4999 - 1024 - 100)  // 1124 left: 3 pages
        #expect(array.count == 1124)
        #expect(try array.element(at: 1123) == value(1123))
        #expect(throws: SwapError(.outOfRange, "")) { try array.element(at: 1124) }
        // Page 2 still holds elements 1024..<1124; pages 3... were released.
        let (k3, p3) = array.layout.locate(page: 3)
        #expect(array.regions[k3].state(ofPage: p3) == .untouched)
        let (k2, p2) = array.layout.locate(page: 2)
        #expect(array.regions[k2].state(ofPage: p2) != .untouched)
        try array.append(7)
        #expect(array.last == 7 && array.count == 1125)
        let capacity = array.capacity
        array.removeAll()
        #expect(array.isEmpty && array.capacity == capacity)
        #expect(array.regions.allSatisfy { r in (0..<r.pageCount).allSatisfy { r.state(ofPage: $0) == .untouched } })
        #expect(space.checkInvariants() == [])
    }

    @Test("page-wise iteration and withElements equal element-wise reads")
    func pageWise() throws {
        let (space, _) = try makeSpace(memoryPages: 4)
        let array = try SwappableArray<Record>(count: 0, in: space)
        try array.append(contentsOf: (0..<2000).map(Record.init))  // 12 pages of 170
        let elementWise = try (0..<2000).map { i throws(SwapError) in try array.element(at: i) }
        #expect(Array(array) == elementWise)
        #expect(array.reduce(0) { $0 + $1.id } == Int64(1999 * 2000 / 2))
        // One call per page touched: 165..<700 touches pages 0...4.
        var calls: [(Int, Int)] = []
        var copied: [Record] = []
        try array.withElements(in: 165..<700) { start, elements in
            calls.append((start, elements.count))
            copied.append(contentsOf: elements)
        }
        #expect(calls.map(\.0) == [165, 170, 340, 510, 680] && calls.map(\.1) == [5, 170, 170, 170, 20])
        #expect(copied == Array(elementWise[165..<700]))
        try array.withMutableElements(in: 0..<2000) { start, elements in
            for j in elements.indices { elements[j].b = UInt32(start + j) }
        }
        #expect(array.allSatisfy { $0.b == UInt32($0.id) })
        // A body's error stops the walk and comes out as is.
        struct Stop: Error {}
        var pages = 0
        #expect(throws: Stop.self) {
            try array.withElements(in: 0..<2000) { _, _ in
                pages += 1
                if pages == 2 { throw Stop() }
            }
        }
        #expect(pages == 2)
        let filled = try SwappableArray(repeating: Record(3), count: 400, in: space)
        #expect(filled.allSatisfy { $0 == Record(3) } && filled.count == 400)
    }

    @Test("iteration pins each page once, not once per element")
    func iterationPinsPages() throws {
        let (space, backend) = try makeSpace(memoryPages: 16)
        let array = try SwappableArray<UInt64>(count: 4 * 512, in: space)
        try array.withMutableElements(in: 0..<array.count) { start, e in for j in e.indices { e[j] = value(start + j) } }
        try array.region.swapOut(pages: 0..<4)
        backend.resetReads()
        // After each element, push its page out again: an iterator that pinned per element would
        // read the page back from the device for every element (512 times per page).
        var i = 0
        for v in array {
            #expect(v == value(i))
            try array.region.swapOut(pages: i / 512..<i / 512 + 1)
            i += 1
        }
        #expect(i == 2048)
        #expect(backend.maxReadsOfOnePage <= 2 && backend.totalReads <= 8)
    }

    @Test("bad counts, indices and ranges are typed errors")
    func badArguments() throws {
        let (space, _) = try makeSpace(memoryPages: 4)
        #expect(throws: SwapError(.invalidArgument, "")) { try SwappableArray<Int>(count: -5, in: space) }
        #expect(throws: SwapError(.invalidArgument, "")) { try SwappableArray<Int>(count: Int.max, in: space) }
        #expect(throws: SwapError(.invalidArgument, "")) { try SwappableArray<InlineArray<5000, UInt8>>(count: 1, in: space) }
        let array = try SwappableArray<Int32>(count: 3, in: space)
        #expect(throws: SwapError(.outOfRange, "")) { try array.element(at: 3) }
        #expect(throws: SwapError(.outOfRange, "")) { try array.element(at: -1) }
        #expect(throws: SwapError(.outOfRange, "")) { try array.setElement(1, at: 3) }
        #expect(throws: SwapError(.outOfRange, "")) { try array.withElements(in: 2..<4) { _, _ in } }
        #expect(throws: SwapError(.outOfRange, "")) { try array.withMutableElements(in: -1..<1) { _, _ in } }
        #expect(throws: SwapError(.invalidArgument, "")) { try array.reserveCapacity(-1) }
        #expect(throws: SwapError(.invalidArgument, "")) { try array.reserveCapacity(Int.max) }
        #expect(throws: SwapError(.invalidArgument, "")) { try array.removeLast(-1) }
        #expect(throws: SwapError(.outOfRange, "")) { try array.removeLast(4) }
        try array.removeLast(3)
        #expect(throws: SwapError(.outOfRange, "")) { try array.removeLast() }
        // The message says what was wrong.
        do { _ = try SwappableArray<Int>(count: -5, in: space) } catch { #expect(error.message.contains("-5")) }
    }

    @Test("an array of 16 TiB throws .outOfMemory when the system will not allocate its page table")
    func pageTableTooLarge() throws {
        let (space, _) = try makeSpace(memoryPages: 4)
        // The largest count accepted: 2^32 pages, a 32 GiB page table. Where the system grants
        // it (it is calloc'd: memory only for entries written), the array must work at its ends;
        // where it does not (this test's machines: less RAM and swap than 32 GiB, the kernel's
        // heuristic overcommit refuses it), the error must say what to do, not crash.
        let count = SwappableArrayLayout.maxPages * SwapPage.size
        do {
            let array = try SwappableArray<UInt8>(count: count, in: space)
            print("a 16 TiB array was made: the system granted its 32 GiB page table")
            array[count - 1] = 7
            #expect(array[count - 1] == 7 && array[0] == 0)
        } catch {
            #expect(error.code == .outOfMemory && error.message.contains("page table"), "\(error)")
            #expect(error.message.contains("16 TiB") && error.message.contains("32 GiB"), "\(error.message)")
        }
        // The space is unharmed, and a large sparse array (16 GiB: a 32 MiB page table) costs
        // only what it touches.
        let array = try SwappableArray<UInt8>(count: 1 << 34, in: space)
        array[(1 << 34) - 1] = 9
        #expect(array[(1 << 34) - 1] == 9 && array[1 << 33] == 0)
    }

    @Test("an element removed between a read's index check and its read is .outOfRange, not zero")
    func removedInReadWindow() throws {
        let (space, _) = try makeSpace(memoryPages: 16)
        let array = try SwappableArray<UInt64>(count: 0, in: space)
        let perPage = array.elementsPerPage
        try array.append(contentsOf: (0..<2 * perPage).map(value))
        let fired = Atomic<Bool>(false)
        // The second page is removed (and released) right after the read checked its index.
        array.afterIndexCheck.arm {
            guard !fired.exchange(true, ordering: .relaxed) else { return }
            try? array.removeLast(perPage)
        }
        defer { array.afterIndexCheck.disarm() }
        let result = Result { () throws(SwapError) in try array.element(at: perPage + 5) }
        let didFire = fired.load(ordering: .relaxed)
        #expect(didFire)
        #expect(throws: SwapError(.outOfRange, "")) { try result.get() }
        #expect(try array.element(at: perPage - 1) == value(perPage - 1))
    }

    @Test("reads racing removeLast return the element or throw .outOfRange, never the zeros of a released page")
    func readsRacingRemoval() throws {
        let (space, _) = try makeSpace(memoryPages: 16)
        let array = try SwappableArray<UInt64>(count: 0, in: space)
        let perPage = array.elementsPerPage
        try array.append(contentsOf: (0..<perPage).map(value))
        let rounds = 3000
        let done = Atomic<Bool>(false)
        let good = Atomic<Int>(0)
        let removed = Atomic<Int>(0)
        let wrong = Atomic<Int>(0)
        let errors = Atomic<Int>(0)
        @Sendable func tally(_ right: Bool) {
            if right { good.add(1, ordering: .relaxed) } else { wrong.add(1, ordering: .relaxed) }
        }
        // One thread fills the second page and empties it again (its page released each time);
        // the other reads the second page's elements, through each read API, while it may go.
        runThreads(2) { t in
            if t == 0 {
                defer { done.store(true, ordering: .releasing) }
                do {
                    for _ in 0..<rounds {
                        try array.append(contentsOf: (perPage..<2 * perPage).map(value))
                        try array.removeLast(perPage)
                    }
                } catch {
                    errors.add(1, ordering: .relaxed)
                }
                return
            }
            var rng = SeededRandom(seed: 77)
            var k = 0
            while !done.load(ordering: .acquiring) {
                let i = perPage + Int.random(in: 0..<perPage, using: &rng)
                k += 1
                do {
                    switch k % 3 {
                    case 0:
                        let v = try array.element(at: i)
                        tally(v == value(i))
                    case 1:
                        let vs = try array.elements(in: i..<i + 1)
                        tally(vs == [value(i)])
                    default:
                        // Iteration stops early when the array shrinks; what it hands out is right.
                        var j = 0
                        var ok = true
                        for v in array {
                            if v != value(j) { ok = false }
                            j += 1
                        }
                        tally(ok)
                    }
                } catch let error as SwapError where error.code == .outOfRange {
                    removed.add(1, ordering: .relaxed)
                } catch {
                    errors.add(1, ordering: .relaxed)
                }
            }
        }
        print(
            "reads racing removal: \(good.load(ordering: .relaxed)) right, \(removed.load(ordering: .relaxed)) out of range, \(wrong.load(ordering: .relaxed)) wrong"
        )
        #expect(wrong.load(ordering: .relaxed) == 0, "a read returned what the array never held (zeros of a released page)")
        #expect(errors.load(ordering: .relaxed) == 0)
        #expect(good.load(ordering: .relaxed) > 0 && removed.load(ordering: .relaxed) > 0, "the reads did not race the removals")
    }

    @Test("two threads share one array: one appends while the other reads, then both write")
    func concurrent() throws {
        let (space, _) = try makeSpace(memoryPages: 8, backgroundReclaim: true)
        let array = try SwappableArray<UInt64>(count: 0, in: space)
        let total = 20_000
        let verified = Atomic<Int>(0)
        let mismatches = Atomic<Int>(0)
        let errors = Atomic<Int>(0)
        runThreads(2) { t in
            do {
                if t == 0 {
                    var i = 0
                    while i < total {
                        if i % 1000 < 500 {
                            try array.append(value(i))
                            i += 1
                        } else {
                            try array.append(contentsOf: (i..<i + 100).map(value))
                            i += 100
                        }
                    }
                } else {
                    var rng = SeededRandom(seed: 20)
                    while array.count < total {
                        let n = array.count
                        guard n > 0 else { continue }
                        let i = Int.random(in: 0..<n, using: &rng)
                        if try array.element(at: i) != value(i) { mismatches.add(1, ordering: .relaxed) }
                        verified.add(1, ordering: .relaxed)
                    }
                }
            } catch {
                errors.add(1, ordering: .relaxed)
            }
        }
        #expect(array.count == total)
        // Each thread rewrites every other element, then walks the whole array page by page.
        runThreads(2) { t in
            do {
                for i in stride(from: t, to: total, by: 2) { try array.setElement(value(i) ^ 0xff, at: i) }
                var i = 0
                for v in array {
                    // The other thread's half may not be rewritten yet.
                    if v != value(i) ^ 0xff && (i % 2 == t || v != value(i)) { mismatches.add(1, ordering: .relaxed) }
                    i += 1
                }
                verified.add(i, ordering: .relaxed)
            } catch {
                errors.add(1, ordering: .relaxed)
            }
        }
        let all = try (0..<total).allSatisfy { i throws(SwapError) in try array.element(at: i) == value(i) ^ 0xff }
        print("SwappableArray concurrent: \(verified.load(ordering: .relaxed)) reads verified, \(space.statistics[.swapIns]) swap-ins")
        #expect(all && errors.load(ordering: .relaxed) == 0 && mismatches.load(ordering: .relaxed) == 0)
        #expect(verified.load(ordering: .relaxed) > 2 * total)
        #expect(space.statistics[.swapIns] > 0)
        #expect(space.checkInvariants() == [])
    }
}
