import UserSwap

/// The workloads `userswap run --workload` and the benchmarks of the same names run.
public enum WorkloadKind: String, CaseIterable, Sendable, Equatable {
    case zipf
    case random
    case seq
    case usemem
    case hashtable

    /// Whether the workload runs until a limit (`--ops`, `--seconds`) and mixes reads and
    /// writes (`--write-ratio`); `usemem` and `hashtable` are fixed jobs sized by the data.
    public var isOpen: Bool {
        switch self {
        case .zipf, .random, .seq: true
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
    public var seed: UInt64
    public var swapProtocol: BenchProtocol
    public var workingsetDetection: Bool
    public var backgroundReclaim: Bool

    public static let defaultSeed: UInt64 = 0x5EED
    public static let defaultWriteRatio = 0.2
    public static let defaultTheta = 0.99
    public static let defaultLoadFactor = 0.5

    public init(
        kind: WorkloadKind, memoryBytes: Int64, dataBytes: Int64, threads: Int, limit: WorkloadLimit,
        writeRatio: Double = defaultWriteRatio, theta: Double = defaultTheta, loadFactor: Double = defaultLoadFactor,
        seed: UInt64 = defaultSeed, swapProtocol: BenchProtocol = .swapcache,
        workingsetDetection: Bool = true, backgroundReclaim: Bool = true
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
        self.workingsetDetection = workingsetDetection
        self.backgroundReclaim = backgroundReclaim
    }

    /// Pages of data.
    public var dataPages: Int { Int((dataBytes + 4095) / 4096) }

    /// Swap to give the run: twice the data, so the device stays under half full and swapped-in
    /// pages keep their slots (a clean page then leaves memory without a write; over half full
    /// the engine frees slots on swap-in, as the kernel does), and never less than two swap
    /// clusters (4 MiB) after the header.
    public var swapBytes: Int64 {
        max(Int64(dataPages) * 4096 * 2, 4 << 20) + 4096
    }

    /// The engine's protocol.
    public var sync: SwapInSync { swapProtocol == .legacy ? .legacy : .swapCache }

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
        return problems
    }

    /// The workload over a fresh region (or table) of the data's size in `space`.
    func makeWorkload(in space: SwapSpace) throws -> any Workload {
        let pages = dataPages
        switch kind {
        case .zipf:
            let store = try PatternedRegion(space: space, pages: pages, seed: seed)
            return PageAccessWorkload(store: store, pattern: ZipfPattern(pages: pages, theta: theta, seed: seed), writeRatio: writeRatio, seed: seed)
        case .random:
            let store = try PatternedRegion(space: space, pages: pages, seed: seed)
            return PageAccessWorkload(store: store, pattern: RandomPattern(pages: pages), writeRatio: writeRatio, seed: seed)
        case .seq:
            let store = try PatternedRegion(space: space, pages: pages, seed: seed)
            return PageAccessWorkload(store: store, pattern: SequentialPattern(pages: pages), writeRatio: writeRatio, seed: seed)
        case .usemem:
            return UsememWorkload(store: try PatternedRegion(space: space, pages: pages, seed: seed))
        case .hashtable:
            let table = try SwappableHashTable(space: space, pages: pages, seed: seed)
            return HashTableWorkload(table: table, loadFactor: loadFactor, seed: seed)
        }
    }
}
