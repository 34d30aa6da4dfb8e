import Synchronization
import UserSwap
import UserSwapCompression
import UserSwapEncryption

/// `userswap bench tiers`: what the compressed and the encrypted tier cost and give.
///
/// 1. **Pages** (no space): for each kind of page data (`TierData`: text, numeric, random,
///    zero, the workloads' pattern) and codec (lz4, zstd-1), 4096 pages written to a
///    `CompressedTier` over memory and read back: compression ratio, share kept, µs per page
///    each way. Then the encrypted tier over memory against memory alone: µs per page to seal
///    and to open.
/// 2. **Spaces**: the same data (`data=text` by default) on a space with 4× less budget than
///    data, swapping to (a) process memory, (b) a swap file, (c) a compressed tier over a swap
///    file, (d) an encrypted tier over a swap file, (e) compressed over encrypted over a file;
///    on request also the tiers over process memory (`compressed-memory`, `encrypted-memory`,
///    `compressed+encrypted-memory`), which isolates their CPU cost from the disk's.
///    Each is populated (every page written once, timed: the swap-out side) and then read by
///    `--threads` threads (2) for `--seconds` (2) per access pattern (random, then Zipf
///    θ = 0.99), every read checked; at the end every page is checked.
///
/// Headline (`ops_per_s`, `latency_us`): the compressed tier over a file, Zipf. Everything
/// else is in `pages`, `encryption`, `pool_footprint`, `device_runs` (not `runs`, which
/// BENCH-JSON reserves for two-sided comparisons) and `comparison` (each device ÷ the plain
/// file, so above 1 means better than the file).
///
/// Parameters: `data=text|numeric|floats|random|zero|pattern|mixed`, `pool=SIZE` (the
/// compressed pool, default the budget), `codec=lz4|zstd|zstd-N`, `loads=exclusive|shared`
/// (whether a load drops the pool's copy, as zswap, or keeps it so that a page only read
/// leaves memory again without being compressed again; over a file only: over memory the
/// device is synchronous, and the swap-in frees the slot and the pool's copy with it, as zram
/// does), `devices=…` (comma-separated; the
/// default is memory,file,compressed,encrypted,compressed+encrypted; also compressed-memory,
/// encrypted-memory, compressed+encrypted-memory), `patterns=random,zipf`, `pages=N` (part 1,
/// default 4096), `theta=T`.
enum TiersScenario: BenchScenario {
    static let name = "tiers"
    static let summary =
        "compressed and encrypted tiers: ratio and cost per kind of data; reads over memory, file, compressed, encrypted devices"

    static let defaultDevices = ["memory", "file", "compressed", "encrypted", "compressed+encrypted"]
    /// The tiers over process memory instead of a file: their CPU cost alone, whatever the
    /// disk and the page cache do.
    static let allDevices = defaultDevices + ["compressed-memory", "encrypted-memory", "compressed+encrypted-memory"]

    static let data = BenchParameter.choice("data", TierData.allCases.map(\.rawValue), default: "text", "the kind of page data")
    static let loads = BenchParameter.choice(
        "loads", ["exclusive", "shared"], default: "exclusive",
        "a load drops the pool's copy (exclusive, as zswap) or keeps it (shared)")
    static let devices = BenchParameter.list(
        "devices", of: allDevices, default: defaultDevices.joined(separator: ","), "the devices of part 2")
    static let patterns = BenchParameter.list("patterns", of: ["random", "zipf"], default: "random,zipf", "the access patterns of part 2")
    static let pages = BenchParameter.integer("pages", 1...Int.max, default: 4096, "pages of each kind written in part 1")
    static func parameters(mode: BenchMode?) -> [BenchParameter] {
        [data, WorkloadSwap.pool, WorkloadSwap.codec, loads, devices, patterns, pages, WorkloadBench.theta]
    }

