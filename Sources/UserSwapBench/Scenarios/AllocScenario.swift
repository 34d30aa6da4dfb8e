import UserSwap

/// `userswap bench alloc`: the slot allocator alone — allocate + free pairs (one op each) of runs of `1 << order`
/// slots, per order and thread count, on a 64 GiB device held in reserved (untouched) memory, and
/// the allocator's metadata cost per slot, computed and measured.
enum AllocScenario: BenchScenario {
    static let name = "alloc"
    static let summary = "swap-slot allocate + free by folio order and threads; metadata bytes per slot"

    /// Runs each thread keeps allocated before freeing them: a realistic mix of fresh and
    /// partly used clusters, rather than one slot bouncing in and out of one cluster.
    static let batch = 256
    static let deviceBytes = 64 << 30

    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        let pages = deviceBytes / SwapPage.size
        let device = try SwapDevice(backend: MemoryBackend(pageCount: pages))
        var results: [JSONValue] = []
        var headline: TimedRun?
        let threadCounts = options.threads.map { [$0] } ?? [1, 2]
        for order in [0, 4] {
            for threads in threadCounts {
                let run = try harness.runTimed(
                    "order \(order), \(threads) thread(s)", threads: threads,
                    limit: .seconds(harness.seconds(default: 1)), opsPerCall: batch,
                    setUp: { _ in [SwapEntry]() },
                    operation: { (held: inout [SwapEntry]) in
                        held.removeAll(keepingCapacity: true)
                        for _ in 0..<batch { held.append(try device.allocate(order: order)) }
                        for e in held { device.put(e, count: 1 << order) }
                    })
                results.append([
                    "order": JSONValue(order), "threads": JSONValue(threads),
                    "ops_per_s": JSONValue(run.opsPerSecond), "latency_us": JSONValue(run.latency),
                ])
                if order == 0 && threads == threadCounts.last { headline = run }
            }
        }
        let problems = device.checkInvariants()
        let emptied = device.usedPages == 0

        // Metadata: fill every slot of a fresh 64 GiB device and measure what memory that took.
        let before = ResidentMemory.currentBytes()
        let full = try SwapDevice(backend: MemoryBackend(pageCount: pages))
        let progress = harness.progress("filling 64 GiB of slots")
        var filled = 0
        while (try? full.allocate()) != nil {
            filled += 1
            if filled & 0xfffff == 0 { progress.update(Double(filled) / Double(full.usablePages)) }
        }
        progress.finish()
        let measured = Double(ResidentMemory.currentBytes() - before) / Double(pages)
        harness.log(
            "metadata per slot: \(SwapDevice.metadataBytesPerSlot) bytes computed, \(measured) measured (RSS delta over \(filled) slots)")

        var report = harness.report(headline!)
        report.dataBytes = Int64(deviceBytes)
        report.extras["results"] = .array(results)
        report.extras["metadata_bytes_per_slot"] = JSONValue(SwapDevice.metadataBytesPerSlot)
        report.extras["metadata_bytes_per_slot_measured"] = JSONValue(measured)
        report.extras["slots_filled"] = JSONValue(filled)
        report.verified = emptied && problems.isEmpty && filled == full.usablePages && full.checkInvariants().isEmpty
        return report
    }
}
