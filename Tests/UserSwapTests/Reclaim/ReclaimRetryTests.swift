import Glibc
import Synchronization
import Testing
import UserSwapCompression

@testable import UserSwap

/// An allocation that races other threads' reclaim must not report out of memory while the
/// budget holds pages that can go: the frames it frees may be taken by a racing allocation,
/// and the candidates it looks for may be isolated by another reclaimer or referenced again
/// since its last look. Only a budget that stays unreclaimable through many passes is full
/// (kernel: `should_reclaim_retry`, up to `MAX_RECLAIM_RETRIES` passes without progress).
@Suite("Direct reclaim under contention")
struct ReclaimRetryTests {
    /// A reclaimer whose passes free nothing until the `freesAtPass`th, which frees a frame the
    /// test held: the passes that racing threads made fruitless, played in order.
    final class ScriptedReclaim: DirectReclaim, @unchecked Sendable {
        let allocator: FrameAllocator
        let freesAtPass: Int
        private(set) var passes = 0
        var held: [Folio] = []

        init(allocator: FrameAllocator, freesAtPass: Int) {
            self.allocator = allocator
            self.freesAtPass = freesAtPass
        }

        func reclaimForGroup(_ group: MemoryGroup, target: Int) -> Int { 0 }
        func reclaimForAllocation(target: Int) -> Int {
            passes += 1
            guard passes == freesAtPass, let f = held.popLast() else { return 0 }
            allocator.putFolio(f)
            return 1
        }
        func othersMayFree(besides ownArriving: Int) -> Bool { false }
        func wakeBackgroundReclaim() {}
        var hasBackgroundReclaim: Bool { false }
        func takeWriteFailure() -> SwapError? { nil }
        var swapExhausted: (slots: Int, devices: Int)? { nil }
    }

    /// An allocator of `frames` frames, every one taken, with a scripted reclaimer.
    static func fullAllocator(frames: Int, freesAtPass: Int) throws -> (FrameAllocator, ScriptedReclaim) {
        let allocator = try FrameAllocator(frameCount: frames, readaheadReserve: 0, stats: SwapStatistics())
        let reclaim = ScriptedReclaim(allocator: allocator, freesAtPass: freesAtPass)
        allocator.connect(reclaim)
        reclaim.held = try (0..<frames).map { _ in try allocator.allocateFolio(order: 0) }
        #expect(allocator.pool.freeFrames == 0)
        return (allocator, reclaim)
    }

    @Test("an allocation keeps reclaiming through passes that free nothing, as the kernel's retry rule does")
    func fruitlessPassesAreRetried() throws {
        // The frame comes free at the 10th pass: three passes (the old rule) would have failed.
        let (allocator, reclaim) = try Self.fullAllocator(frames: 4, freesAtPass: 10)
        let f = try allocator.allocateFolio(order: 0)
        #expect(reclaim.passes == 10)
        allocator.putFolio(f)
        withExtendedLifetime(reclaim) {}
    }

    @Test("an allocation that no pass can help fails after the retry limit, saying what reclaim saw")
    func hopelessAllocationFails() throws {
        let (allocator, reclaim) = try Self.fullAllocator(frames: 4, freesAtPass: .max)
        #expect(throws: SwapError.self) { try allocator.allocateFolio(order: 0) }
        #expect(reclaim.passes == FrameAllocator.reclaimRetries)
        do {
            _ = try allocator.allocateFolio(order: 0)
        } catch {
            #expect(error.code == .outOfMemory)
            #expect("\(error)".contains("\(FrameAllocator.reclaimRetries) passes of reclaim in a row freed nothing"))
            #expect("\(error)".contains("scanned 0"))
        }
        withExtendedLifetime(reclaim) {}
    }

    @Test(
        "threads that pin nothing across accesses never run out of memory in a tiny budget",
        arguments: [ReclaimPolicy.secondChance, .frequency, .workingset])
    func noSpuriousOutOfMemory(policy: ReclaimPolicy) throws {
        let frames = 88
        let threads = 4
        let pagesPerThread = frames  // 4× the budget in all
        let opsPerThread = 12_000
        let devicePages = 1 + 4 * 512
        let space = try SwapSpace(
            .init(
                memory: frames * SwapPage.size,
                devices: [
                    .backend(try CompressedTier(lower: MemoryBackend(pageCount: devicePages), poolBytes: 16 * SwapPage.size))
                ],
                reclaimPolicy: policy, backgroundReclaim: true, encryption: .none))
        let regions = try (0..<threads).map { _ in try space.makeRegion(bytes: pagesPerThread * SwapPage.size) }
        let outOfMemory = Atomic<Int>(0)
        let wrong = Atomic<Int>(0)
        let firstError = Mutex<String?>(nil)
        var rng = SeededRandom.fromEnvironment("reclaim retry \(policy)")
        let seeds = (0..<threads).map { _ in rng.next() }

        runThreads(threads) { t in
            let region = regions[t]
            var local = SeededRandom(seed: seeds[t])
            var generations = [Int](repeating: -1, count: pagesPerThread)
            for _ in 0..<opsPerThread {
                let p = Int.random(in: 0..<pagesPerThread, using: &local)
                do {
                    if Int.random(in: 0..<3, using: &local) == 0 {
                        generations[p] += 1
                        let g = generations[p]
                        try region.withPage(p, for: .write) { fill($0, page: p, generation: g) }
                    } else {
                        let g = generations[p]
                        try region.withPage(p, for: .read) { bytes in
                            let ok = g < 0 ? bytes.allSatisfy { $0 == 0 } : matches(bytes, page: p, generation: g)
                            if !ok { wrong.add(1, ordering: .relaxed) }
                        }
                    }
                } catch {
                    if (error as? SwapError)?.code == .outOfMemory {
                        outOfMemory.add(1, ordering: .relaxed)
                    } else {
                        wrong.add(1, ordering: .relaxed)
                    }
                    firstError.withLock { $0 = $0 ?? "\(error)" }
                }
            }
        }
        #expect(
            outOfMemory.load(ordering: .relaxed) == 0,
            "accesses failed for memory with at most \(threads) pages of \(frames) pinned at once: \(firstError.withLock { $0 ?? "" })")
        #expect(wrong.load(ordering: .relaxed) == 0, "\(firstError.withLock { $0 ?? "" })")
        #expect(space.statistics[.swapOuts] > frames, "the workload must really swap")
        #expect(space.checkInvariants() == [])
        print(
            "reclaim retry (\(policy)): \(threads * opsPerThread) accesses, \(outOfMemory.load(ordering: .relaxed)) out of memory, direct reclaims \(space.statistics[.directReclaims]), swap-outs \(space.statistics[.swapOuts])"
        )
    }
}
