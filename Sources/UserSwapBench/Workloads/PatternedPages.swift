import UserSwap

/// Pages whose every write leaves a checkable pattern (`PagePattern`), with the version of each
/// page's latest write kept in `PageVersions`: the data of the page workloads (`random`, `seq`,
/// `zipf`, `usemem`), over any `PageStore` (a UserSwap region, or plain memory the kernel
/// swaps). Reads check the page against the latest version; `verificationPhase` re-reads every
/// page that was ever touched and checks all of it.
///
/// Each access brings the page in first (`PageStore.withPage`, which may swap it in: slow, and
/// done without any workload lock), then takes the page's version lock for the copy or the
/// check. Two threads writing one page so serialize their writes, and a read never sees half of
/// one.
public final class PatternedPages<Store: PageStore>: Sendable {
    public let store: Store
    public let versions: PageVersions
    public let seed: UInt64
    /// Words before the page's pattern repeats (`PagePattern`): 512 for incompressible pages.
    public let period: Int
    public let readChecks = VerificationLedger()
    public let verification = VerificationLedger()

    public init(store: Store, seed: UInt64, period: Int = PagePattern.words) {
        require(store.pageCount >= 1, "patterned pages need at least one page")
        require(period >= 1 && period <= PagePattern.words && period & (period - 1) == 0, "period \(period)")
        self.period = period
        self.store = store
        versions = PageVersions(count: store.pageCount)
        self.seed = seed
    }

    public var pageCount: Int { store.pageCount }

    /// Writes the next version of `page`.
    @inline(__always)
    public func write(_ page: Int) throws(Store.Failure) {
        try store.withPage(page, for: .write) { bytes in
            let version = PageVersions.successor(of: versions.lock(page))
            PagePattern.fill(bytes, page: page, version: version, seed: seed, period: period)
            versions.unlock(page, version: version)
        }
    }

    /// Reads `page` and checks it against its latest version: its first and last words, or all
    /// of it with `fully`. A mismatch is recorded in `ledger`; returns whether it matched.
    @inline(__always)
    @discardableResult
    public func read(_ page: Int, fully: Bool = false, ledger: VerificationLedger) throws(Store.Failure) -> Bool {
        let (matches, version, first) = try store.withPage(page, for: .read) { bytes in
            let version = versions.lock(page)
            let bytes = UnsafeRawBufferPointer(bytes)
            let matches =
                fully
                ? PagePattern.check(bytes, page: page, version: version, seed: seed, period: period)
                : PagePattern.quickCheck(bytes, page: page, version: version, seed: seed, period: period)
            versions.unlock(page, version: version)
            return (matches, version, matches ? 0 : bytes.load(fromByteOffset: 0, as: UInt64.self))
        }
        if !matches {
            ledger.mismatch(
                "page \(page): expected version \(version), first word \(String(first, radix: 16)) (\(version == 0 ? "should be zero" : "expected \(String(PagePattern.base(page: page, version: version, seed: seed), radix: 16))"))"
            )
        }
        return matches
    }

    /// The final check: every page ever touched (written, or read while still zero) is brought
    /// in and compared in full with its latest version. Pages the store knows were never touched
    /// are skipped, so the check does not itself fault in the untouched part of the data.
    public func verificationPhase() -> WorkloadPhase {
        WorkloadPhase("verify", measured: false, length: .steps(pageCount)) { [self] thread, threads in
            Verifier(pages: self, share: WorkloadPhase.share(of: pageCount, thread: thread, threads: threads))
        }
    }

    /// Walks one thread's share of the pages.
    struct Verifier: WorkloadWorker {
        let pages: PatternedPages
        var next: Int
        let end: Int
        var checked = 0

        init(pages: PatternedPages, share: Range<Int>) {
            self.pages = pages
            next = share.lowerBound
            end = share.upperBound
        }

        mutating func step() throws {
            require(next < end, "the driver steps each share exactly")
            let page = next
            next += 1
            // Between phases nobody holds a lock: the version is the latest write's.
            if pages.versions.version(page) == 0 && pages.store.isUntouched(page) { return }
            try pages.read(page, fully: true, ledger: pages.verification)
            checked += 1
        }

        mutating func finish() { pages.verification.add(checked: checked) }
    }
}

/// The page workloads' data in a UserSwap region: what `userswap run` and the explicit-mode
/// benchmarks use.
public typealias PatternedRegion = PatternedPages<RegionPageStore>

extension PatternedPages where Store == RegionPageStore {
    /// A fresh region of `pages` pages in `space`.
    public convenience init(space: SwapSpace, pages: Int, seed: UInt64) throws(SwapError) {
        self.init(store: try RegionPageStore(space: space, pages: pages), seed: seed)
    }

    public var region: Region { store.region }
}
