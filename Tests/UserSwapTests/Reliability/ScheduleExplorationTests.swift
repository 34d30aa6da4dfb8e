import Synchronization
import Testing

@testable import UserSwap

/// Forces interleavings of the swap-in, swap-out and free paths at their yield points and checks,
/// after every run, the invariants, the data, and "exactly one read per entry".
@Suite("Schedule exploration", .serialized)
struct ScheduleExplorationTests {
    final class ErrorLog: Sendable {
        private let entries = Mutex<[String]>([])
        func add(_ e: String) { entries.withLock { $0.append(e) } }
        var all: [String] { entries.withLock { $0 } }
    }

    struct Outcome {
        var runs = 0
        var failures: [String] = []
    }

    /// Explores up to `budget` interleavings of the threads `make` builds on a fresh space.
    /// Stops after `maxFailures` failing interleavings. `lag` delays the scheduler before each
    /// look at the threads, as a loaded machine does; `pausesUnderClusterLock` lets allocations
    /// pause under their cluster lock (see `ControlledScheduler`).
    static func explore(
        _ name: String, sync: SwapInSync, budget: Int, maxFailures: Int = 3, lag: Duration = .zero,
        pausesUnderClusterLock: Bool = false,
        setUp: (SwapSpace) throws -> Region,
        threads: @escaping (SwapSpace, Region, TestBackend, ErrorLog) -> [@Sendable () -> Void],
        check: (SwapSpace, Region, TestBackend) throws -> [String]
    ) throws -> Outcome {
        var explorer = ScheduleExplorer()
        var outcome = Outcome()
        while outcome.runs < budget, let log = explorer.nextRun() {
            let (space, backend) = try makeSpace(memoryPages: 16, sync: sync)
            let region = try setUp(space)
            backend.resetReads()
            let errors = ErrorLog()
            let finished = runControlled(
                threads(space, region, backend, errors), lag: lag, pausesUnderClusterLock: pausesUnderClusterLock,
                choose: log.decide)
            explorer.record(log)
            outcome.runs += 1
            var problems = errors.all
            if !finished {
                problems.append("threads hung")
            } else {
                problems += try check(space, region, backend) + space.checkInvariants()
            }
            if !problems.isEmpty {
                outcome.failures.append("run \(outcome.runs): \(problems.prefix(3))")
                if outcome.failures.count >= maxFailures { break }
            }
        }
        print("schedule exploration \(name) (\(sync)): \(outcome.runs) interleavings, \(outcome.failures.count) failing")
        return outcome
    }

    static func swappedPage(_ space: SwapSpace) throws -> Region {
        let region = try space.makeRegion(bytes: SwapPage.size)
        try region.withPage(0) { fill($0, page: 0) }
        try region.swapOut(pages: 0..<1)
        return region
    }

    static func faulter(_ region: Region, _ errors: ErrorLog, tolerateIOError: Bool = false) -> @Sendable () -> Void {
        {
            do {
                try region.withPage(0, for: .read) { bytes in
                    if !matches(bytes, page: 0) { errors.add("wrong bytes mapped") }
                }
            } catch let e as SwapError where tolerateIOError && e.code == .ioError {
            } catch {
                errors.add("unexpected error \(error)")
            }
        }
    }

    @Test("three faulters of one entry: every interleaving reads once and maps the right bytes", arguments: allProtocols)
    func threeFaulters(sync: SwapInSync) throws {
        let outcome = try Self.explore(
            "3 faulters", sync: sync, budget: 400, setUp: Self.swappedPage,
            threads: { _, region, _, errors in (0..<3).map { _ in Self.faulter(region, errors) } },
            check: { _, _, backend in backend.totalReads == 1 ? [] : ["\(backend.totalReads) reads"] })
        #expect(outcome.failures == [])
        #expect(outcome.runs >= 50)
    }

    @Test("fault against swap-out and discard of the same page: every interleaving is consistent", arguments: allProtocols)
    func faultSwapOutDiscard(sync: SwapInSync) throws {
        let outcome = try Self.explore(
            "fault/swap-out/discard", sync: sync, budget: 400,
            setUp: { space in
                let region = try space.makeRegion(bytes: SwapPage.size)
                try region.withPage(0) { fill($0, page: 0) }
                return region
            },
            threads: { _, region, _, errors in
                [
                    {
                        do {
                            try region.withPage(0, for: .read) { bytes in
                                if !matches(bytes, page: 0) && !bytes.allSatisfy({ $0 == 0 }) {
                                    errors.add("wrong bytes mapped")
                                }
                            }
                        } catch { errors.add("unexpected error \(error)") }
                    },
                    { _ = try? region.swapOut(pages: 0..<1) },
                    { try? region.discard(pages: 0..<1) },
                ]
            },
            check: { space, region, _ in
                try region.discard(pages: 0..<1)
                return space.devices[0].usedPages == 0 && space.residentFrames == 0 ? [] : ["leaked slots or frames"]
            })
        #expect(outcome.failures == [])
        #expect(outcome.runs >= 50)
    }

