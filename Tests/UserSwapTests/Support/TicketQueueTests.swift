import Foundation
import Synchronization
import Testing

@testable import UserSwap

/// The ticketed first-come-first-served queue of continuations under `FrameWaitQueue` and
/// `AsyncReadGate`: order of arrival, a ticket's place kept across waits, the shared state
/// changed in one step with the queue, and cancellation before and after suspending.
@Suite("Ticket queue", .hangLimit)
struct TicketQueueTests {
    /// One thread for every task, so that the order they queue in is the order they are added.
    static let executor = ThreadsExecutor(threads: 1)

    @Test("tasks are resumed in ticket order, as many as asked; a waiting-again ticket goes back to its place")
    func order() async throws {
        try await withTaskExecutorPreference(Self.executor) {
            let queue = TicketQueue((), rank: .frameWaiters)
            let tickets = (0..<8).map { _ in queue.ticket() }
            let woken = Log()
            await withTaskGroup(of: Void.self) { group in
                // Tickets join out of order: each goes to its ticket's place.
                let arrivals = [3, 0, 7, 5, 1, 6, 2, 4]
                for (n, i) in arrivals.enumerated() {
                    group.addTask {
                        let resumed = await queue.wait(tickets[i])
                        woken.append(resumed ? i : -1)
                    }
                    while queue.count < n + 1 { await Task.yield() }
                }
                #expect(queue.resume(upTo: 3) == 3)
                while woken.items.count < 3 { await Task.yield() }
                #expect(queue.count == 5)
                #expect(queue.resume(upTo: 100) == 5)
            }
            #expect(queue.resumedTickets == Array(0..<8), "\(queue.resumedTickets)")
            #expect(woken.items.sorted() == Array(0..<8))
            #expect(queue.isEmpty && queue.resume(upTo: 1) == 0)
        }
    }

    @Test("a resume that reaches a task before it suspends lets it through at once")
    func resumedBeforeSuspending() async {
        let queue = TicketQueue((), rank: .frameWaiters)
        // The resume runs in `queued`: after the task joined, before it suspended.
        let resumed = await queue.wait(queue.ticket(), queued: { #expect(queue.resume(upTo: 1) == 1) })
        #expect(resumed)
        #expect(queue.isEmpty)
    }

    @Test("pass and leftover change the shared state in one step with the queue: a gate of 2 slots for 5 tasks")
    func sharedState() async throws {
        try await withTaskExecutorPreference(Self.executor) {
            let queue = TicketQueue(2, rank: .folioWaitBucket)
            let take: @Sendable (inout Int, Bool) -> Bool = { free, nobodyWaits in
                guard free > 0 && nobodyWaits else { return false }
                free -= 1
                return true
            }
            let passed = Log()
            await withTaskGroup(of: Void.self) { group in
                for t in 0..<5 {
                    group.addTask {
                        if await queue.wait(unless: take) { passed.append(t) }
                    }
                    while passed.items.count + queue.count < t + 1 { await Task.yield() }
                }
                // Two took the slots; three wait, first come first served.
                #expect(passed.items == [0, 1])
                #expect(queue.count == 3)
                // Three slots given back: each to a waiter, none left over.
                for _ in 0..<3 { queue.resume(upTo: 1) { free, left in free += left } }
            }
            #expect(passed.items == [0, 1, 2, 3, 4])
            #expect(queue.withShared { free, _ in free } == 0)
            // Two more given back with nobody waiting: both to the shared state.
            for _ in 0..<2 { queue.resume(upTo: 1) { free, left in free += left } }
            #expect(queue.withShared { free, nobodyWaits in nobodyWaits ? free : -1 } == 2)
        }
    }

    @Test("a task cancelled while it waits returns false and leaves the queue; the others keep their order")
    func cancellation() async throws {
        try await withTaskExecutorPreference(Self.executor) {
            let queue = TicketQueue((), rank: .frameWaiters)
            let first = Task { await queue.wait() }
            while queue.count < 1 { await Task.yield() }
            let second = Task { await queue.wait() }
            while queue.count < 2 { await Task.yield() }
            let third = Task { await queue.wait() }
            while queue.count < 3 { await Task.yield() }
            second.cancel()
            let secondResumed = await second.value
            #expect(secondResumed == false)
            #expect(queue.count == 2)
            #expect(queue.resume(upTo: 2) == 2)
            let (firstResumed, thirdResumed) = (await first.value, await third.value)
            #expect(firstResumed && thirdResumed)
            #expect(queue.resumedTickets == [0, 2])
            #expect(queue.isEmpty && queue.resume(upTo: 1) == 0)
        }
    }

    @Test("a task cancelled before it waits returns false at once and is never queued for good")
    func cancelledBeforeWaiting() async {
        let queue = TicketQueue((), rank: .frameWaiters)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await queue.wait()
        }
        let resumed = await task.value
        #expect(resumed == false)
        #expect(queue.isEmpty && queue.resume(upTo: 1) == 0)
    }

    /// What the tasks did, in order.
    final class Log: Sendable {
        private let list = Mutex<[Int]>([])
        func append(_ n: Int) { list.withLock { $0.append(n) } }
        var items: [Int] { list.withLock { $0 } }
    }
}
