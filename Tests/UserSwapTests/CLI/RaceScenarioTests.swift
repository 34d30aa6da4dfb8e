import Foundation
import Synchronization
import Testing

@testable import UserSwapBench
@testable import UserSwapCLI

extension CLI {
    /// The untimed parts of `bench race`: the round threads, the page orders, the page pattern
    /// and the sweep parser. No timing is asserted.
    @Suite("Race scenario")
    struct RaceScenarioTests {
        @Test("every thread runs every round, and no round starts before the last one ended", arguments: [1, 3, 16])
        func rounds(threads: Int) throws {
            let rounds = 200
            // Work done in the current round; the controller checks it between rounds.
            let inRound = Atomic<Int>(0)
            let overlaps = Atomic<Int>(0)
            let workers = RaceScenario.RoundThreads<[Int]>(threads: threads, name: "test", spinNanoseconds: 100_000) { thread in
                [thread]
            } round: { seen, thread, opened in
                // Relaxed: the round barrier orders these against the controller's reads.
                let before = inRound.wrappingAdd(1, ordering: .relaxed).oldValue
                if before >= threads { overlaps.wrappingAdd(1, ordering: .relaxed) }
                if opened == 0 { overlaps.wrappingAdd(1, ordering: .relaxed) }
                seen.append(thread)
            }
            for round in 0..<rounds {
                try workers.runRound()
                // Relaxed: `runRound` returned, so every worker's add happened before it.
                #expect(inRound.exchange(0, ordering: .relaxed) == threads, "round \(round)")
                // Every other round, let the workers fall asleep on the futex (100 µs of spinning).
                if round % 50 == 0 { usleepForTest(300) }
            }
            let states = workers.finish()
            #expect(states.count == threads)
            for (thread, state) in states.enumerated() {
                #expect(state.first == thread, "thread \(thread)'s state is its own")
                #expect(state.count == rounds + 1, "thread \(thread) ran \(state.count - 1) of \(rounds) rounds")
            }
            #expect(overlaps.load(ordering: .relaxed) == 0)
            #expect(workers.finish().count == threads, "finish is idempotent")
        }

        @Test("an error in one thread's round is rethrown after the round, and stays")
        func errors() {
            let workers = RaceScenario.RoundThreads<Int>(threads: 4, name: "test") { _ in
                0
            } round: { count, thread, _ in
                count += 1
                if thread == 2 && count == 3 { throw BenchError("thread 2 failed") }
            }
            #expect(throws: Never.self) { try workers.runRound() }
            #expect(throws: Never.self) { try workers.runRound() }
            #expect(throws: BenchError("thread 2 failed")) { try workers.runRound() }
            #expect(throws: BenchError("thread 2 failed")) { try workers.runRound() }
            // Every thread still ran every round.
            #expect(workers.finish() == [4, 4, 4, 4])
        }

        @Test("page orders visit every page once", arguments: RaceScenario.PageOrder.allCases)
        func orders(order: RaceScenario.PageOrder) {
            for (threads, pages) in [(1, 1), (8, 64), (16, 5), (3, 100)] {
                for thread in 0..<threads {
                    let sequence = order.pages(thread: thread, threads: threads, pages: pages)
                    #expect(sequence.sorted() == Array(0..<pages), "\(order) thread \(thread) of \(threads), \(pages) pages")
                }
            }
        }

        @Test("same order collides everywhere; rotate spreads the starting pages")
        func orderShapes() {
            let same = (0..<8).map { RaceScenario.PageOrder.same.pages(thread: $0, threads: 8, pages: 64) }
            #expect(Set(same).count == 1)
            let rotate = (0..<8).map { RaceScenario.PageOrder.rotate.pages(thread: $0, threads: 8, pages: 64) }
            #expect(rotate.map { $0[0] } == [0, 8, 16, 24, 32, 40, 48, 56])
            #expect(Array(rotate[1].prefix(3)) == [8, 9, 10])
            #expect(Array(rotate[7].prefix(9)) == [56, 57, 58, 59, 60, 61, 62, 63, 0], "wraps around")
        }

        @Test("the page pattern detects a wrong page, a wrong seed and a single changed byte")
        func pattern() {
            let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
            defer { bytes.deallocate() }
            RaceScenario.Pattern.fill(bytes, page: 7, seed: 42)
            #expect(RaceScenario.Pattern.matches(UnsafeRawBufferPointer(bytes), page: 7, seed: 42))
            #expect(!RaceScenario.Pattern.matches(UnsafeRawBufferPointer(bytes), page: 8, seed: 42))
            #expect(!RaceScenario.Pattern.matches(UnsafeRawBufferPointer(bytes), page: 7, seed: 43))
            bytes[4000] ^= 1
            #expect(!RaceScenario.Pattern.matches(UnsafeRawBufferPointer(bytes), page: 7, seed: 42))
            #expect(RaceScenario.Pattern.word(page: 0, index: 0, seed: 0) != RaceScenario.Pattern.word(page: 0, index: 1, seed: 0))
        }

        @Test("sweeps parse as thread counts in the order given")
        func sweep() throws {
            #expect(try RaceScenario.parseSweep("1,2,4,8,16") == [1, 2, 4, 8, 16])
            #expect(try RaceScenario.parseSweep("8") == [8])
            #expect(try RaceScenario.parseSweep(" 4, 2") == [4, 2])
            for bad in ["", "0", "1,,2", "a", "1,5000", "-1"] {
                #expect(throws: BenchError.self, "\(bad)") { try RaceScenario.parseSweep(bad) }
            }
        }
    }
}

/// A short sleep for the tests above.
private func usleepForTest(_ microseconds: UInt32) {
    var request = timespec(tv_sec: 0, tv_nsec: Int(microseconds) * 1000)
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 { request = remaining }
}
