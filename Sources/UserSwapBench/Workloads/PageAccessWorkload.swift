import UserSwap

/// The `random`, `seq` and `zipf` workloads: populate every page once (a write each, untimed,
/// so that the data really is `pages` large and most of it starts out on swap), then access
/// pages in the pattern's order until the run's limit, writing a fraction `writeRatio` of them
/// and reading (and checking) the rest, and finally verify every page in full. Over any
/// `PageStore`: a UserSwap region, or plain memory the kernel swaps.
public struct PageAccessWorkload<Store: PageStore, Pattern: AccessPattern>: Workload {
    public let store: PatternedPages<Store>
    public let pattern: Pattern
    /// Fraction of accesses that write, 0…1.
    public let writeRatio: Double
    public let seed: UInt64

    public init(store: PatternedPages<Store>, pattern: Pattern, writeRatio: Double, seed: UInt64) {
        require((0...1).contains(writeRatio), "a write ratio is between 0 and 1")
        self.store = store
        self.pattern = pattern
        self.writeRatio = writeRatio
        self.seed = seed
    }

    public var summary: String {
        "\(pattern.summary) over \(store.pageCount) pages, \(Int((writeRatio * 100).rounded())) % writes"
    }

    public var readChecks: VerificationLedger { store.readChecks }
    public var verification: VerificationLedger { store.verification }

    public var phases: [WorkloadPhase] {
        let store = store
        let pattern = pattern
        // The write threshold on a 64-bit draw; a ratio of 1 must write always.
        let threshold: UInt64 = writeRatio >= 1 ? .max : UInt64(writeRatio * 0x1p64)
        let writesAlways = writeRatio >= 1
        let seed = seed
        return [
            WorkloadPhase("populate", measured: false, length: .steps(store.pageCount)) { thread, threads in
                Populator(store: store, pages: WorkloadPhase.share(of: store.pageCount, thread: thread, threads: threads))
            },
            WorkloadPhase("access", measured: true, length: .open) { thread, threads in
                Accessor(
                    store: store, pattern: pattern,
                    cursor: pattern.makeCursor(thread: thread, threads: threads, pages: store.pageCount),
                    random: Xoshiro256StarStar(seed: seed, thread: thread),
                    threshold: threshold, writesAlways: writesAlways)
            },
        ]
    }

    public func verificationPhase() -> WorkloadPhase { store.verificationPhase() }

    /// Writes one thread's share of the pages, in order.
    struct Populator: WorkloadWorker {
        let store: PatternedPages<Store>
        var next: Int

        init(store: PatternedPages<Store>, pages: Range<Int>) {
            self.store = store
            next = pages.lowerBound
        }

        mutating func step() throws {
            try store.write(next)
            next += 1
        }
    }

    /// One access per step: the pattern's next page, written or read.
    struct Accessor: WorkloadWorker {
        let store: PatternedPages<Store>
        let pattern: Pattern
        var cursor: Pattern.Cursor
        var random: Xoshiro256StarStar
        let threshold: UInt64
        let writesAlways: Bool
        var reads = 0

        mutating func step() throws {
            let page = pattern.nextPage(&cursor, random: &random)
            if writesAlways || random.next() < threshold {
                try store.write(page)
            } else {
                try store.read(page, ledger: store.readChecks)
                reads += 1
            }
        }

        mutating func finish() { store.readChecks.add(checked: reads) }
    }
}
