import UserSwap

/// The workloads `userswap run --workload` and the benchmarks of the same names run.
public enum WorkloadKind: String, CaseIterable, Sendable, Equatable {
    case zipf
    case random
    case seq
    case usemem
    case hashtable
    case multiget

    /// Whether the workload runs until a limit (`--ops`, `--seconds`) and mixes reads and
    /// writes (`--write-ratio`); `usemem` and `hashtable` are fixed jobs sized by the data.
    public var isOpen: Bool {
        switch self {
        case .zipf, .random, .seq, .multiget: true
        case .usemem, .hashtable: false
        }
    }
}

/// Everything a workload run needs to know besides its swap device: shared by `userswap run`
/// and the workload benchmarks, which differ only in their defaults.
public struct WorkloadConfiguration: Sendable, Equatable {
    public var kind: WorkloadKind
    /// The space's RAM budget.
    public var memoryBytes: Int64
    /// The workload's data: the region's size (the table's, for `hashtable`).
    public var dataBytes: Int64
    public var threads: Int
    /// How long the open phase lasts (ignored by fixed jobs).
    public var limit: WorkloadLimit
    /// Fraction of accesses that write, for the open workloads.
    public var writeRatio: Double
    /// Zipf's θ.
    public var theta: Double
    /// Hash table fill, 0…0.9.
    public var loadFactor: Double
    /// `multiget`: keys per batch, and whether each batch's pages are prefetched before its
    /// lookups (`--param batch=`, `--param prefetch=on|off` in the benchmarks).
    public var batch = 32
    public var prefetch = true
    public var seed: UInt64
    public var swapProtocol: BenchProtocol
    /// How reclaim picks pages (`--param policy=…` in the benchmarks).
    public var reclaimPolicy: ReclaimPolicy
    /// Refault activation: only the kernel's lists with it (`.workingset`) have it.
    public var workingsetDetection: Bool { reclaimPolicy == .workingset }
    public var backgroundReclaim: Bool
    /// How many times each page repeats its first 4096 / N bytes (`PagePattern`'s period): 1,
    /// the default, is incompressible; N makes pages that compress to about 1/N (the page
    /// workloads; the hash table's records are its own).
    public var pageRepeats: Int = 1
    /// The swap device's I/O engine (`--param io=…` in the benchmarks).
    public var ioEngine: IOEngineChoice = .automatic
    /// Faults read in their own thread (`IOEngineOptions.readsInCaller`).
    public var ioReadsInCaller = true
    /// Write-backs in flight at once (`IOEngineOptions.maxWritesInFlight`).
    public var ioMaxWritesInFlight = IOEngineOptions().maxWritesInFlight
    /// Who serves a transparent region's faults (`--param faults=…` in the benchmarks).
    public var transparentFaults: TransparentRegion.FaultService = .handlerThreads(4)
    /// The explicit region's folio size (`SwapSpace.makeRegion(folioSize:)`): 4 KiB, or a
    /// power of two up to 2 MiB, the kernel's mTHP sizes. A large folio is one reclaim decision,
    /// one slot run and one contiguous transfer.
    public var folioBytes = SwapPage.size
    /// The swap device's size when the caller sets it (`--param swap_size=` in the benchmarks,
    /// so that a comparison gives UserSwap and the kernel the same swap); nil: `swapBytes`'s
    /// default.
    public var swapSizeBytes: Int64?
    #if DEBUG
    /// Tests only, in debug builds only: the swap device a test supplies (one that corrupts
    /// what it reads, so that a test can show that `run` and `bench` fail when a page is wrong).
    public var swapDeviceOverride: SwapDeviceOverride?
    #endif

    public static let defaultSeed: UInt64 = 0x5EED
    public static let defaultWriteRatio = 0.2
    public static let defaultTheta = 0.99
    public static let defaultLoadFactor = 0.5

