import Foundation
import Synchronization
import Testing
import UserSwapCompression
import UserSwapTestSupport

@testable import UserSwap

/// Model-based random testing: seeded random sequences of region operations (create, destroy,
/// write, read, pins held across steps, explicit swap-out, discard, group limit changes, and plain
/// loads and stores of a transparent region) against a real space whose small RAM budget makes reclaim run on its own, checked step by step against a
/// reference model (`SpaceModel.swift`), with the invariant walker every few hundred steps and at
/// the end. A failing sequence is shrunk (delta debugging) and printed.
///
/// Environment: `USERSWAP_SEED` replays a seed (printed by every case); `USERSWAP_MODEL_OPS` sets
/// the total steps over all cases (default 10⁶); `USERSWAP_MODEL_THREADS` runs that many models
/// at once on one space per case (default 1: deterministic, strict); `USERSWAP_SHRINK_SECONDS`
/// bounds shrinking (default 60); `USERSWAP_MODEL_CASES=<text>` runs only the cases whose name
/// contains the text, the steps split over those. `make soak` runs 10⁷ steps on 4 threads.
@Suite("Model-based random operations")
struct ModelTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let sync: SwapInSync
        let index: Int
        /// The device's I/O engine; the thread pool runs every transfer on its workers.
        var io: IOEngineChoice = .automatic
        var device: ModelDevice = .memory
        var policy: ReclaimPolicy = .frequency
        var folioPages = 1
        /// A transparent region beside the explicit ones, served so.
        var transparent: TransparentRegion.FaultService?
        var swapLimits = true
        var testDescription: String {
            "\(sync) #\(index)\(io == .automatic ? "" : " \(io.rawValue)")\(device == .memory ? "" : " \(device.rawValue)")"
                + (policy == .frequency ? "" : " \(policy)") + (folioPages == 1 ? "" : " \(folioPages * 4) KiB folios")
                + (transparent.map { " transparent (\($0 == .faultingThread ? "faulting thread" : "handler threads"))" } ?? "")
                + (swapLimits ? "" : " no swap limits")
        }
        var setup: ModelSetup {
            ModelSetup(io: io, device: device, policy: policy, folioPages: folioPages, transparent: transparent, swapLimits: swapLimits)
        }
    }

    /// Every protocol, on every kind of device and under every reclaim policy, at least once.
    static let cases = [
        Case(sync: .swapCache, index: 0), Case(sync: bothProtocols[1], index: 0),
        Case(sync: .swapCache, index: 1), Case(sync: bothProtocols[1], index: 1),
        Case(sync: .swapCache, index: 2, io: .threadPool),
        Case(sync: .swapCache, index: 3, io: .ioUring, device: .file, policy: .workingset),
        Case(sync: allProtocols[3], index: 4, io: .threadPool, device: .sealedFile, policy: .activeInactive),
        Case(sync: .swapCache, index: 5, device: .compressed, policy: .secondChance),
        Case(sync: allProtocols[2], index: 6, device: .compressed, policy: .workingset),
        Case(sync: .swapCache, index: 7, device: .faulty),
        Case(sync: bothProtocols[1], index: 8, device: .faulty, policy: .activeInactive),
        Case(sync: .swapCache, index: 9, folioPages: 4),
        Case(sync: bothProtocols[1], index: 10, io: .ioUring, device: .file, policy: .workingset, folioPages: 16),
        // A transparent region beside the explicit ones, served by each fault service. No
        // fault-injecting device: a fault that fails is SIGBUS (see `SpaceModelRun.apply`).
        Case(sync: .swapCache, index: 11, transparent: .faultingThread),
        Case(sync: bothProtocols[1], index: 12, io: .ioUring, device: .file, policy: .workingset, transparent: .handlerThreads(2)),
    ]

    /// The device, engine and policy of the spaces the current case makes.
    @TaskLocal static var setup = ModelSetup()

    /// Whether `USERSWAP_MODEL_CASES` (if set) selects the case: its name contains the text.
    static func selected(_ c: Case) -> Bool {
        ProcessInfo.processInfo.environment["USERSWAP_MODEL_CASES"].map { c.testDescription.contains($0) } ?? true
    }

    /// Steps between invariant walks.
    static let invariantEvery = 500

    static func environment(_ name: String, default value: Int) -> Int {
        ProcessInfo.processInfo.environment[name].flatMap { Int($0) } ?? value
    }

    @Test("random operations on a space match a reference model step by step", arguments: cases)
    func model(_ c: Case) throws {
        guard Self.selected(c) else { return }
        try Self.$setup.withValue(c.setup) { try modelCase(c) }
    }

    private func modelCase(_ c: Case) throws {
        let total = Self.environment("USERSWAP_MODEL_OPS", default: 1_000_000)
        let threads = max(1, Self.environment("USERSWAP_MODEL_THREADS", default: 1))
        let steps = max(1, total / Self.cases.filter(Self.selected).count)
        var rng = SeededRandom.fromEnvironment("model \(c.testDescription), \(steps) steps, \(threads) thread(s)")
        let start = ContinuousClock.now
        if threads == 1 {
            let opsSeed = rng.next()
            let outcome = Self.run(Self.ops(seed: opsSeed, count: steps, transparent: c.transparent != nil), sync: c.sync)
            if let failure = outcome.failure {
                Self.report(
                    failure, seed: rng.seed, sync: c.sync,
                    ops: Array(Self.ops(seed: opsSeed, count: failure.step + 1, transparent: c.transparent != nil)))
            }
            print("model \(c.testDescription): \(outcome.steps) steps in \(ContinuousClock.now - start); \(outcome.summary)")
            if outcome.failure == nil {
                Self.expectVerified(
                    outcome.verified, unexplainedOutOfMemory: outcome.unexplainedOutOfMemory, steps: outcome.steps, seed: rng.seed)
            }
        } else {
            Self.concurrentCase(c.testDescription, sync: c.sync, steps: steps, threads: threads, rng: &rng)
        }
    }

    /// Several models, one per thread, on one space with the background reclaimer on: every
    /// read is still compared with the reading run's own model, and out-of-memory errors are
    /// excused only where the pins and limits of the runs explain them (`SpaceModelRun`,
    /// `PinTally`). In all
    /// `USERSWAP_MODEL_CONCURRENT_OPS` steps (default 2·10⁵, split over the cases) on
    /// `USERSWAP_MODEL_CONCURRENT_THREADS` threads (default 4).
    @Test(
        "several models at once on one space with its background reclaimer match their reference models",
        arguments: concurrentCases)
    func concurrentModels(_ c: Case) throws {
        guard Self.selected(c) else { return }
        let total = Self.environment("USERSWAP_MODEL_CONCURRENT_OPS", default: 200_000)
        let threads = max(2, Self.environment("USERSWAP_MODEL_CONCURRENT_THREADS", default: 4))
        let steps = max(threads, total / Self.concurrentCases.filter(Self.selected).count)
        var rng = SeededRandom.fromEnvironment("concurrent models \(c.testDescription), \(steps) steps, \(threads) threads")
        Self.$setup.withValue(c.setup) {
            Self.concurrentCase("\(c.testDescription) concurrent", sync: c.sync, steps: steps, threads: threads, rng: &rng)
        }
    }

    /// The concurrent cases: both protocols on memory, a file on io_uring, a faulty device,
    /// 32 KiB folios (split while other threads' reclaim looks at them), and a transparent
    /// region the runs share, each storing to and loading its own pages while the others swap
    /// out, prefetch and deactivate any of them (without swap limits, so that no run's state
    /// can leave a fault without memory: see `SpaceModelRun.apply`).
    static let concurrentCases = [
        Case(sync: .swapCache, index: 0), Case(sync: bothProtocols[1], index: 0),
        Case(sync: .swapCache, index: 1, io: .ioUring, device: .file, policy: .workingset),
        Case(sync: allProtocols[3], index: 2, device: .faulty),
        Case(sync: bothProtocols[1], index: 3, folioPages: 8),
        Case(sync: .swapCache, index: 4, transparent: .faultingThread, swapLimits: false),
    ]

    /// Runs `steps` steps in all on `threads` models at once and records what fails.
    static func concurrentCase(_ name: String, sync: SwapInSync, steps: Int, threads: Int, rng: inout SeededRandom) {
        let start = ContinuousClock.now
        let seeds = (0..<threads).map { _ in rng.next() }
        let outcome = runConcurrently(seeds: seeds, steps: steps / threads, sync: sync)
        if let (thread, failure) = outcome.failure {
            Issue.record(
                "model \(name), thread \(thread) of \(threads), seed \(rng.seed) (replay with USERSWAP_SEED=\(rng.seed)): \(failure)")
            // Try the thread's steps alone: if they fail there too, shrink them.
            let ops = Array(Self.ops(seed: seeds[thread], count: failure.step + 1, transparent: setup.transparent != nil))
            if let alone = run(ops, sync: sync).failure {
                report(alone, seed: rng.seed, sync: sync, ops: ops)
            } else {
                print("model \(name): thread \(thread)'s \(ops.count) steps pass when run alone: the failure needs the other threads")
            }
        } else {
            expectVerified(outcome.verified, unexplainedOutOfMemory: outcome.unexplainedOutOfMemory, steps: outcome.steps, seed: rng.seed)
        }
        print("model \(name): \(outcome.steps) steps on \(threads) threads in \(ContinuousClock.now - start); \(outcome.summary)")
    }

    /// Unexplained out-of-memory errors at most this share of the steps: none. Each would skip
    /// a comparison on the strength of a swap limit that may have held pages a moment before
    /// the run looked (`SpaceModelRun.concurrentOutOfMemoryJustified`); with every run's pins
    /// and the pages of every group at its swap limit counted (`PinTally`), the concurrent
    /// cases meet none, where they met up to 79 in 20,000 steps when a run saw only its own.
    static let maxOutOfMemoryShare = 0.0

    /// A run that passed compared enough pages: at least one per two steps (runs verify about
    /// 1.6 per step), and skipped none because of out-of-memory errors the runs' state does
    /// not explain. (Errors pins or swap limits explain are what the model expects: a seed
    /// that pins a small group full meets hundreds of them, and each is checked.)
    static func expectVerified(_ verified: Int, unexplainedOutOfMemory: Int, steps: Int, seed: UInt64) {
        #expect(verified >= steps / 2, "only \(verified) pages verified in \(steps) steps (seed \(seed))")
        #expect(
            Double(unexplainedOutOfMemory) <= maxOutOfMemoryShare * Double(steps),
            "\(unexplainedOutOfMemory) out-of-memory errors that the pins and limits of the runs do not explain in \(steps) steps (seed \(seed)): more than \(maxOutOfMemoryShare * 100) %"
        )
    }

    @Test("a model that forgets discards is caught, and its failing run shrinks to a few steps")
    func shrinkingWorks() throws {
        var rng = SeededRandom.fromEnvironment("model sabotage")
        // Steps the honest model passes (up to an engine bug, if the steps meet one), without
        // group limits, so that the sabotage is what fails.
        var ops = Array(Self.ops(seed: rng.next(), count: 20_000)).filter {
            switch $0 {
            case .memoryLimit, .swapLimit: false
            default: true
            }
        }
        if let honest = Self.run(ops, sync: .swapCache).failure {
            // An engine bug, not the sabotage: report it (with the seed) rather than testing
            // the shrinker on the steps before it.
            Issue.record("the honest model fails, seed \(rng.seed): \(honest)")
            ops = Array(ops[..<honest.step])
        }
        guard let failure = Self.run(ops, sync: .swapCache, sabotage: true).failure, failure.kind == .wrongBytes else {
            Issue.record("a model that forgets discards went unnoticed for \(ops.count) steps")
            return
        }
        let short = Self.shrink(
            Array(ops[...failure.step]), kind: failure.kind, sync: .swapCache, sabotage: true,
            budget: .seconds(30))
        #expect(Self.run(short, sync: .swapCache, sabotage: true).failure != nil)
        #expect(Self.run(short, sync: .swapCache).failure == nil, "the honest model passes the same steps")
        #expect(short.count <= 6, "\(short)")
        print("sabotaged model: failed at step \(failure.step) (\(failure.kind)); shrunk to \(short.count) steps: \(short)")
    }

    @Test(
        "a model that forgets discards of transparent pages is caught by a plain load",
        arguments: [TransparentRegion.FaultService.faultingThread, .handlerThreads(2)])
    func transparentSabotageCaught(_ service: TransparentRegion.FaultService) {
        var rng = SeededRandom.fromEnvironment("transparent model sabotage")
        // Transparent steps only, so that the check that fails is one of theirs.
        let ops = Array(Self.ops(seed: rng.next(), count: 6_000, transparent: true)).filter {
            if case .transparent = $0 { true } else { false }
        }
        Self.$setup.withValue(ModelSetup(transparent: service)) {
            if let honest = Self.run(ops, sync: .swapCache).failure {
                Issue.record("the honest model fails, seed \(rng.seed): \(honest)")
                return
            }
            let failure = Self.run(ops, sync: .swapCache, sabotage: true).failure
            #expect(
                failure?.kind == .wrongBytes && failure?.message.contains("transparent") == true,
                "a model that forgets transparent discards: \(failure.map(String.init(describing:)) ?? "not caught in \(ops.count) steps")")
            print("transparent sabotage (\(service)): \(failure.map(String.init(describing:)) ?? "not caught")")
        }
    }

    /// With 32 KiB folios a pin of one page holds eight frames: four runs holding four pins
    /// each could hold 128 frames of a budget of 88. A run whose own pins are few then meets
    /// out-of-memory errors that only the other runs' pins explain; the oracle sees them
    /// through the runs' `PinTally` (without it, a run failed with "out of memory ... with only
    /// 0 frames pinned by this run" while the others' pins held every frame).
    @Test("out of memory while the other runs' pins hold the budget is explained")
    func othersPinsFillTheBudget() throws {
        let runs = 4
        try Self.$setup.withValue(ModelSetup(folioPages: 8)) {
            let space = try Self.makeSpace(sync: .swapCache, models: runs)
            let shared = try SpaceModelRun.makeShared(space)
            let tally = PinTally(runs: runs)
            let models = try (0..<runs).map { t in
                try SpaceModelRun(
                    space: space, shared: shared, name: "t\(t)/", strict: false, folioSize: 8 * SwapPage.size,
                    pinTally: (tally, t))
            }
            var step = 0
            for model in models {
                try model.apply(.create(slot: 0, pages: 48, group: 0), step: step)
                step += 1
                for folio in 0..<ModelOp.maxPins {
                    // A failure here is an out-of-memory error the oracle did not explain.
                    try model.apply(.pin(slot: 0, page: 8 * folio, write: true), step: step)
                    step += 1
                }
            }
            let pinned = models.reduce(0) { $0 + $1.pins.count }
            let failed = models.reduce(0) { $0 + $1.outOfMemory }
            #expect(failed > 0 && pinned < runs * ModelOp.maxPins, "\(pinned) pins held, \(failed) out-of-memory errors")
            #expect(models.allSatisfy { $0.unexplainedOutOfMemory == 0 })
            // Every pin goes before any run reads its pages back: with the budget pinned full,
            // each read would wait for reclaimers in vain before its error.
            for model in models {
                while !model.pins.isEmpty { try model.apply(.unpin(index: 0), step: step) }
            }
            for model in models { try model.finish(step: step) }
            withExtendedLifetime(shared) {}
        }
    }

    /// Found by this model (seed 1251226042411859032, shrunk from 1733 steps): a group at its
    /// limit with its four pinned pages on the inactive list and four unpinned, unreferenced
    /// pages on the active list fails an allocation with out-of-memory. `shrink(_:target:)` ages
    /// the active list only when the inactive list is low (`inactiveIsLow`) or empty, so it
    /// rescans the pinned folios until its patience runs out, frees nothing, and gives up.
    @Test("a group whose inactive list is all pinned still reclaims its active pages", arguments: bothProtocols)
    func activeListNotAged(sync: SwapInSync) {
        let ops: [ModelOp] = [
            .create(slot: 2, pages: 27, group: 3),
            .memoryLimit(group: 3, pages: 8),
            .create(slot: 1, pages: 12, group: 3),
            .pin(slot: 1, page: 10, write: false),
            .pin(slot: 2, page: 21, write: true),
            .pin(slot: 1, page: 3, write: false),
            .create(slot: 0, pages: 34, group: 3),
            .pin(slot: 0, page: 33, write: true),
            .verify(slot: 1),
        ]
        // Fixed: a reclaim pass that frees nothing from the inactive list ages the active list.
        let outcome = Self.run(ops, sync: sync)
        #expect(outcome.failure == nil, "\(outcome.failure.map(String.init(describing:)) ?? "") \(outcome.summary)")
    }

    /// Found by this model (shrunk from 1442 steps): under the swap-cache protocol, readahead
    /// inserts locked folios for the pages after a fault and reads them at the end of each run
    /// of consecutive slots; when an allocation for the next page fails (its group is at its
    /// limit), the error leaves `readIntoCache` before the pending run is read or unlocked. The
    /// error is swallowed (readahead is best effort), the folios stay locked and charged for
    /// good: the group's next allocation is out of memory, and an access to one of those pages
    /// waits on its folio lock forever. (The legacy protocol reads each folio before inserting
    /// it, so it has no pending run.)
    @Test("readahead that meets a group limit leaves no folio locked")
    func readaheadLeavesFoliosLocked() {
        let ops: [ModelOp] = [
            .create(slot: 0, pages: 44, group: 3),
            .verify(slot: 0),
            .verify(slot: 0),
            .memoryLimit(group: 3, pages: 8),
            .write(slot: 0, page: 21),
        ]
        // Fixed: readahead reads and unlocks its pending run when an allocation fails.
        let outcome = Self.run(ops, sync: .swapCache)
        #expect(outcome.failure == nil, "\(outcome.failure.map(String.init(describing:)) ?? "")")
    }

    // MARK: Running

    /// The steps of a run, generated from `seed` (with steps on a transparent region or not).
    static func ops(seed: UInt64, count: Int, transparent: Bool = false) -> some Sequence<ModelOp> {
        var rng = SeededRandom(seed: seed)
        return (0..<count).lazy.map { _ in ModelOp.random(&rng, transparent: transparent) }
    }

    struct Outcome {
        var failure: ModelFailure?
        var steps = 0
        var verified = 0
        var outOfMemory = 0
        var unexplainedOutOfMemory = 0
        var summary = ""
    }

    /// A space for `models` models at once: a small budget so that reclaim runs all the time.
    /// One model runs without the background reclaimer, so that a seed replays exactly; several
    /// run with it.
    static func makeSpace(sync: SwapInSync, models: Int) throws -> SwapSpace {
        let frames = 24 + 16 * models
        let devicePages = 1 + 512 * max(2, models)
        let bytes = devicePages * SwapPage.size
        let device: SwapSpace.DeviceConfiguration
        var encryption = SwapSpace.Encryption.randomKey
        switch setup.device {
        case .memory:
            device = .memory(bytes: bytes)
        case .file:
            device = .temporary(size: Int64(bytes))
            encryption = .none
        case .sealedFile:
            device = .temporary(size: Int64(bytes))
        case .compressed:
            // A pool of 16 pages' worth: most stores meet a full pool and write an entry back.
            device = .backend(try CompressedTier(lower: MemoryBackend(pageCount: devicePages), poolBytes: 16 * SwapPage.size))
            encryption = .none
        case .faulty:
            let faults = FaultInjectingBackend(MemoryBackend(pageCount: devicePages), seed: 0x5eed)
            faults.inject(.ioError, on: .read, when: .probability(0.01))
            faults.inject(.short(), on: .read, when: .probability(0.005))
            faults.inject(.ioError, on: .write, when: .probability(0.01))
            faults.inject(.noSpace, on: .write, when: .probability(0.01))
            faults.inject(.short(), on: .write, when: .probability(0.01))
            device = .backend(faults)
            encryption = .none
        }
        return try SwapSpace(
            .init(
                memory: frames * SwapPage.size, devices: [device], sync: sync, reclaimPolicy: setup.policy,
                backgroundReclaim: models > 1, encryption: encryption, ioEngine: setup.io,
                ioOptions: IOEngineOptions(readsInCaller: setup.io != .threadPool)))
    }

    /// Runs `ops` on a fresh space with one strict model, checking invariants every
    /// `invariantEvery` steps; at the end reads every page back, drops everything and checks
    /// that nothing leaked. Deterministic: the same ops fail the same way.
    static func run(_ ops: some Sequence<ModelOp>, sync: SwapInSync, sabotage: Bool = false) -> Outcome {
        var outcome = Outcome()
        let space: SwapSpace
        var shared: Region?
        let model: SpaceModelRun
        do {
            space = try makeSpace(sync: sync, models: 1)
            shared = try SpaceModelRun.makeShared(space)
            model = try SpaceModelRun(
                space: space, shared: shared!, name: "", strict: true, forgetDiscards: sabotage,
                folioSize: setup.folioPages * SwapPage.size, transparent: setup.transparent.map { TransparentSetup.own($0) },
                swapLimits: setup.swapLimits)
        } catch {
            outcome.failure = ModelFailure(kind: .unexpectedError, step: 0, message: "setup: \(error)")
            return outcome
        }
        var step = 0
        do throws(ModelFailure) {
            for op in ops {
                try model.apply(op, step: step)
                step += 1
                if step % invariantEvery == 0 { try checkInvariants(space, step: step - 1) }
            }
            outcome.steps = step
            try model.finish(step: max(0, step - 1))
            shared = nil
            try checkEmpty(space, model.groups, step: max(0, step - 1))
        } catch {
            outcome.failure = error
            outcome.steps = step
        }
        let s = space.statistics
        outcome.verified = model.verifiedPages
        if let faults = model.faults, outcome.failure == nil {
            #expect(faults.injectedTotal > 0 && model.injectedErrors > 0, "a faulty device injected nothing the model saw")
        }
        outcome.outOfMemory = model.outOfMemory
        outcome.unexplainedOutOfMemory = model.unexplainedOutOfMemory
        outcome.summary =
            "\(model.verifiedPages) pages verified, \(s[.swapIns]) swap-ins, \(s[.swapOuts]) pages written, \(s[.evictions]) evictions (\(s[.cleanDrops]) clean), \(s[.directReclaims]) direct reclaims, \(model.outOfMemory) allowed out-of-memory, \(model.swapFull) allowed swap-full, \(model.deviceToggles) swapons/swapoffs"
            + (model.faults.map { ", \(model.injectedErrors) accesses failed by \($0.injectedTotal) injected faults" } ?? "")
            + (setup.transparent == nil
                ? ""
                : ", \(model.transparentTouches) plain loads and stores (\(model.transparentSkipped) held back for memory), \(s[.majorFaults]) major, \(s[.minorFaults]) minor and \(s[.writeProtectFaults]) write-protect faults, \(s[.faultRetries]) retried, \(s[.lateFaults]) late messages answered with a wake")
        return outcome
    }

    /// Several models, one per thread, on one space with its background reclaimer, in phases of
    /// `invariantEvery` steps with the invariant walk between phases (the walker wants a quiet
    /// space; it pauses the reclaimer itself). Checks that assume the model is alone are off.
    static func runConcurrently(seeds: [UInt64], steps: Int, sync: SwapInSync) -> ConcurrentOutcome {
        let threads = seeds.count
        let space: SwapSpace
        var shared: Region?
        // The transparent region the runs share, if the case has one: each run owns every
        // `threads`-th page of it.
        var sharedTransparent: TransparentRegion?
        let models: [SpaceModelRun]
        let tally = PinTally(runs: threads)
        do {
            space = try makeSpace(sync: sync, models: threads)
            shared = try SpaceModelRun.makeShared(space)
            if let service = setup.transparent {
                sharedTransparent = try space.makeTransparentRegion(bytes: threads * 16 * SwapPage.size, faults: service)
            }
            models = try (0..<threads).map { t in
                try SpaceModelRun(
                    space: space, shared: shared!, name: "t\(t)/", strict: false, folioSize: setup.folioPages * SwapPage.size,
                    transparent: sharedTransparent.map { TransparentSetup.shared($0, index: t, runs: threads) },
                    swapLimits: setup.swapLimits, pinTally: (tally, t))
            }
        } catch {
            return ConcurrentOutcome(failure: (0, ModelFailure(kind: .unexpectedError, step: 0, message: "setup: \(error)")))
        }
        let generators = Generators(seeds: seeds, transparent: setup.transparent != nil)
        let failures = Mutex<[(Int, ModelFailure)]>([])
        let boxed = UncheckedBox(models)
        var done = 0
        let watchdog = Watchdog(limit: .seconds(300))
        while done < steps && failures.withLock({ $0.isEmpty }) {
            let phase = min(invariantEvery, steps - done)
            let base = done
            watchdog.arm("steps \(base)..<\(base + phase) of \(threads) models, seeds \(seeds)")
            runThreads(threads) { t in
                let model = boxed.value[t]
                do throws(ModelFailure) {
                    for k in 0..<phase { try model.apply(generators.next(t), step: base + k) }
                } catch {
                    failures.withLock { $0.append((t, error)) }
                }
            }
            watchdog.disarm()
            done += phase
            if failures.withLock({ $0.isEmpty }) {
                // Readahead that faults on the faulting thread handed off may still run: it
                // holds its folios locked until their reads are in, as any read in flight.
                for model in models {
                    if let t = model.transparent, t.region.faultService == .faultingThread { t.region.resolver.waitForReadahead() }
                }
                // Quiet now but for the background reclaimer, which is paused for the look: a
                // folio still locked is leaked.
                let leaked: ModelFailure? = space.engine.reclaimer.kswapd.withLock({ $0 })!.paused {
                    do throws(ModelFailure) {
                        try models[0].checkNoLockedFolio(done - 1)
                        return nil
                    } catch { return error }
                }
                do throws(ModelFailure) {
                    if let leaked { throw leaked }
                    try checkInvariants(space, step: done - 1)
                } catch {
                    failures.withLock { $0.append((0, error)) }
                }
            }
        }
        watchdog.stop()
        if failures.withLock({ $0.isEmpty }) {
            do throws(ModelFailure) {
                for m in models { try m.finish(step: done - 1) }
                shared = nil
                sharedTransparent = nil
                try checkEmpty(space, models.flatMap { $0.groups }, step: done - 1)
            } catch {
                failures.withLock { $0.append((0, error)) }
            }
        }
        let s = space.statistics
        let verified = models.reduce(0) { $0 + $1.verifiedPages }
        let oom = models.reduce(0) { $0 + $1.outOfMemory }
        let unexplained = models.reduce(0) { $0 + $1.unexplainedOutOfMemory }
        let swapFull = models.reduce(0) { $0 + $1.swapFull }
        let summary =
            "\(verified) pages verified, \(s[.swapIns]) swap-ins, \(s[.swapOuts]) pages written, \(s[.evictions]) evictions, \(s[.directReclaims]) direct reclaims, \(s[.kswapdWakeups]) background reclaimer wake-ups, \(s[.raceLosses]) lost insert races, \(oom) allowed out-of-memory (\(unexplained) not explained by the pins and limits of the runs), \(swapFull) allowed swap-full, \(models.reduce(0) { $0 + $1.deviceToggles }) swapons/swapoffs"
            + (models[0].faults.map {
                ", \(models.reduce(0) { $0 + $1.injectedErrors }) accesses failed by \($0.injectedTotal) injected faults"
            } ?? "")
            + (setup.transparent == nil
                ? ""
                : ", \(models.reduce(0) { $0 + $1.transparentTouches }) plain loads and stores (\(models.reduce(0) { $0 + $1.transparentSkipped }) held back for memory), \(s[.majorFaults]) major, \(s[.minorFaults]) minor and \(s[.writeProtectFaults]) write-protect faults, \(s[.faultRetries]) retried, \(s[.lateFaults]) late messages answered with a wake")
        return ConcurrentOutcome(
            failure: failures.withLock { $0.first }, steps: done * threads, verified: verified, outOfMemory: oom,
            unexplainedOutOfMemory: unexplained, summary: summary)
    }

    struct ConcurrentOutcome {
        var failure: (Int, ModelFailure)?
        var steps = 0
        var verified = 0
        var outOfMemory = 0
        var unexplainedOutOfMemory = 0
        var summary = ""
    }

    static func checkInvariants(_ space: SwapSpace, step: Int) throws(ModelFailure) {
        let problems = space.checkInvariants()
        if !problems.isEmpty {
            throw ModelFailure(kind: .invariants, step: step, message: problems.prefix(5).joined(separator: "; "))
        }
    }

    /// Once every region and pin is gone, nothing is left: no frame, no slot, no charge.
    static func checkEmpty(_ space: SwapSpace, _ groups: [MemoryGroup], step: Int) throws(ModelFailure) {
        try checkInvariants(space, step: step)
        var left: [String] = []
        if space.residentFrames != 0 { left.append("\(space.residentFrames) frames in use") }
        for d in space.devices where d.usedPages != 0 { left.append("\(d.usedPages) slots in use on device \(d.type)") }
        for g in groups where g.memoryUsage != 0 || g.swapUsage != 0 {
            left.append("group \(g.name) charged \(g.memoryUsage) B memory, \(g.swapUsage) B swap")
        }
        if !left.isEmpty {
            throw ModelFailure(kind: .leak, step: step, message: "after dropping everything: " + left.joined(separator: ", "))
        }
    }

    // MARK: Shrinking

    /// Delta debugging (Zeller's ddmin, complements only): removes chunks of steps while the run
    /// still fails the same way, halving the chunk size when no chunk can go, and cuts each
    /// failing candidate after the step that failed. Stops at `budget`.
    static func shrink(
        _ ops: [ModelOp], kind: ModelFailure.Kind, sync: SwapInSync, sabotage: Bool = false,
        budget: Duration
    ) -> [ModelOp] {
        let deadline = ContinuousClock.now + budget
        var current = ops
        var n = 2
        func failing(_ candidate: [ModelOp]) -> [ModelOp]? {
            guard let f = run(candidate, sync: sync, sabotage: sabotage).failure, f.kind == kind else { return nil }
            return Array(candidate[...min(f.step, candidate.count - 1)])
        }
        while current.count > 1 && ContinuousClock.now < deadline {
            let chunk = (current.count + n - 1) / n
            var reduced = false
            for start in stride(from: 0, to: current.count, by: chunk) where ContinuousClock.now < deadline {
                var candidate = current
                candidate.removeSubrange(start..<min(start + chunk, current.count))
                if let shorter = failing(candidate) {
                    current = shorter
                    n = max(n - 1, 2)
                    reduced = true
                    break
                }
            }
            if !reduced {
                if chunk == 1 { break }
                n = min(2 * n, current.count)
            }
        }
        return current
    }

    /// Records the failure, shrinks its steps and prints the short sequence as Swift.
    static func report(_ failure: ModelFailure, seed: UInt64, sync: SwapInSync, ops: [ModelOp]) {
        let budget = Duration.seconds(environment("USERSWAP_SHRINK_SECONDS", default: 60))
        let short = shrink(ops, kind: failure.kind, sync: sync, budget: budget)
        let again = run(short, sync: sync).failure
        let listing = short.map { "    .\($0)," }.joined(separator: "\n")
        Issue.record(
            """
            model (\(sync)) failed with seed \(seed) (replay with USERSWAP_SEED=\(seed)): \(failure)
            shrunk from \(ops.count) to \(short.count) steps, which fail with: \(again.map(String.init(describing:)) ?? "nothing (flaky)")
            [
            \(listing)
            ]
            """)
    }
}

