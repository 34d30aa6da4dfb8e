import UserSwap

/// The same workloads over plain anonymous memory, swapped by the kernel: the `kernel` mode.
extension WorkloadSession {
    /// What a kernel-mode run found besides its `WorkloadOutcome`.
    public struct KernelRun: Sendable {
        public let outcome: WorkloadOutcome
        /// The cgroup the run was limited by, if any.
        public let cgroup: MemoryCgroup?
        /// Where the swap counters came from: "memory.stat" or "/proc/vmstat".
        public let swapCounterSource: String
        /// Major faults and machine-wide swap traffic over the measured phases.
        public let measured: KernelSample
        /// The same over the whole run.
        public let total: KernelSample
    }

    /// Runs `configuration` on an `AnonymousPageStore` of the data's size, with no UserSwap
    /// engine: the kernel swaps the pages when `cgroup`'s limit is below the data. Same
    /// workloads, seeds, threads, limits and verification as `run`; the probe reads the
    /// cgroup's usage and swap counters. `configuration.memoryBytes` is only reported (the
    /// cgroup's limit is the budget); `hugePages` lets THP back the mapping.
    public static func runOnKernelSwap(
        _ configuration: WorkloadConfiguration, cgroup: MemoryCgroup?, hugePages: Bool = false,
        console: Console, showsProgress: Bool, label: String
    ) throws -> KernelRun {
        let problems = configuration.problems()
        guard problems.isEmpty else { throw WorkloadError(problems.joined(separator: "; ")) }
        let probe = KernelSwapProbe(cgroup: cgroup)
        let before = ProcessMemory.now()
        let workload = try configuration.makeWorkload { pages in try AnonymousPageStore(pages: pages, hugePages: hugePages) }
        let made = ProcessMemory.now()
        let driver = WorkloadDriver(
            probe: probe, threads: configuration.threads, console: console,
            showsProgress: showsProgress, label: label)
        let start = KernelSample.now()
        var measured = KernelSample()
        var phases: [WorkloadDriver.PhaseOutcome] = []
        for phase in workload.phases {
            let before = KernelSample.now()
            phases.append(try driver.run(phase, limit: configuration.limit))
            if phase.measured { measured = measured + (KernelSample.now() - before) }
        }
        let verify = try driver.run(workload.verificationPhase(), limit: configuration.limit)
        var outcome = WorkloadOutcome(
            configuration: configuration, summary: workload.summary, phases: phases, verification: verify,
            totals: probe.counters(), peakResidentFrames: driver.peakResidentFrames,
            frameCount: Int(configuration.memoryBytes / 4096),
            readsChecked: workload.readChecks.checked, readMismatches: workload.readChecks.mismatches,
            verifiedUnits: workload.verification.checked, verifiedUnit: workload.verifiedUnit,
            verificationMismatches: workload.verification.mismatches,
            failures: workload.readChecks.failures + workload.verification.failures + workload.finalProblems(),
            invariantProblems: [])
        outcome.processMemoryAtPeak = driver.peakProcessMemory
        outcome.processMemoryStages = [("before the space", before), ("workload made", made)].compactMap { name, memory in
            memory.map { (name, $0) }
        }
        return KernelRun(
            outcome: outcome, cgroup: cgroup, swapCounterSource: probe.swapCounterSource,
            measured: measured, total: KernelSample.now() - start)
    }
}
