import Foundation
import Glibc
import UserSwap

/// What the kernel says about a `--mode kernel` run, in the engine's counter names so that the
/// workload driver and the reports treat both modes alike:
///
/// - `swapIns`/`swapOuts`: pages read from and written to swap (`pswpin`/`pswpout`), from the
///   memory cgroup's `memory.stat` when it has them (recent kernels, v1 and v2), else the
///   machine-wide /proc/vmstat (then other processes' swapping counts too: the comparison script
///   runs one benchmark at a time);
/// - `refaults`/`activations`/`restores`: the cgroup's `workingset_*_anon`, when present.
///
/// Pages read by swap readahead count as swap-ins here (the kernel reads them with the faulting
/// page), while UserSwap counts faults; `KernelSample.majorFaults` gives the kernel's faults.
public struct KernelSwapProbe: WorkloadProbe {
    public let cgroup: MemoryCgroup?

    public init(cgroup: MemoryCgroup?) {
        self.cgroup = cgroup
    }

    /// The cgroup's usage in pages, or the process's resident set without a cgroup.
    public var residentPages: Int {
        Int((cgroup?.usageBytes ?? ResidentMemory.currentBytes()) / 4096)
    }

    /// Where `swapIns`/`swapOuts` come from: "memory.stat" or "/proc/vmstat".
    public var swapCounterSource: String {
        cgroup.map { $0.stat()["pswpin"] != nil } == true ? "memory.stat" : "/proc/vmstat"
    }

    public func counters() -> [SwapStatistics.Counter: Int] {
        Self.counters(cgroupStat: cgroup?.stat() ?? [:], vmstat: KernelSample.vmstat())
    }

    /// The counters from a cgroup's memory.stat, falling back to /proc/vmstat for swap traffic.
    static func counters(cgroupStat stat: [String: Int64], vmstat: [String: Int64]) -> [SwapStatistics.Counter: Int] {
        var values: [SwapStatistics.Counter: Int] = [:]
        let swap = stat["pswpin"] != nil ? stat : vmstat
        values[.swapIns] = Int(swap["pswpin"] ?? 0)
        values[.swapOuts] = Int(swap["pswpout"] ?? 0)
        let workingset: [(String, SwapStatistics.Counter)] = [
            ("workingset_refault_anon", .refaults), ("workingset_activate_anon", .activations),
            ("workingset_restore_anon", .restores),
        ]
        for (key, counter) in workingset {
            if let value = stat[key] { values[counter] = Int(value) }
        }
        return values
    }
}

/// Process-wide numbers read around each phase of a kernel-mode run.
public struct KernelSample: Sendable, Equatable {
    /// Page faults that waited for I/O (`ru_majflt`): the kernel's swap-in faults.
    public var majorFaults: Int64
    /// /proc/vmstat `pswpin`/`pswpout`: the whole machine's swap traffic, in pages.
    public var machineSwapIns: Int64
    public var machineSwapOuts: Int64

    public init(majorFaults: Int64 = 0, machineSwapIns: Int64 = 0, machineSwapOuts: Int64 = 0) {
        self.majorFaults = majorFaults
        self.machineSwapIns = machineSwapIns
        self.machineSwapOuts = machineSwapOuts
    }

    /// Now.
    public static func now() -> KernelSample {
        var usage = rusage()
        // getrusage(RUSAGE_SELF) cannot fail with a valid pointer.
        _ = getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        let vmstat = vmstat()
        return KernelSample(
            majorFaults: Int64(usage.ru_majflt), machineSwapIns: vmstat["pswpin"] ?? 0,
            machineSwapOuts: vmstat["pswpout"] ?? 0)
    }

    static func vmstat() -> [String: Int64] {
        ProcFile.text("/proc/vmstat").map(MemoryCgroup.stat) ?? [:]
    }

    public static func - (after: KernelSample, before: KernelSample) -> KernelSample {
        KernelSample(
            majorFaults: after.majorFaults - before.majorFaults,
            machineSwapIns: after.machineSwapIns - before.machineSwapIns,
            machineSwapOuts: after.machineSwapOuts - before.machineSwapOuts)
    }

    public static func + (a: KernelSample, b: KernelSample) -> KernelSample {
        KernelSample(
            majorFaults: a.majorFaults + b.majorFaults, machineSwapIns: a.machineSwapIns + b.machineSwapIns,
            machineSwapOuts: a.machineSwapOuts + b.machineSwapOuts)
    }
}
