import UserSwap

/// A region whose every write leaves a checkable pattern (`PagePattern`), with the version of each
/// page's latest write kept in `PageVersions`: the data store of the page workloads (`random`,
/// `seq`, `zipf`, `usemem`). Reads check the page against the latest version; `verificationPhase`
/// re-reads every page that was ever touched and checks all of it.
///
/// Each access pins the page first (which may fault it in from swap: slow, and done without any
/// workload lock), then takes the page's version lock for the copy or the check. Two threads
/// writing one page so serialize their writes, and a read never sees half of one.
public final class PatternedRegion: Sendable {
    public let region: Region
    public let versions: PageVersions
    public let seed: UInt64
    public let readChecks = VerificationLedger()
    public let verification = VerificationLedger()

    public init(space: SwapSpace, pages: Int, seed: UInt64) throws(SwapError) {
        precondition(pages >= 1)
        region = try space.makeRegion(bytes: pages * 4096)
        versions = PageVersions(count: pages)
        self.seed = seed
    }

    public var pageCount: Int { region.pageCount }

    /// Writes the next version of `page`.
    @inline(__always)
    public func write(_ page: Int) throws(SwapError) {
        let pin = try region.pin(page, for: .write)
        let version = PageVersions.successor(of: versions.lock(page))
        PagePattern.fill(pin.bytes, page: page, version: version, seed: seed)
        versions.unlock(page, version: version)
    }

    /// Reads `page` and checks it against its latest version: its first and last words, or all
    /// of it with `fully`. A mismatch is recorded in `ledger`; returns whether it matched.
    @inline(__always)
    @discardableResult
    public func read(_ page: Int, fully: Bool = false, ledger: VerificationLedger) throws(SwapError) -> Bool {
        let pin = try region.pin(page, for: .read)
        let version = versions.lock(page)
        let bytes = UnsafeRawBufferPointer(pin.bytes)
        let matches = fully
            ? PagePattern.check(bytes, page: page, version: version, seed: seed)
            : PagePattern.quickCheck(bytes, page: page, version: version, seed: seed)
        versions.unlock(page, version: version)
        if !matches {
            let first = bytes.load(fromByteOffset: 0, as: UInt64.self)
            ledger.mismatch("page \(page): expected version \(version), first word \(String(first, radix: 16)) (\(version == 0 ? "should be zero" : "expected \(String(PagePattern.base(page: page, version: version, seed: seed), radix: 16))"))")
        }
        return matches
    }

    /// The final check: every page ever touched (written, or read while still zero) is pinned
    /// and compared in full with its latest version. Pages never touched are skipped, so the
    /// check does not itself fault in the untouched part of the region.
    public func verificationPhase() -> WorkloadPhase {
        WorkloadPhase("verify", measured: false, length: .steps(pageCount)) { [self] thread, threads in
            Verifier(store: self, pages: WorkloadPhase.share(of: pageCount, thread: thread, threads: threads))
        }
    }

    /// Walks one thread's share of the pages.
    struct Verifier: WorkloadWorker {
        let store: PatternedRegion
        var next: Int
        let end: Int
        var checked = 0

        init(store: PatternedRegion, pages: Range<Int>) {
            self.store = store
            next = pages.lowerBound
            end = pages.upperBound
        }

        mutating func step() throws {
            precondition(next < end, "the driver steps each share exactly")
            let page = next
            next += 1
            // Between phases nobody holds a lock: the version is the latest write's.
            if store.versions.version(page) == 0 && store.region.state(ofPage: page) == .untouched { return }
            try store.read(page, fully: true, ledger: store.verification)
            checked += 1
        }

        mutating func finish() { store.verification.add(checked: checked) }
    }
}