    static func run(options: BenchOptions, harness: BenchHarness) throws -> BenchReport {
        let dataName: String = try options.value(Self.data)
        guard let data = TierData(rawValue: dataName) else {
            throw BenchError("--param data=\(dataName): use \(TierData.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let codecName: String = try options.value(WorkloadSwap.codec)
        guard let codec = CompressionCodec(codecName) else {
            throw BenchError("--param codec=\(codecName): use lz4, zstd or zstd-N (N 1…19)")
        }
        let loads: String = try options.value(Self.loads)
        guard loads == "exclusive" || loads == "shared" else { throw BenchError("--param loads=\(loads): use exclusive or shared") }
        let devices = try list(options, "devices", default: defaultDevices, allowed: allDevices)
        let patterns = try list(options, "patterns", default: ["random", "zipf"], allowed: ["random", "zipf"])
        let samplePages: Int = try options.value(Self.pages)
        guard samplePages >= 1 else { throw BenchError("--param pages=\(samplePages): give at least 1") }
        let theta: Double = try options.value(WorkloadBench.theta)
        let memory = Int(options.memoryBytes ?? 64 << 20)
        let dataBytes = Int(options.dataBytes ?? 256 << 20)
        let poolBytes: Int
        if let text = options.parameters["pool"] {
            guard case .success(let size) = ByteSize.parse(text) else { throw BenchError("--param pool=\(text): a size, e.g. 64M") }
            poolBytes = Int(size)
        } else {
            poolBytes = memory
        }
        guard memory >= 4 << 20, dataBytes >= memory else { throw BenchError("--memory must be at least 4M and --data at least --memory") }
        let seed = options.seed ?? 0x7469_6572
        let source = TierPageSource(data, seed: seed)

        // Part 1: pages alone.
        let pageResults = try TierPageBench.run(samplePages: samplePages, seed: seed, harness: harness)

        // Part 2: spaces.
        var runs: [TierSpaceRun] = []
        for device in devices {
            let setup = TierSpaceSetup(
                device: device, memory: memory, dataBytes: dataBytes, poolBytes: poolBytes,
                codec: codec, exclusiveLoads: loads == "exclusive", source: source, patterns: patterns, theta: theta, seed: seed)
            runs += try harness.withScratchDirectory { folder in try setup.run(folder: folder, harness: harness) }
        }

        // The report: headline, then every run and the comparisons with the plain file.
        let headline = runs.first { $0.device == "compressed" && $0.pattern == "zipf" } ?? runs.last { $0.pattern != "populate" }
        guard let headline else { throw BenchError("no timed run: give at least one device and pattern") }
        var report = harness.report(headline.timed)
        report.budgetBytes = Int64(memory)
        report.dataBytes = Int64(dataBytes)
        report.swapIns = headline.swapIns
        report.swapOuts = headline.swapOuts
        report.deviceReads = headline.deviceReads
        report.deviceWrites = headline.deviceWrites
        report.verified = runs.allSatisfy(\.verified) && pageResults.verified
        report.extras["headline"] = .string("\(headline.device) \(headline.pattern)")
        report.extras["data"] = .string(data.rawValue)
        report.extras["codec"] = .string(codec.description)
        report.extras["loads"] = .string(loads)
        report.extras["pool_bytes"] = JSONValue(poolBytes)
        report.extras["pages"] = pageResults.pages
        report.extras["encryption"] = pageResults.encryption
        report.extras["pool_footprint"] = pageResults.pool
        report.extras["device_runs"] = .array(runs.map(\.json))
        report.extras["comparison"] = comparison(runs)
        for run in runs where !run.verified {
            harness.log("NOT verified: \(run.device) \(run.pattern): \(run.problems.prefix(3).joined(separator: "; "))")
        }
        return report
    }

    static func list(_ options: BenchOptions, _ key: String, default value: [String], allowed: [String]) throws -> [String] {
        guard let text = options.parameters[key] else { return value }
        let items = text.split(separator: ",").map(String.init)
        if let bad = items.first(where: { !allowed.contains($0) }) {
            throw BenchError("--param \(key)=\(text): \(bad) is not one of \(allowed.joined(separator: ", "))")
        }
        return items
    }

    /// Each device's ops/s and p99 against the plain file's, per pattern (ops/s: device ÷ file;
    /// p99: file ÷ device; above 1 is better for the device either way).
    static func comparison(_ runs: [TierSpaceRun]) -> JSONValue {
        var object: [String: JSONValue] = [:]
        for run in runs {
            guard let file = runs.first(where: { $0.device == "file" && $0.pattern == run.pattern }), run.device != "file",
                file.timed.opsPerSecond > 0, run.timed.latency.p99 > 0
            else { continue }
            object["\(run.device) \(run.pattern)"] = [
                "ops_per_s": JSONValue(run.timed.opsPerSecond / file.timed.opsPerSecond),
                "p99": JSONValue(file.timed.latency.p99 / run.timed.latency.p99),
            ]
        }
        object["note"] =
            "each device ÷ the plain swap file on the same pattern: ops_per_s = device ÷ file, p99 = file ÷ device (above 1: the device is better)"
        return .object(object)
    }
}

/// One device configuration of part 2: builds the space, populates it, runs the patterns.
struct TierSpaceSetup {
    let device: String
    let memory: Int
    let dataBytes: Int
    let poolBytes: Int
    let codec: CompressionCodec
    let exclusiveLoads: Bool
    let source: TierPageSource
    let patterns: [String]
    let theta: Double
    let seed: UInt64

    func run(folder: String, harness: BenchHarness) throws -> [TierSpaceRun] {
        let pages = dataBytes / SwapPage.size
        // Twice the data, as `userswap run`: pages that come back keep their slots.
        let swapBytes = Int64(2 * dataBytes + SwapPage.size)
        var compressed: CompressedTier?
        var encrypted: EncryptedTier?
        let configuration: SwapSpace.DeviceConfiguration
        switch device {
        case "memory":
            configuration = .memory(bytes: Int(swapBytes))
        case "file":
            configuration = .temporary(size: swapBytes, directory: folder)
        default:
            var lower: any SwapBackend
            if device.hasSuffix("-memory") {
                lower = MemoryBackend(pageCount: Int(swapBytes) / SwapPage.size)
            } else {
                lower = try SwapFile.openTemporary(bytes: swapBytes, in: folder).backend
            }
            if device.contains("encrypted") {
                encrypted = try EncryptedTier(lower: lower)
                lower = encrypted!
            }
            if device.contains("compressed") {
                compressed = try CompressedTier(lower: lower, poolBytes: poolBytes, codec: codec, exclusiveLoads: exclusiveLoads)
                lower = compressed!
            }
            configuration = .backend(lower)
        }
        let sync: SwapInSync = harness.swapProtocol.sync()
        let space = try SwapSpace(
            .init(
                memory: memory, devices: [configuration], sync: sync,
                // Each device row stacks its own tiers, the encrypted one included.
                encryption: .none))
        let region = try space.makeRegion(bytes: pages * SwapPage.size)
        let threads = harness.threads(default: 2)
        let failures = Atomic<Int>(0)
        let source = self.source

        func snapshot(_ label: String, _ timed: TimedRun, verified: Bool = true) -> TierSpaceRun {
            let s = space.statistics
            return TierSpaceRun(
                device: device, pattern: label, timed: timed,
                swapIns: Int64(s[.swapIns]), swapOuts: Int64(s[.swapOuts]),
                deviceReads: Int64(s[.deviceReads]), deviceWrites: Int64(s[.deviceWrites]),
                compressed: compressed?.statistics, encrypted: encrypted?.statistics,
                verified: verified, problems: [])
        }

        // Populate: each thread writes its share once (timed: the swap-out side of each device).
        let perThread = (pages + threads - 1) / threads
        let populate = try harness.runTimed(
            "\(device) populate", threads: threads, limit: .callsPerThread(perThread),
            setUp: { thread in thread }
        ) { page in
            if page < pages {
                try region.withPage(page, for: .write) { source.fill($0, page: page, version: 1) }
            }
            page += threads
        }
        var runs = [snapshot("populate", populate)]
        // The space's totals at the end of the previous phase, to report each phase's own.
        var totals = runs[0]

        for pattern in patterns {
            let sampler = pattern == "zipf" ? ZipfSampler(count: pages, theta: theta, seed: seed) : nil
            let timed = try harness.runTimed(
                "\(device) \(pattern)", threads: threads, limit: .seconds(harness.seconds(default: 2)),
                setUp: { thread in Xoshiro256StarStar(seed: seed, thread: thread) }
            ) { random in
                let page = sampler?.page(using: &random) ?? random.next(below: pages)
                try region.withPage(page, for: .read) { bytes in
                    // Relaxed: a count read after the threads joined
                    if !source.matches(UnsafeRawBufferPointer(bytes), page: page, version: 1) { failures.add(1, ordering: .relaxed) }
                }
            }
            var run = snapshot(pattern, timed)
            let phase = run
            run.subtract(totals)
            totals = phase
            runs.append(run)
        }

        // Every page, once more.
        var wrong = 0
        for page in 0..<pages {
            let ok = try region.withPage(page, for: .read) { source.matches(UnsafeRawBufferPointer($0), page: page, version: 1) }
            if !ok { wrong += 1 }
        }
        var problems = space.checkInvariants()
        if let compressed { problems += compressed.checkInvariants() }
        // Relaxed: the workers were joined by runTimed.
        let readFailures = failures.load(ordering: .relaxed)
        if readFailures > 0 { problems.append("\(readFailures) timed reads saw the wrong bytes") }
        if wrong > 0 { problems.append("\(wrong) of \(pages) pages wrong at the end") }
        for index in runs.indices {
            runs[index].verified = problems.isEmpty
            runs[index].problems = problems
        }
        if let c = compressed?.statistics {
            harness.log(
                "\(device): pool \(c.storedPages) pages in \(c.poolBytes >> 10) KiB (peak \(c.peakPoolBytes >> 10) KiB), ratio \(c.cumulativeCompressionRatio.map { LatencySummary.trimmed($0) } ?? "n/a"), \(c.rejects) rejects, \(c.writeBacks) write-backs, \(c.loads) loads"
            )
        }
        return runs
    }
}

/// One timed phase of part 2, with its swap counters and tier figures.
struct TierSpaceRun {
    let device: String
    /// "populate", "random" or "zipf".
    let pattern: String
    let timed: TimedRun
    var swapIns: Int64
    var swapOuts: Int64
    var deviceReads: Int64
    var deviceWrites: Int64
    var compressed: CompressedTierStatistics?
    var encrypted: EncryptedTierStatistics?
    var verified: Bool
    var problems: [String]

    /// Counters of this phase alone: the space's totals minus those at the end of `before`.
    mutating func subtract(_ before: TierSpaceRun) {
        swapIns -= before.swapIns
        swapOuts -= before.swapOuts
        deviceReads -= before.deviceReads
        deviceWrites -= before.deviceWrites
    }

    var json: JSONValue {
        var object: [String: JSONValue] = [
            "device": .string(device), "pattern": .string(pattern), "threads": JSONValue(timed.threads),
            "ops": JSONValue(timed.ops), "seconds": JSONValue(timed.seconds), "ops_per_s": JSONValue(timed.opsPerSecond),
            "latency_us": JSONValue(timed.latency), "swap_ins": JSONValue(swapIns), "swap_outs": JSONValue(swapOuts),
            "device_reads": JSONValue(deviceReads), "device_writes": JSONValue(deviceWrites), "verified": .bool(verified),
        ]
        if let c = compressed {
            object["compressed"] = [
                "stored_pages": JSONValue(c.storedPages), "same_filled_pages": JSONValue(c.sameFilledPages),
                "pool_bytes": JSONValue(c.poolBytes), "peak_pool_bytes": JSONValue(c.peakPoolBytes), "pool_limit": JSONValue(c.poolLimit),
                "compression_ratio": c.cumulativeCompressionRatio.map { JSONValue($0) } ?? .null,
                "effective_ratio": c.effectiveRatio.map { JSONValue($0) } ?? .null,
                "stores": JSONValue(c.stores), "rejects": JSONValue(c.rejects), "write_backs": JSONValue(c.writeBacks),
                "loads": JSONValue(c.loads), "lower_reads": JSONValue(c.lowerReads), "lower_writes": JSONValue(c.lowerWrites),
                "invalidations": JSONValue(c.invalidations), "write_back_waits": JSONValue(c.writeBackWaits),
            ]
        }
        if let e = encrypted {
            object["encrypted"] = [
                "sealed_pages": JSONValue(e.sealedPages), "opened_pages": JSONValue(e.openedPages),
                "authentication_failures": JSONValue(e.authenticationFailures),
                "side_table_bytes": JSONValue(e.sideTableBytes),
            ]
        }
        return .object(object)
    }
}
