import Foundation
import Synchronization
import Testing

@testable import UserSwap

/// Back-pressure for async pins: a task that finds no free frame waits in `FrameWaitQueue`, in
/// order of arrival, for the background reclaimer, instead of reclaiming on its cooperative
/// thread.
@Suite("Frame wait queue", .hangLimit)
struct FrameWaitQueueTests {
    /// One thread for every task: a task that reclaimed on it would hold up all the others.
    static let executor = ThreadsExecutor(threads: 1)

    @Test("waiters are resumed oldest first, as many as asked; a waiter that waits again keeps its place")
    func order() async throws {
        try await withTaskExecutorPreference(Self.executor) {
            let queue = FrameWaitQueue()
            let tickets = (0..<6).map { _ in queue.ticket() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                // Tickets 0, 2, 4, then 5, 3, 1 join the queue: each goes to its ticket's place.
                for i in [0, 2, 4, 5, 3, 1] {
                    group.addTask { try await queue.wait(tickets[i]) {} }
                    while queue.count < [0, 2, 4, 5, 3, 1].firstIndex(of: i)! + 1 { await Task.yield() }
                }
                #expect(queue.count == 6)
                #expect(queue.resume(upTo: 2) == 2)
                #expect(queue.resume(upTo: 10) == 4)
                try await group.waitForAll()
            }
            #expect(queue.resumedTickets == tickets.map(\.id), "\(queue.resumedTickets)")
            #expect(queue.isEmpty && queue.resume(upTo: 1) == 0)
        }
    }

    @Test("a task cancelled while it waits throws .cancelled and leaves the queue")
    func cancellation() async throws {
        let queue = FrameWaitQueue()
        let task = Task {
            try await queue.wait(queue.ticket()) {}
        }
        while queue.isEmpty { await Task.yield() }
        task.cancel()
        let result = await task.result
        #expect(throws: SwapError.self) { try result.get() }
        #expect(queue.isEmpty && queue.resume(upTo: 1) == 0)
    }

    @Test(
        "128 tasks pinning 256 swapped-out pages with 4 frames left free, on one thread: they wait for frames without reclaiming, in order of arrival, and get their bytes"
    )
    func backPressure() async throws {
        let pages = 256
        let backend = TestBackend(pageCount: 1 + 4 * 512)
        let space = try SwapSpace(
            .init(
                memory: 64 * SwapPage.size, devices: [.backend(backend)], encryption: .none, ioEngine: .threadPool,
                ioOptions: IOEngineOptions(workers: 16)))
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        for p in 0..<pages { try region.withPage(p) { fill($0, page: p) } }
        try region.swapOut(pages: 0..<pages)
        try region.advise(.random)
        // 60 of the 64 frames pinned by this thread, and the reads held: the tasks' first 4
        // reads take the last free frames, and the next ones find none and nothing to reclaim
        // until the reads are let go.
        let holder = try space.makeRegion(bytes: 60 * SwapPage.size)
        func pinAll() throws -> [HeldPin] { try (0..<60).map { HeldPin(try holder.pin($0, for: .write)) } }
        var held = try pinAll()
        backend.holdReads()
        let stats = space.statistics
        let directBefore = stats[.directReclaims]
        let waitsBefore = stats[.allocationWaits]
        let tasks = Task(executorPreference: Self.executor) {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for t in 0..<128 {
                    group.addTask {
                        var wrong = 0
                        for page in [t, t + 128] {
                            let pin = try await region.pin(page, for: .read)
                            if !matches(pin.bytes, page: page) { wrong += 1 }
                        }
                        return wrong
                    }
                }
                return try await group.reduce(0, +)
            }
        }
        // Until tasks wait for frames (or 10 s: then the expectations below say what went wrong).
        let deadline = ContinuousClock.now + .seconds(10)
        while stats[.allocationWaits] == waitsBefore && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        let waiting = space.engine.allocator.frameWaiters.count
        backend.releaseReads()
        let wrong = try await tasks.value
        held.removeAll()
        let waits = stats[.allocationWaits] - waitsBefore
        let resumed = space.engine.allocator.frameWaiters.resumedTickets
        // Each ticket's first resumption: the order the tasks were given their turn.
        var seen = Set<Int>()
        let firstTurns = resumed.filter { seen.insert($0).inserted }
        print(
            "back-pressure: \(waiting) tasks waiting for frames at once, \(waits) waits, \(resumed.count) resumptions of \(firstTurns.count) tickets, \(stats[.directReclaims] - directBefore) direct reclaims, \(stats[.kswapdWakeups]) background wake-ups"
        )
        #expect(wrong == 0)
        #expect(stats[.directReclaims] == directBefore, "an async pin reclaimed on its task's thread")
        #expect(waits > 0 && waiting > 0, "no task waited for frames: the test did not test back-pressure")
        #expect(firstTurns == firstTurns.sorted(), "frames were not given in order of arrival: \(firstTurns)")
        #expect(space.engine.allocator.frameWaiters.isEmpty && space.engine.asyncPins.count == 0)
        #expect(space.checkInvariants() == [])
        for p in 0..<pages {
            #expect(try region.withPage(p, for: .read) { matches($0, page: p) })
        }
    }

    /// A pin kept alive in an array (a `Pin` cannot be copied into one).
    final class HeldPin {
        let pin: Pin
        init(_ pin: consuming Pin) { self.pin = pin }
    }
}