/// Ends the process with a message when a phase of a concurrent run takes far too long: a leaked
/// folio lock or a lost wake-up would otherwise hang the test run silently.
final class Watchdog: Sendable {
    private let limit: Duration
    private let deadline = Mutex<(ContinuousClock.Instant, String)?>(nil)
    private let stopped = Atomic<Bool>(false)

    init(limit: Duration) {
        self.limit = limit
        // The thread holds the watchdog until `stop()`.
        let thread = Thread { [self] in
            while !stopped.load(ordering: .acquiring) {
                sleep(1)
                if let (instant, what) = deadline.withLock({ $0 }), ContinuousClock.now > instant {
                    fatalError("model run stuck for \(limit) during \(what): a folio lock or wake-up was lost")
                }
            }
        }
        thread.start()
    }

    func arm(_ what: String) { deadline.withLock { $0 = (ContinuousClock.now + limit, what) } }
    func disarm() { deadline.withLock { $0 = nil } }
    /// Lets the watchdog's thread end (within a second).
    func stop() { stopped.store(true, ordering: .releasing) }
}

/// Per-thread step generators for the concurrent runs: one object per thread, so no thread
/// writes memory another one touches.
final class Generators: Sendable {
    private final class Source: @unchecked Sendable {
        var rng: SeededRandom
        init(_ seed: UInt64) { rng = SeededRandom(seed: seed) }
    }
    private let sources: [Source]
    private let transparent: Bool
    init(seeds: [UInt64], transparent: Bool) {
        sources = seeds.map(Source.init)
        self.transparent = transparent
    }
    /// Only thread `t` calls this with `t`.
    func next(_ t: Int) -> ModelOp { ModelOp.random(&sources[t].rng, transparent: transparent) }
}

