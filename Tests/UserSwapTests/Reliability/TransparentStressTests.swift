import Foundation
import Synchronization
import Testing

@testable import UserSwap

/// Randomized stress of a transparent region against an exact reference model: owner threads
/// store and load plain words (each owns a disjoint set of words, so the model needs no lock),
/// pin their pages for reading and writing and discard them, while disturber threads swap out,
/// deactivate, prefetch and pin any pages, slow the device down now and then, and the space reclaims on
/// its own under a budget 4× smaller than the data (or a group limit 8× smaller). Every load is checked as it happens; at the
/// end every word is, and the invariant walker must find nothing.
///
/// Half the pages belong to one owner each (they may be discarded); in the other half the words
/// are interleaved between all owners, so several threads store into one page at once (racing
/// write-protect and minor faults).
///
/// Environment: `USERSWAP_SEED` replays a seed (printed by every case; with threads the
/// interleaving differs, the operations do not); `USERSWAP_TRANSPARENT_OPS` sets the steps of
/// each owner thread (default 1500; `make soak` runs many more).
@Suite("Transparent regions: randomized stress against a model")
struct TransparentStressTests {
    static let owners = 4
    static let disturbers = 2
    static let memoryPages = 32
    static let pages = 4 * memoryPages
    static let wordsPerPage = SwapPage.size / 8

    struct Case: Sendable, CustomStringConvertible, CustomTestStringConvertible {
        let sync: SwapInSync
        /// The region in a memory group limited to half the budget.
        let grouped: Bool
        let faults: TransparentRegion.FaultService
        var description: String {
            "\(sync)\(grouped ? ", in a group" : ""), \(faults == .faultingThread ? "faulting thread" : "handler threads")"
        }
        var testDescription: String { description }
    }

    static let cases = bothProtocols.flatMap { sync in
        [false, true].flatMap { grouped in
            [TransparentRegion.FaultService.handlerThreads(4), .faultingThread].map { Case(sync: sync, grouped: grouped, faults: $0) }
        }
    }

    /// What the threads verified and did, for the summary line.
    final class Counts: Sendable {
        /// What went wrong, in the order seen.
        let failures = Mutex<[String]>([])
        let stores = Atomic<Int>(0)
        let loads = Atomic<Int>(0)
        let pins = Atomic<Int>(0)
        let discards = Atomic<Int>(0)
        let swapOuts = Atomic<Int>(0)
        let deactivations = Atomic<Int>(0)
        let prefetches = Atomic<Int>(0)
        /// Explicit pins refused with `.outOfMemory`: with six threads pinning, four faults in
        /// flight, prefetches and write-backs, every page of a 16-page group can be busy at
        /// once, and then a pin that needs a page is refused (the engine's contract); the
        /// operation did not happen, so the model does not change.
        let pinsRefused = Atomic<Int>(0)
    }

    /// Runs an explicit pin operation; a refusal for memory is counted, not a failure.
    static func pinning(_ counts: Counts, _ body: () throws -> Void) throws {
        do {
            try body()
            counts.pins.add(1, ordering: .relaxed)
        } catch let error as SwapError where error.code == .outOfMemory {
            counts.pinsRefused.add(1, ordering: .relaxed)
        }
    }

