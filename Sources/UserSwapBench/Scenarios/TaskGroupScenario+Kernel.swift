import UserSwap

/// `userswap bench taskgroup --mode kernel`: the same tasks, seed, access sequence and heartbeat
/// (`TaskGroupLoop`) over plain anonymous memory (`AnonymousPageStore`), swapped by the kernel
/// because the process runs in a memory cgroup limited below the data (`bench/kernel-compare`
/// makes it; `cgroup=optional` runs without one, and the kernel then does not swap). A task's
/// access is a load of the page's first word and, for a write, a store: a swapped-out page
/// faults, and the fault blocks the cooperative thread that runs the task until the read is
/// done, where an async pin suspends the task and leaves the thread to others.
///
/// As the workloads' kernel mode: `budget_bytes` is the cgroup's limit; `swap_ins`/`swap_outs`
/// (and `device_reads`/`device_writes`, the same numbers) are the cgroup's `pswpin`/`pswpout`
/// over the timed phase; `peak_resident_bytes` is the cgroup's peak charge; the `kernel` object
/// has the major faults, the machine's swap traffic and the swap devices.
extension TaskGroupScenario {
    static func runKernel(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        guard options.protocols.count == 1 else {
            throw BenchError("--protocol both: the kernel's swap has no protocol to choose; run --mode kernel once")
        }
        let (loop, asked) = try loop(options: options, harness: harness)
        let dataBytes = Int64(loop.pages * SwapPage.size)
        let (cgroup, limit, swaps) = try WorkloadBench.kernelSwap(dataBytes: dataBytes, rule: try options.value(WorkloadBench.cgroup))
        if let limit, limit != Int64(asked) {
            harness.log("the cgroup's limit (\(ByteSize.format(limit))) is the budget, not --memory \(ByteSize.format(Int64(asked)))")
        }
        let store = try AnonymousPageStore(pages: loop.pages)
        let fill = harness.progress("fill")
        for p in 0..<loop.pages {
            store.withPage(p, for: .write) { $0.storeBytes(of: UInt64(p), as: UInt64.self) }
            if p % 4096 == 0 { fill.update(Double(p) / Double(loop.pages)) }
        }
        fill.finish()
        harness.log(
            "\(loop.tasks) tasks faulting on \(loop.pages) pages of anonymous memory, \(cgroup.map { "cgroup \($0.path) (v\($0.version.rawValue))" } ?? "no cgroup"), limit \(limit.map { ByteSize.format($0) } ?? "none"), swap on \(swaps.isEmpty ? "no device" : swaps.map(\.path).joined(separator: ", "))"
        )

        let probe = KernelSwapProbe(cgroup: cgroup)
        let start = KernelSample.now()
        let before = probe.counters()
        let outcome = loop.run { page, write in
            store.withPage(page, for: write ? .write : .read) { bytes in
                guard bytes.load(as: UInt64.self) == UInt64(page) else { return false }
                if write { bytes.storeBytes(of: UInt64(page), as: UInt64.self) }
                return true
            }
        }
        let after = probe.counters()
        let measured = KernelSample.now() - start
        var intact = outcome.wrong == 0
        for p in 0..<loop.pages where intact {
            intact = store.withPage(p, for: .read) { $0.load(as: UInt64.self) == UInt64(p) }
        }

        var report = harness.report(outcome.timedRun(tasks: loop.tasks), mode: .kernel)
        report.budgetBytes = limit ?? Int64(asked)
        report.dataBytes = dataBytes
        report.swapIns = Int64((after[.swapIns] ?? 0) - (before[.swapIns] ?? 0))
        report.swapOuts = Int64((after[.swapOuts] ?? 0) - (before[.swapOuts] ?? 0))
        report.deviceReads = report.swapIns
        report.deviceWrites = report.swapOuts
        // The cgroup's peak when the cgroup is the run's own (it has the limit).
        if limit != nil, let peak = cgroup?.peakBytes { report.peakResidentBytes = peak }
        report.verified = intact
        outcome.fill(&report, loop: loop)
        report.extras["device_reads_per_s"] = JSONValue(report.seconds > 0 ? Double(report.deviceReads) / report.seconds : 0)
        report.extras["kernel"] = WorkloadBench.kernelFacts(
            cgroup: cgroup, swapCounterSource: probe.swapCounterSource, measured: measured, total: KernelSample.now() - start,
            swaps: swaps, thp: false)
        // The swap files' sizes as UserSwap counts its own: /proc/swaps leaves out the header page.
        report.extras["swap_bytes"] = JSONValue(swaps.reduce(Int64(0)) { $0 + $1.sizeBytes + 4096 })
        harness.log(outcome.summary)
        if !report.verified { harness.log("NOT verified: \(outcome.wrong) wrong accesses") }
        return report
    }
}
