import Glibc
import UserSwap

/// One complete workload run: a fresh space with the configuration's budget and the given swap
/// device, the workload's phases, verification, and the space's invariant walk. `userswap run`
/// prints its outcome; the workload benchmarks turn it into a `BenchReport`.
public enum WorkloadSession {
    /// Runs `configuration` with `device` as the space's swap, sealed by `encryption`. `label`
    /// prefixes progress lines; `transparent` puts the data in a transparent region (plain loads
    /// and stores) instead of an explicit one (pins); `inspect` sees the space at the end (a
    /// benchmark reads its devices' figures there).
    public static func run(
        _ configuration: WorkloadConfiguration, device: SwapSpace.DeviceConfiguration,
        encryption: SwapSpace.Encryption = .randomKey,
        console: Console, showsProgress: Bool, label: String, transparent: Bool = false,
        inspect: (SwapSpace) -> Void = { _ in }
    ) throws -> WorkloadOutcome {
        let problems = configuration.problems()
        guard problems.isEmpty else { throw WorkloadError(problems.joined(separator: "; ")) }
        var device = device
        #if DEBUG
        if let override = configuration.swapDeviceOverride { device = override.make(configuration.swapBytes) }
        #endif
        // What the process holds before the space, once the space is made, and once the
        // workload's memory and bookkeeping are: where a fixed overhead comes from.
        var stages: [(String, ProcessMemory)] = []
        func stage(_ name: String) { if let now = ProcessMemory.now() { stages.append((name, now)) } }
        stage("before the space")
        let space = try SwapSpace(
            .init(
                memory: Int(configuration.memoryBytes), devices: [device], sync: configuration.sync,
                reclaimPolicy: configuration.reclaimPolicy, backgroundReclaim: configuration.backgroundReclaim,
                encryption: encryption,
                ioEngine: configuration.ioEngine,
                ioOptions: IOEngineOptions(
                    maxWritesInFlight: configuration.ioMaxWritesInFlight,
                    readsInCaller: configuration.ioReadsInCaller)))
        for warning in space.warnings { console.errorLine("userswap: warning: \(warning.message)") }
        stage("space made")
        let workload = try configuration.makeWorkload(in: space, transparent: transparent)
        stage("workload made")
        let driver = WorkloadDriver(
            space: space, threads: configuration.threads, console: console,
            showsProgress: showsProgress, label: label)
        var phases: [WorkloadDriver.PhaseOutcome] = []
        for phase in workload.phases {
            phases.append(try driver.run(phase, limit: configuration.limit))
        }
        let verify = try driver.run(workload.verificationPhase(), limit: configuration.limit)
        let invariants = quietInvariants(space)
        inspect(space)
        var outcome = WorkloadOutcome(
            configuration: configuration, summary: workload.summary, phases: phases, verification: verify,
            totals: WorkloadDriver.counters(space), peakResidentFrames: driver.peakResidentFrames,
            frameCount: space.frameCount,
            readsChecked: workload.readChecks.checked, readMismatches: workload.readChecks.mismatches,
            verifiedUnits: workload.verification.checked, verifiedUnit: workload.verifiedUnit,
            verificationMismatches: workload.verification.mismatches,
            failures: workload.readChecks.failures + workload.verification.failures + workload.finalProblems(),
            invariantProblems: invariants, ioEngine: space.statistics.ioEngine)
        outcome.processMemoryAtPeak = driver.peakProcessMemory
        outcome.processMemoryStages = stages
        if transparent { outcome.faultWaitTimes = space.statistics.faultWaitTimes }
        return outcome
    }
}

extension WorkloadSession {
    /// The space's invariant walk once it is quiet. The workload's threads have stopped, but the
    /// background reclaimer may still be finishing a batch (it runs until free frames are back
    /// above the high watermark), and the walker rightly reports the folio it holds locked. So
    /// walk again, up to 50 times 20 ms apart, until a walk comes back clean: a real breakage
    /// persists and is reported; a reclaimer's batch is over in well under a second.
    static func quietInvariants(_ space: SwapSpace) -> [String] {
        var problems = space.checkInvariants()
        var tries = 1
        while !problems.isEmpty && tries < 50 {
            usleep(20_000)  // A poll on purpose: see the function's comment
            problems = space.checkInvariants()
            tries += 1
        }
        return problems
    }
}

