import Foundation
import Synchronization
import Testing

@testable import UserSwap

@Suite("Async pins", .hangLimit)
struct AsyncPinTests {
    /// The tasks' threads: two of their own, whatever the machine and whatever the other
    /// suites running in parallel do with the global cooperative pool.
    static let executor = ThreadsExecutor(threads: 2)

    /// A space whose device reads on thread-pool workers (the async path's reads are in flight
    /// while the tasks are suspended), with `pages` written and swapped out one by one in a
    /// shuffled order (each page its own run of slots), and readahead off: every page is one
    /// read of its own.
    static func swappedOut(
        _ pages: Int, memoryPages: Int? = nil, workers: Int = 16, slots: Int = 256, asyncPinLimit: Int? = nil,
        seed: UInt64 = 7
    ) throws -> (SwapSpace, Region, TestBackend) {
        let backend = TestBackend(pageCount: 1 + 4 * 512)
        let space = try SwapSpace(
            .init(
                memory: (memoryPages ?? 4 * pages) * SwapPage.size, devices: [.backend(backend)],
                backgroundReclaim: false, encryption: .none, ioEngine: .threadPool,
                ioOptions: IOEngineOptions(slots: slots, workers: workers), asyncPinLimit: asyncPinLimit))
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }
        var rng = SeededRandom(seed: seed)
        for p in Array(0..<pages).shuffled(using: &rng) { try region.swapOut(pages: p..<(p + 1)) }
        try region.advise(.random)
        backend.resetReads()
        return (space, region, backend)
    }

    @Test("1,000 tasks racing on 16 swapped-out pages: each page read once, every task gets its bytes, reads in flight together")
    func thousandTasks() async throws {
        try await withTaskExecutorPreference(Self.executor) {
            let (space, region, backend) = try Self.swappedOut(16)
            let before = space.statistics[.deviceReads]
            backend.readDelayMicros.store(20_000, ordering: .relaxed)
            let wrong = try await withThrowingTaskGroup(of: Int.self) { group in
                for t in 0..<1000 {
                    group.addTask {
                        let page = t % 16
                        let pin = try await region.pin(page, for: .read)
                        return matches(pin.bytes, page: page) ? 0 : 1
                    }
                }
                return try await group.reduce(0, +)
            }
            backend.readDelayMicros.store(0, ordering: .relaxed)
            let reads = space.statistics[.deviceReads] - before
            let inFlight = backend.maxReadsInFlight.load(ordering: .relaxed)
            print("1000 tasks on 16 pages: \(reads) device reads, at most \(inFlight) at once")
            #expect(wrong == 0)
            #expect(reads == 16, "\(reads) device reads for 16 pages")
            #expect(backend.totalReads == 16 && backend.maxReadsOfOnePage == 1)
            // Blocking pins keep at most one read per thread in flight: suspended tasks keep
            // every page's read in flight at once (16, one per pool worker) on 2 threads.
            #expect(inFlight > Self.executor.threads, "at most \(inFlight) reads in flight at once on \(Self.executor.threads) threads")
            #expect(space.engine.asyncPins.count == 0)
            #expect(space.engine.frames.waitTable.waiterCount == 0)
            #expect(space.checkInvariants() == [])
        }
    }

    @Test(
        "64 tasks pinning 64 swapped-out pages through an engine of 8 request slots: their reads never run on the tasks' threads, at most 4 in flight"
    )
    func readsStayOffTheTasksThreads() async throws {
        try await withTaskExecutorPreference(Self.executor) {
            let (space, region, backend) = try Self.swappedOut(64, slots: 8)
            let stats = space.statistics
            let inlineBefore = stats[.ioInline]
            // Reads slow enough that the tasks all want one in flight at once.
            backend.readDelayMicros.store(5_000, ordering: .relaxed)
            let wrong = try await withThrowingTaskGroup(of: Int.self) { group in
                for page in 0..<64 {
                    group.addTask {
                        let pin = try await region.pin(page, for: .read)
                        return matches(pin.bytes, page: page) ? 0 : 1
                    }
                }
                return try await group.reduce(0, +)
            }
            backend.readDelayMicros.store(0, ordering: .relaxed)
            let inline = stats[.ioInline] - inlineBefore
            let inFlight = backend.maxReadsInFlight.load(ordering: .relaxed)
            print("64 tasks, 8 request slots: \(inline) reads done on a task's thread, at most \(inFlight) in flight")
            #expect(wrong == 0)
            // With every request slot taken the engine reads on the submitting thread: a
            // cooperative thread blocked for the read, every task behind it waiting.
            #expect(inline == 0, "\(inline) async pin reads done on the tasks' threads for want of a request slot")
            #expect(space.engine.asyncReads.limit == 4)
            #expect(inFlight <= 4, "\(inFlight) reads in flight, past the read gate's 4")
            #expect(inFlight > 1, "reads did not overlap: the test did not fill the gate")
            #expect(space.engine.asyncReads.available == 4)
            #expect(space.checkInvariants() == [])
        }
    }

    @Test("a resident page is pinned without suspending; a write through an async pin dirties it")
    func residentAndWrite() async throws {
        try await withTaskExecutorPreference(Self.executor) {
            let (space, region, _) = try Self.swappedOut(8)
            for p in 0..<8 {
                try await region.withPage(p, for: .write) { bytes in
                    #expect(matches(bytes, page: p))
                    fill(bytes, page: p, generation: 1)
                }
            }
            // Written: their copies on the device are stale, so out again means written again.
            let writes = space.statistics[.swapOuts]
            try region.swapOut(pages: 0..<8)
            #expect(space.statistics[.swapOuts] - writes == 8)
            for p in 0..<8 {
                let pin = try await region.pin(p, for: .read)
                #expect(matches(pin.bytes, page: p, generation: 1))
            }
            // Untouched pages come in as zeroes.
            let fresh = try space.makeRegion(bytes: 2 * SwapPage.size)
            let zero = try await fresh.pin(1, for: .read)
            #expect(zero.bytes.allSatisfy { $0 == 0 })
            await #expect(throws: SwapError.self) { try await region.pin(8) }
            #expect(space.checkInvariants() == [])
        }
    }

    @Test("tasks cancelled at random points while suspended change nothing: invariants hold, data intact, no waiter left")
    func cancellation() async throws {
        try await withTaskExecutorPreference(Self.executor) {
            let (space, region, backend) = try Self.swappedOut(64)
            // Reads slow enough that a task is still suspended when its canceller comes, even
            // on a loaded machine.
            backend.readDelayMicros.store(20_000, ordering: .relaxed)
            var rng = SeededRandom.fromEnvironment("async pin cancellation")
            let seed = rng.seed
            var outcomes = (pinned: 0, cancelled: 0)
            for round in 0..<6 {
                let pages = (0..<200).map { _ in Int.random(in: 0..<64, using: &rng) }
                let delays = (0..<200).map { _ in UInt64.random(in: 0..<6_000_000, using: &rng) }
                let tasks = pages.map { page in
                    Task(executorPreference: Self.executor) { () async throws(SwapError) -> Bool in
                        let pin = try await region.pin(page, for: .read)
                        return matches(pin.bytes, page: page)
                    }
                }
                for (task, delay) in zip(tasks, delays) where delay % 2 == 0 {
                    Task(executorPreference: Self.executor) {
                        // A quarter at once, the others after a random sleep.
                        if delay % 4 != 0 { try? await Task.sleep(nanoseconds: delay) }
                        task.cancel()
                    }
                }
                for task in tasks {
                    switch await task.result {
                    case .success(let right):
                        #expect(right, "seed \(seed): wrong bytes")
                        outcomes.pinned += 1
                    case .failure(let error):
                        #expect((error as? SwapError)?.code == .cancelled, "seed \(seed): \(error)")
                        outcomes.cancelled += 1
                    }
                }
                // Out again, so the next round suspends again.
                try region.swapOut(pages: 0..<64)
                print("cancellation round \(round): \(outcomes.pinned) pinned, \(outcomes.cancelled) cancelled so far")
            }
            backend.readDelayMicros.store(0, ordering: .relaxed)
            #expect(outcomes.cancelled > 0, "seed \(seed): no task was cancelled while suspended")
            #expect(space.engine.asyncPins.count == 0)
            #expect(space.engine.frames.waitTable.waiterCount == 0)
            #expect(space.checkInvariants() == [], "seed \(seed)")
            #expect(backend.maxReadsOfOnePage <= 6, "seed \(seed): a page read more than once per round")
            for p in 0..<64 { try region.withPage(p, for: .read) { #expect(matches($0, page: p), "seed \(seed): page \(p)") } }
        }
    }

    @Test("a task that pins more than the space's async pin limit gets .pinLimit; releasing one lets it pin")
    func pinLimit() async throws {
        try await withTaskExecutorPreference(Self.executor) {
            let (space, region, _) = try Self.swappedOut(8, asyncPinLimit: 3)
            var first: Pin? = try await region.pin(0, for: .read)
            let second = try await region.pin(1, for: .read)
            let third = try await region.pin(2, for: .read)
            #expect(space.engine.asyncPins.count == 3)
            do {
                _ = try await region.pin(3, for: .read)
                Issue.record("a fourth async pin over a limit of 3 succeeded")
            } catch {
                #expect((error as? SwapError)?.code == .pinLimit)
            }
            // Blocking pins are not counted.
            try region.withPage(4, for: .read) { #expect(matches($0, page: 4)) }
            first = nil
            let fourth = try await region.pin(3, for: .read)
            #expect(matches(fourth.bytes, page: 3))
            #expect(space.engine.asyncPins.count == 3)
            _ = consume second
            _ = consume third
            _ = consume fourth
            _ = first
            #expect(space.engine.asyncPins.count == 0)
            #expect(throws: SwapError.self) {
                try SwapSpace(.init(memory: 1 << 20, asyncPinLimit: 0))
            }
        }
    }

    @Test("a failed read gives .ioError to every task waiting for it; the page stays on the device")
    func readError() async throws {
        try await withTaskExecutorPreference(Self.executor) {
            let (space, region, backend) = try Self.swappedOut(4)
            backend.readDelayMicros.store(10_000, ordering: .relaxed)
            backend.failReads.store(1, ordering: .relaxed)
            let failures = await withTaskGroup(of: SwapError.Code?.self) { group in
                for _ in 0..<20 {
                    group.addTask {
                        do throws(SwapError) {
                            _ = try await region.pin(2, for: .read)
                            return nil
                        } catch {
                            return error.code
                        }
                    }
                }
                return await group.reduce(into: [SwapError.Code?]()) { $0.append($1) }
            }
            backend.readDelayMicros.store(0, ordering: .relaxed)
            // The first read failed; tasks that came after it read again.
            #expect(failures.contains(.ioError))
            #expect(failures.allSatisfy { $0 == nil || $0 == .ioError })
            let pin = try await region.pin(2, for: .read)
            #expect(matches(pin.bytes, page: 2))
            _ = consume pin
            #expect(space.statistics[.readErrors] >= 1)
            #expect(space.checkInvariants() == [])
        }
    }

    @Test("SwappableArray: element(at:), setElement(_:at:) and elements(at:) suspend and return the right values")
    func array() async throws {
        try await withTaskExecutorPreference(Self.executor) {
            let backend = TestBackend(pageCount: 1 + 4 * 512)
            let space = try SwapSpace(
                .init(
                    memory: 64 * SwapPage.size, devices: [.backend(backend)], backgroundReclaim: false,
                    encryption: .none, ioEngine: .threadPool))
            let perPage = SwapPage.size / MemoryLayout<UInt64>.stride
            let count = 256 * perPage
            let array = try SwappableArray<UInt64>(count: count, in: space)
            for i in stride(from: 0, to: count, by: 7) { try await array.setElement(UInt64(i) &* 3, at: i) }
            backend.readDelayMicros.store(1_000, ordering: .relaxed)
            var rng = SeededRandom(seed: 11)
            let indices = (0..<400).map { _ in Int.random(in: 0..<count, using: &rng) }
            let wrong = try await withThrowingTaskGroup(of: Int.self) { group in
                for (n, i) in indices.enumerated() {
                    group.addTask {
                        let expected: UInt64 = i % 7 == 0 ? UInt64(i) &* 3 : 0
                        let value = try await array.element(at: i)
                        if n % 5 == 0 { try await array.setElement(expected, at: i) }
                        return value == expected ? 0 : 1
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(wrong == 0)
            let some = Array(indices.prefix(50))
            let values = try await array.elements(at: some)
            #expect(values == some.map { $0 % 7 == 0 ? UInt64($0) &* 3 : 0 })
            backend.readDelayMicros.store(0, ordering: .relaxed)
            await #expect(throws: SwapError.self) { try await array.element(at: count) }
            #expect(space.engine.asyncPins.count == 0)
            #expect(space.checkInvariants() == [])
        }
    }
}