    @Test(
        "plain stores and loads, pins and discards racing swap-out, deactivation and reclaim match a model",
        arguments: cases)
    func stress(_ c: Case) throws {
        let sync = c.sync
        let steps = max(1, ModelTests.environment("USERSWAP_TRANSPARENT_OPS", default: 1500))
        var rng = SeededRandom.fromEnvironment("transparent stress (\(c)), \(Self.owners)×\(steps) steps")
        let seed = rng.seed
        let (space, backend) = try makeSpace(
            memoryPages: Self.memoryPages, swapPages: 1 + 2 * 512, sync: sync,
            backgroundReclaim: true)
        // In a group, its limit (half the budget) is what makes reclaim run.
        let group = c.grouped ? try space.makeGroup(name: "tenant", memoryLimit: Self.memoryPages / 2 * SwapPage.size) : nil
        let region = try space.makeTransparentRegion(bytes: Self.pages * SwapPage.size, group: group, faults: c.faults)
        let words = Self.pages * Self.wordsPerPage
        // Each word is written by one owner only: the model needs no lock.
        nonisolated(unsafe) let model = UnsafeMutablePointer<UInt64>.allocate(capacity: words)
        model.initialize(repeating: 0, count: words)
        defer { model.deallocate() }
        let base = UInt(bitPattern: region.base)
        let counts = Counts()
        let ownersDone = Atomic<Int>(0)
        let seeds = (0..<(Self.owners + Self.disturbers)).map { _ in rng.next() }
        let finished = DispatchGroup()
        for t in 0..<(Self.owners + Self.disturbers) {
            finished.enter()
            let thread = Thread {
                var r = SeededRandom(seed: seeds[t])
                do {
                    if t < Self.owners {
                        try Self.owner(
                            t, steps: steps, rng: &r, region: region, base: base, model: model,
                            counts: counts)
                        ownersDone.add(1, ordering: .releasing)
                    } else {
                        try Self.disturber(
                            rng: &r, region: region, backend: backend, counts: counts,
                            done: { ownersDone.load(ordering: .acquiring) == Self.owners })
                    }
                } catch {
                    counts.failures.withLock { $0.append("thread \(t): \(error)") }
                    if t < Self.owners { ownersDone.add(1, ordering: .releasing) }
                }
                finished.leave()
            }
            thread.name = "tstress-\(t)"
            thread.start()
        }
        guard finished.wait(timeout: .now() + 300) == .success else {
            // A hung fault: keep the region (its release would wait on the stuck thread).
            _ = Unmanaged.passRetained(region)
            Issue.record("transparent stress (\(c)), seed \(seed): threads did not finish within 300 s")
            return
        }
        backend.readDelayMicros.store(0, ordering: .relaxed)
        // Every word, from the application's side.
        let all = UnsafeMutablePointer<UInt64>(bitPattern: base)!
        var wrong = 0
        for w in 0..<words where all[w] != model[w] {
            if wrong < 5 {
                counts.failures.withLock {
                    $0.append(
                        "page \(w / Self.wordsPerPage) word \(w % Self.wordsPerPage): \(String(all[w], radix: 16)), expected \(String(model[w], radix: 16)) at the end"
                    )
                }
            }
            wrong += 1
        }
        let problems = space.checkInvariants()
        if let group, group.memoryPeak > Self.memoryPages / 2 * SwapPage.size {
            counts.failures.withLock { $0.append("the group's peak \(group.memoryPeak) exceeds its limit") }
        }
        let found = counts.failures.withLock { $0 }
        #expect(
            found.isEmpty && wrong == 0 && problems.isEmpty && region.lastFaultError == nil,
            "transparent stress (\(c)) failed with seed \(seed) (replay with USERSWAP_SEED=\(seed)): \(wrong) wrong words at the end; \(found.prefix(8)); invariants: \(problems.prefix(5)); fault error: \(String(describing: region.lastFaultError))"
        )
        let s = space.statistics
        print(
            "transparent stress (\(c)), seed \(seed): verified \(counts.loads.load(ordering: .relaxed)) loads and \(words) words at the end; \(counts.stores.load(ordering: .relaxed)) stores, \(counts.pins.load(ordering: .relaxed)) pins (\(counts.pinsRefused.load(ordering: .relaxed)) refused for memory), \(counts.discards.load(ordering: .relaxed)) discards, \(counts.swapOuts.load(ordering: .relaxed)) pages swapped out explicitly, \(counts.deactivations.load(ordering: .relaxed)) deactivations, \(counts.prefetches.load(ordering: .relaxed)) prefetches; \(s[.majorFaults]) major, \(s[.minorFaults]) minor, \(s[.writeProtectFaults]) write-protect faults, \(s[.swapIns]) swap-ins, \(s[.cleanDrops]) clean drops, \(s[.readaheadPages]) read ahead"
        )
    }

    /// The word `t` stores at `word` in step `step`: never zero, distinct per thread and step.
    static func value(_ t: Int, _ step: Int, _ word: Int) -> UInt64 {
        UInt64(t + 1) << 56 | UInt64(step & 0xff_ffff) << 28 | UInt64(word & 0xfff_ffff) | 1 << 63
    }

    /// Whether owner `t` owns `word`: a whole page in the first half, every `owners`th word of
    /// each page in the second.
    static func owns(_ t: Int, word: Int) -> Bool {
        let page = word / wordsPerPage
        return page < pages / 2 ? page % owners == t : (word % wordsPerPage) % owners == t
    }

    /// A random word owned by `t`.
    static func randomWord(_ t: Int, _ rng: inout SeededRandom) -> Int {
        if Bool.random(using: &rng) {
            let page = Int.random(in: 0..<(pages / 2 / owners), using: &rng) * owners + t
            return page * wordsPerPage + Int.random(in: 0..<wordsPerPage, using: &rng)
        }
        let page = Int.random(in: (pages / 2)..<pages, using: &rng)
        return page * wordsPerPage + Int.random(in: 0..<(wordsPerPage / owners), using: &rng) * owners + t
    }

    /// A random whole page owned by `t`.
    static func randomPage(_ t: Int, _ rng: inout SeededRandom) -> Int {
        Int.random(in: 0..<(pages / 2 / owners), using: &rng) * owners + t
    }

    static func owner(
        _ t: Int, steps: Int, rng: inout SeededRandom, region: TransparentRegion, base: UInt,
        model: UnsafeMutablePointer<UInt64>, counts: Counts
    ) throws {
        let memory = UnsafeMutablePointer<UInt64>(bitPattern: base)!
        func check(_ w: Int, _ got: UInt64, _ how: String, _ step: Int) {
            counts.loads.add(1, ordering: .relaxed)
            guard got != model[w] else { return }
            counts.failures.withLock {
                $0.append(
                    "owner \(t) step \(step): \(how) of page \(w / wordsPerPage) word \(w % wordsPerPage) read \(String(got, radix: 16)), expected \(String(model[w], radix: 16))"
                )
            }
        }
        for step in 0..<steps {
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<40:
                let w = randomWord(t, &rng)
                let v = value(t, step, w)
                model[w] = v
                memory[w] = v
                counts.stores.add(1, ordering: .relaxed)
            case 40..<70:
                let w = randomWord(t, &rng)
                check(w, memory[w], "load", step)
            case 70..<78:
                // A whole owned page: catches a store lost long ago, or a page clobbered.
                let page = randomPage(t, &rng)
                for w in (page * wordsPerPage)..<((page + 1) * wordsPerPage) { check(w, memory[w], "page load", step) }
            case 78..<86:
                let w = randomWord(t, &rng)
                let v = value(t, step, w)
                try pinning(counts) { try pinWrite(region, word: w, value: v, model: model) }
            case 86..<94:
                let w = randomWord(t, &rng)
                try pinning(counts) { check(w, try pinRead(region, word: w), "read pin", step) }
            default:
                let page = randomPage(t, &rng)
                try region.discard(pages: page..<(page + 1))
                for w in (page * wordsPerPage)..<((page + 1) * wordsPerPage) { model[w] = 0 }
                counts.discards.add(1, ordering: .relaxed)
            }
        }
    }

    /// Stores through a write pin (the engine's view of the same page). A function of its own so
    /// the pin ends here.
    static func pinWrite(_ region: TransparentRegion, word: Int, value: UInt64, model: UnsafeMutablePointer<UInt64>) throws {
        let pin = try region.pin(word / wordsPerPage, for: .write)
        model[word] = value
        pin.bytes.storeBytes(of: value, toByteOffset: (word % wordsPerPage) * 8, as: UInt64.self)
    }

    static func pinRead(_ region: TransparentRegion, word: Int) throws -> UInt64 {
        let pin = try region.pin(word / wordsPerPage, for: .read)
        return pin.bytes.load(fromByteOffset: (word % wordsPerPage) * 8, as: UInt64.self)
    }

    /// Swaps out, deactivates, prefetches and pins any pages (without changing data) until the owners are done;
    /// now and then slows device reads to widen the windows of in-flight swap-ins.
    static func disturber(
        rng: inout SeededRandom, region: TransparentRegion, backend: TestBackend, counts: Counts,
        done: () -> Bool
    ) throws {
        while !done() {
            let start = Int.random(in: 0..<pages, using: &rng)
            let range = start..<min(pages, start + Int.random(in: 1...8, using: &rng))
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<40:
                counts.swapOuts.add(try region.swapOut(pages: range), ordering: .relaxed)
            case 40..<70:
                try region.deactivate(pages: range)
                counts.deactivations.add(range.count, ordering: .relaxed)
            case 70..<80:
                let access: PageAccess = Bool.random(using: &rng) ? .read : .write
                try pinning(counts) { try pinAny(region, page: start, access: access) }
            case 80..<86:
                // Reads into the window pages of swapped pages, racing their owners' discards.
                try region.advise(.willNeed, pages: range)
                counts.prefetches.add(1, ordering: .relaxed)
            case 86..<92:
                backend.readDelayMicros.store(
                    Bool.random(using: &rng) ? 0 : Int.random(in: 50...500, using: &rng),
                    ordering: .relaxed)
            default:
                usleep(UInt32.random(in: 10...200, using: &rng))
            }
        }
    }

    /// Pins a page someone else owns: a write pin only marks it dirty; nothing is stored.
    static func pinAny(_ region: TransparentRegion, page: Int, access: PageAccess) throws {
        let pin = try region.pin(page, for: access)
        withExtendedLifetime(pin) {}
    }
}