/// Hands non-Sendable values to the threads of `runThreads`; each thread uses only its own element.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// The swap device a model case runs on.
enum ModelDevice: String, Sendable {
    /// Pages in this process's memory, sealed (a space's default encryption).
    case memory
    /// An unnamed swap file, pages in clear (sealed files run on the thread pool).
    case file
    /// The same file, pages sealed.
    case sealedFile = "sealed-file"
    /// A compressed tier with a small pool over memory, pages in clear so that they compress.
    case compressed
    /// Memory that fails about 1 % of reads and 3 % of writes (EIO, ENOSPC, short transfers):
    /// the model expects the failed accesses' typed errors and every page right afterwards.
    case faulty
}

/// What the spaces of a model case are made of.
struct ModelSetup: Sendable {
    var io: IOEngineChoice = .automatic
    var device: ModelDevice = .memory
    var policy: ReclaimPolicy = .frequency
    /// Pages per folio of the runs' regions: large folios, which fall back to single pages when
    /// no run of free frames or slots is found.
    var folioPages = 1
    /// A transparent region beside the explicit ones (a run's own, or one the concurrent runs
    /// share), served so; nil: none.
    var transparent: TransparentRegion.FaultService?
    /// `.swapLimit` steps set limits. Off where concurrent runs share a transparent region: a
    /// group at its swap limit holds its pages in memory, and another run's fault, which
    /// cannot fail, could then find none.
    var swapLimits = true
}
