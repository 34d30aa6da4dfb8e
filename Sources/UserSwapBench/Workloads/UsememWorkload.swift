/// `usemem`, after the kernel's test of the same name (vm-scalability's `usemem`, run by the
/// swap-table series' benchmarks): each thread fills its contiguous share of the data with
/// writes, in order, then reads the whole share back, checking every word. Both passes are
/// measured; with data larger than the budget the first pass is pure swap-out and the second
/// swaps everything back in.
public struct UsememWorkload<Store: PageStore>: Workload {
    public let store: PatternedPages<Store>

    public init(store: PatternedPages<Store>) {
        self.store = store
    }

    public var summary: String { "usemem: write \(store.pageCount) pages in order, then read them all back" }
    public var readChecks: VerificationLedger { store.readChecks }
    public var verification: VerificationLedger { store.verification }

    public var phases: [WorkloadPhase] {
        let store = store
        let pages = store.pageCount
        return [
            WorkloadPhase("fill", measured: true, length: .steps(pages)) { thread, threads in
                Pass(store: store, pages: WorkloadPhase.share(of: pages, thread: thread, threads: threads), writes: true)
            },
            WorkloadPhase("read", measured: true, length: .steps(pages)) { thread, threads in
                Pass(store: store, pages: WorkloadPhase.share(of: pages, thread: thread, threads: threads), writes: false)
            },
        ]
    }

    public func verificationPhase() -> WorkloadPhase { store.verificationPhase() }

    /// One thread's pass over its share: every page written, or every page read in full.
    struct Pass: WorkloadWorker {
        let store: PatternedPages<Store>
        var next: Int
        let writes: Bool
        var reads = 0

        init(store: PatternedPages<Store>, pages: Range<Int>, writes: Bool) {
            self.store = store
            next = pages.lowerBound
            self.writes = writes
        }

        mutating func step() throws {
            if writes {
                try store.write(next)
            } else {
                try store.read(next, fully: true, ledger: store.readChecks)
                reads += 1
            }
            next += 1
        }

        mutating func finish() { store.readChecks.add(checked: reads) }
    }
}