    /// A first touch maps its new folio and only then puts it on the LRU; a discard in between
    /// frees it, and another first touch may get the same frame. The LRU add must not act on a
    /// folio the faulter no longer holds (it crashed: "already on an LRU list").
    @Test("first touch against discard and another first touch: the new folio is never freed before it is on the LRU")
    func firstTouchDiscard() throws {
        let outcome = try Self.explore(
            "first touch/discard", sync: .swapCache, budget: 300,
            setUp: { space in try space.makeRegion(bytes: 2 * SwapPage.size) },
            threads: { _, region, _, errors in
                [
                    { do { _ = try region.withPage(0, for: .write) { _ in } } catch { errors.add("unexpected error \(error)") } },
                    { try? region.discard(pages: 0..<1) },
                    { do { _ = try region.withPage(1, for: .write) { _ in } } catch { errors.add("unexpected error \(error)") } },
                ]
            },
            check: { space, region, _ in
                try region.discard(pages: 0..<2)
                return space.residentFrames == 0 ? [] : ["\(space.residentFrames) frames leaked"]
            })
        #expect(outcome.failures == [])
        #expect(outcome.runs >= 20)
    }

    @Test("a failed read: racers get an error or the right bytes, never the failed folio", arguments: allProtocols)
    func readErrorRace(sync: SwapInSync) throws {
        let outcome = try Self.explore(
            "read error", sync: sync, budget: 300,
            setUp: { space in
                let region = try Self.swappedPage(space)
                (space.devices[0].backend as! TestBackend).failReads.store(1, ordering: .relaxed)
                return region
            },
            threads: { _, region, _, errors in (0..<2).map { _ in Self.faulter(region, errors, tolerateIOError: true) } },
            check: { _, region, _ in
                var problems: [String] = []
                try region.withPage(0, for: .read) { if !matches($0, page: 0) { problems.append("data lost") } }
                return problems
            })
        #expect(outcome.failures == [])
    }

    /// Under the swap-cache protocol a racer can find a folio whose read then fails and which
    /// leaves the cache while the racer sleeps on its lock: exactly what the re-check is for.
    /// (The legacy bypass protocols insert only read folios, so this bug cannot show there.)
    @Test("the planted bug — no re-check after the folio lock — is caught")
    func plantedBugIsCaught() throws {
        let sync = SwapInSync.swapCache
        let outcome = try Self.explore(
            "planted bug", sync: sync, budget: 300,
            setUp: { space in
                space.engine.testHooks.skipRecheckAfterLock.store(true, ordering: .relaxed)
                let region = try Self.swappedPage(space)
                (space.devices[0].backend as! TestBackend).failReads.store(1, ordering: .relaxed)
                return region
            },
            threads: { _, region, _, errors in (0..<2).map { _ in Self.faulter(region, errors, tolerateIOError: true) } },
            check: { _, _, _ in [] })
        #expect(!outcome.failures.isEmpty, "the explorer missed the planted bug in \(outcome.runs) interleavings")
        print("planted bug (\(sync)) caught: \(outcome.failures.first ?? "-")")
    }

    /// Under the legacy bypass protocols the has-cache bit makes the read exclusive: a racer
    /// that finds it taken sleeps and looks again. The planted bug
    /// (`TestHooks.legacyLoserReads`) has that racer read the entry too before it backs off; it
    /// shows only when the second faulter arrives while the first holds the bit and has not
    /// inserted its folio yet. Its clean twin, the same exploration, finds nothing.
    @Test(
        "the planted legacy bug — a racer that reads although the has-cache bit is taken — is caught, and only with the plant",
        arguments: [false, true])
    func plantedLegacyDoubleRead(planted: Bool) throws {
        let sync = bothProtocols[1]
        // Runs in which a racer found the bit taken and no folio: the window the plant needs.
        var windowRuns = 0
        let outcome = try Self.explore(
            "legacy double read\(planted ? " (planted)" : "")", sync: sync, budget: 300, maxFailures: 1,
            setUp: { space in
                space.engine.testHooks.legacyLoserReads.store(planted, ordering: .relaxed)
                return try Self.swappedPage(space)
            },
            threads: { _, region, _, errors in (0..<2).map { _ in Self.faulter(region, errors) } },
            check: { space, _, backend in
                if space.statistics[.legacySleeps] > 0 { windowRuns += 1 }
                return backend.totalReads == 1 ? [] : ["\(backend.totalReads) device reads of one entry"]
            })
        if planted {
            #expect(!outcome.failures.isEmpty, "the explorer missed the planted legacy bug in \(outcome.runs) interleavings")
            #expect(outcome.failures.allSatisfy { $0.contains("2 device reads of one entry") }, "\(outcome.failures)")
            print("planted legacy bug (\(sync)) caught after \(outcome.runs) interleavings: \(outcome.failures.first ?? "-")")
        } else {
            #expect(outcome.failures == [])
            #expect(outcome.runs >= 5)
            #expect(windowRuns > 0, "no run reached the window in which the plant shows")
            print("legacy clean twin: \(windowRuns) of \(outcome.runs) interleavings had a racer find the bit taken")
        }
    }
}