    public init(
        kind: WorkloadKind, memoryBytes: Int64, dataBytes: Int64, threads: Int, limit: WorkloadLimit,
        writeRatio: Double = defaultWriteRatio, theta: Double = defaultTheta, loadFactor: Double = defaultLoadFactor,
        seed: UInt64 = defaultSeed, swapProtocol: BenchProtocol = .swapcache,
        reclaimPolicy: ReclaimPolicy = .frequency, backgroundReclaim: Bool = true
    ) {
        self.kind = kind
        self.memoryBytes = memoryBytes
        self.dataBytes = dataBytes
        self.threads = threads
        self.limit = limit
        self.writeRatio = writeRatio
        self.theta = theta
        self.loadFactor = loadFactor
        self.seed = seed
        self.swapProtocol = swapProtocol
        self.reclaimPolicy = reclaimPolicy
        self.backgroundReclaim = backgroundReclaim
    }

    /// Pages of data.
    public var dataPages: Int { Int((dataBytes + 4095) / 4096) }

    /// Swap to give the run: twice the data, so the device stays under half full and swapped-in
    /// pages keep their slots (a clean page then leaves memory without a write; over half full
    /// the engine frees slots on swap-in, as the kernel does), and never less than two swap
    /// clusters (4 MiB) after the header. `swapSizeBytes` overrides it.
    public var swapBytes: Int64 {
        swapSizeBytes ?? Self.defaultSwapBytes(dataPages: dataPages)
    }

    /// Twice the data and a header page, at least two clusters: the default of `swapBytes`.
    public static func defaultSwapBytes(dataPages: Int) -> Int64 {
        max(Int64(dataPages) * 4096 * 2, 4 << 20) + 4096
    }

    /// The engine's protocol.
    public var sync: SwapInSync { swapProtocol.sync() }

    /// The configuration's problems, in words that say what to change; empty when it can run.
    public func problems() -> [String] {
        var problems: [String] = []
        if memoryBytes < 64 << 10 {
            problems.append("a RAM budget of \(ByteSize.format(memoryBytes)) is too small; give at least 64K")
        }
        if dataPages < 2 {
            problems.append("\(ByteSize.format(dataBytes)) of data is less than two pages; give at least 8K")
        }
        if dataPages > 1 << 31 {
            problems.append("\(ByteSize.format(dataBytes)) of data is more than 2^31 pages (8 TiB)")
        }
        if !(0...1).contains(writeRatio) { problems.append("a write ratio is between 0 and 1, not \(writeRatio)") }
        if !(theta > 0 && theta < 1) { problems.append("Zipf's θ must be above 0 and below 1, not \(theta)") }
        if !(loadFactor > 0 && loadFactor <= 0.9) { problems.append("a load factor is above 0 and at most 0.9, not \(loadFactor)") }
        if threads < 1 { problems.append("a run needs at least one thread") }
        if !(1...4096).contains(batch) { problems.append("a batch is 1 to 4096 keys, not \(batch)") }
        if folioBytes < SwapPage.size || folioBytes > 2 << 20 || folioBytes & (folioBytes - 1) != 0 {
            problems.append("a folio is a power of two from 4K to 2M, not \(ByteSize.format(Int64(folioBytes)))")
        }
        if let swapSizeBytes, swapSizeBytes < (4 << 20) + 4096 || swapSizeBytes % 4096 != 0 {
            problems.append(
                "a swap size is a whole number of 4 KiB pages, at least 4M + 4K (two clusters and the header), not \(ByteSize.format(swapSizeBytes))"
            )
        }
        if !(1...64).contains(pageRepeats) || pageRepeats & (pageRepeats - 1) != 0 {
            problems.append("page repeats are a power of two from 1 to 64, not \(pageRepeats)")
        }
        return problems
    }

    /// The workload over a fresh region (or table) of the data's size in `space`.
    /// The workload over an explicit region of `space`, or a transparent one.
    func makeWorkload(in space: SwapSpace, transparent: Bool = false) throws -> any Workload {
        if transparent {
            return try makeWorkload { pages in try TransparentPageStore(space: space, pages: pages, faults: transparentFaults) }
        }
        return try makeWorkload { pages in try RegionPageStore(space: space, pages: pages, folioSize: folioBytes) }
    }