/// What a workload run did and found.
public struct WorkloadOutcome: Sendable {
    public let configuration: WorkloadConfiguration
    public let summary: String
    /// The workload's phases, in order (verification excluded).
    public let phases: [WorkloadDriver.PhaseOutcome]
    public let verification: WorkloadDriver.PhaseOutcome
    /// Every counter at the end: the whole run, set-up and verification included.
    public let totals: [SwapStatistics.Counter: Int]
    /// The most frames in use at once (sampled every 100 ms), and the budget in frames.
    public let peakResidentFrames: Int
    public let frameCount: Int
    /// Reads checked during the phases, and how many did not match.
    public let readsChecked: Int
    public let readMismatches: Int
    /// What verification checked ("pages", "pages of the table"), and how many did not match.
    public let verifiedUnits: Int
    public let verifiedUnit: String
    public let verificationMismatches: Int
    /// The first failures, in words (empty when all matched).
    public let failures: [String]
    public let invariantProblems: [String]
    /// The process's memory at the sample with the largest resident set
    /// (`WorkloadDriver.peakProcessMemory`).
    public var processMemoryAtPeak: ProcessMemory? = nil
    /// The process's memory at named points of the run's set-up ("before the space", "space
    /// made", "workload made"), for the report's `rss_stages`.
    public var processMemoryStages: [(String, ProcessMemory)] = []
    /// The benchmark's swap beyond a plain file: device, tier, encryption and their figures
    /// (`WorkloadSwap.json`), reported under `swap`.
    public var swapReport: JSONValue? = nil
    /// The swap device's I/O engine and why it was chosen (nil for the kernel's swap).
    public var ioEngine: IOEngineInfo? = nil
    /// With the data in a transparent region: how long the workload's threads waited in its
    /// faults over the whole run (set-up and verification included).
    public var faultWaitTimes: FaultWaitTimes? = nil

    /// The measured phases as one timed run: their operations, time and latencies added up.
    public var measured: TimedRun {
        let runs = phases.filter(\.measured).map(\.run)
        let threads = configuration.threads
        return TimedRun(
            threads: threads,
            calls: runs.reduce(0) { $0 + $1.calls },
            ops: runs.reduce(0) { $0 + $1.ops },
            seconds: runs.reduce(0) { $0 + $1.seconds },
            histogram: LatencyHistogram.merged(runs.map(\.histogram)),
            opsPerThread: (0..<threads).map { thread in
                runs.reduce(0) { $0 + (thread < $1.opsPerThread.count ? $1.opsPerThread[thread] : 0) }
            })
    }

    /// Each counter's change over the measured phases.
    public var counters: [SwapStatistics.Counter: Int] {
        var sum: [SwapStatistics.Counter: Int] = [:]
        for phase in phases where phase.measured {
            for (counter, value) in phase.counters { sum[counter, default: 0] += value }
        }
        return sum
    }

    /// The open phase's operations per thread: replaying them with the same seed repeats every
    /// thread's sequence of pages (`WorkloadLimit.operationsPerThread`).
    public var openOpsPerThread: [Int] {
        phases.first { $0.measured }.map { $0.run.opsPerThread.map { Int($0) } } ?? []
    }

    /// Everything read matched, verification found every page intact, and the space's
    /// invariants hold.
    public var verified: Bool {
        readMismatches == 0 && verificationMismatches == 0 && failures.isEmpty && invariantProblems.isEmpty
    }

    /// "verified 262144 pages: all match", or what failed.
    public var verificationLine: String {
        if verified {
            return "verified \(verifiedUnits) \(verifiedUnit): all match (and \(readsChecked) reads checked on the way)"
        }
        var parts: [String] = []
        if readMismatches > 0 { parts.append("\(readMismatches) of \(readsChecked) reads did not match") }
        if verificationMismatches > 0 { parts.append("\(verificationMismatches) of \(verifiedUnits) \(verifiedUnit) did not match") }
        if !invariantProblems.isEmpty { parts.append("\(invariantProblems.count) broken invariants") }
        if parts.isEmpty { parts.append("the final check failed") }
        let details = (failures + invariantProblems).prefix(8).map { "\n  \($0)" }.joined()
        return "VERIFICATION FAILED: \(parts.joined(separator: ", "))\(details)"
    }
}