    /// The workload over a store of the data's size made by `makeStore(pages)`: a region, or
    /// plain anonymous memory for the kernel's swap. Its phases are made here, where every type
    /// is known, so that the timing loops are specialized (`PreparedWorkload`).
    func makeWorkload<Store: PageStore>(_ makeStore: (_ pages: Int) throws -> Store) throws -> any Workload {
        let pages = dataPages
        let period = PagePattern.words / pageRepeats
        switch kind {
        case .zipf:
            let store = PatternedPages(store: try makeStore(pages), seed: seed, period: period)
            return PreparedWorkload(
                PageAccessWorkload(
                    store: store, pattern: ZipfPattern(pages: pages, theta: theta, seed: seed), writeRatio: writeRatio, seed: seed))
        case .random:
            let store = PatternedPages(store: try makeStore(pages), seed: seed, period: period)
            return PreparedWorkload(
                PageAccessWorkload(store: store, pattern: RandomPattern(pages: pages), writeRatio: writeRatio, seed: seed))
        case .seq:
            let store = PatternedPages(store: try makeStore(pages), seed: seed, period: period)
            return PreparedWorkload(
                PageAccessWorkload(store: store, pattern: SequentialPattern(pages: pages), writeRatio: writeRatio, seed: seed))
        case .usemem:
            return PreparedWorkload(UsememWorkload(store: PatternedPages(store: try makeStore(pages), seed: seed, period: period)))
        case .hashtable:
            let table = PagedHashTable(store: try makeStore(pages), seed: seed)
            return PreparedWorkload(PagedHashTableWorkload(table: table, loadFactor: loadFactor, seed: seed))
        case .multiget:
            let table = PagedHashTable(store: try makeStore(pages), seed: seed)
            return PreparedWorkload(MultigetWorkload(table: table, loadFactor: loadFactor, batch: batch, prefetches: prefetch, seed: seed))
        }
    }
}

/// A workload whose phases were made when it was wrapped, where its concrete type was known.
///
/// Reached through `any Workload`, a generic workload's `phases` would run as unspecialized
/// generic code, and so would every closure it makes: the workers' timing loops would call the
/// pattern and the page store through witness tables on every step. Made in a context where
/// the type is concrete (`WorkloadConfiguration.makeWorkload`), the phases and their loops are
/// specialized, and the existential is only crossed once per phase.
struct PreparedWorkload: Workload {
    let summary: String
    let phases: [WorkloadPhase]
    let verification: VerificationLedger
    let readChecks: VerificationLedger
    let verifiedUnit: String
    private let verify: WorkloadPhase
    private let problems: @Sendable () -> [String]

    init<W: Workload>(_ workload: W) {
        summary = workload.summary
        phases = workload.phases
        verify = workload.verificationPhase()
        verification = workload.verification
        readChecks = workload.readChecks
        verifiedUnit = workload.verifiedUnit
        problems = { workload.finalProblems() }
    }

    func verificationPhase() -> WorkloadPhase { verify }
    func finalProblems() -> [String] { problems() }
}

extension ReclaimPolicy {
    /// As `--param policy=` and the JSON reports spell it: `frequency`, `workingset`,
    /// `active_inactive`, `second_chance`.
    package var benchName: String {
        switch self {
        case .frequency: "frequency"
        case .workingset: "workingset"
        case .activeInactive: "active_inactive"
        case .secondChance: "second_chance"
        }
    }

    package init?(benchName: String) {
        guard let match = Self.allCases.first(where: { $0.benchName == benchName }) else { return nil }
        self = match
    }
}

extension BenchOptions {
    /// `--param policy=NAME` (default: frequency); `alsoAccepted` are words the caller handles
    /// itself, named in the error.
    func reclaimPolicy(orAlso alsoAccepted: [String] = []) throws -> ReclaimPolicy {
        let name: String = try parameter("policy", default: ReclaimPolicy.frequency.benchName)
        guard let policy = ReclaimPolicy(benchName: name) else {
            let words = ReclaimPolicy.allCases.map(\.benchName) + alsoAccepted
            throw BenchError("--param policy=\(name): use \(words.joined(separator: ", "))")
        }
        return policy
    }
}
