import Synchronization
import UserSwap

/// `multiget`: the hash table (`PagedHashTable`, as `hashtable` uses it) looked up in batches of
/// `batch` keys, as a cache server answers a multi-key GET: hash every key of the batch, ask the
/// store for all their pages at once (`PageStore.prefetch`: the swap cache for a region,
/// `madvise(MADV_WILLNEED)` for plain memory the kernel swaps), then look each key up and check
/// its whole value. With `prefetch` off the lookups fault their pages one at a time.
///
/// The keys are drawn uniformly from those inserted, each thread from its own generator
/// (`Xoshiro256StarStar(seed:thread:)`), so each lookup lands on a random page of the table.
///
/// The table is filled first (not measured) with keys made so that their home slots rise with
/// their index: key `i`'s hash is in the `i`-th of `keyCount` equal slices of the hash space
/// (`SplitMix64.unmix` gives the key of a hash), at a position within it drawn from the seed.
/// Each thread inserts its contiguous share of indices in order, so the fill streams through
/// the table's pages once, as a bulk load does, rather than making four random swap-ins per
/// key at 4× the budget. Lookups still hash each key (`PagedHashTable.home`); the keys are only
/// spread more evenly than random ones would be (fewer collisions, rarely a probe onto the next
/// page).
public struct MultigetWorkload<Store: PageStore>: Workload {
    public let table: PagedHashTable<Store>
    public let keyCount: Int
    public let batch: Int
    /// Whether a batch's pages are prefetched before its lookups.
    public let prefetches: Bool
    public let seed: UInt64
    public let readChecks = VerificationLedger()
    public let verification = VerificationLedger()
    /// Full records the verification scan found.
    let recordsFound = VerificationLedger()

    public init(table: PagedHashTable<Store>, loadFactor: Double, batch: Int, prefetches: Bool, seed: UInt64) {
        require(loadFactor > 0 && loadFactor <= 0.9, "an open-addressing table needs room: load factor 0…0.9")
        require(batch >= 1, "a batch of \(batch) keys; at least 1")
        self.table = table
        keyCount = max(1, Int(Double(table.capacity) * loadFactor))
        self.batch = batch
        self.prefetches = prefetches
        self.seed = seed
    }

    public var summary: String {
        "multiget: \(keyCount) keys in \(table.capacity) slots (\(table.pageCount) pages), looked up in batches of \(batch)\(prefetches ? ", each batch's pages prefetched first" : ", no prefetch")"
    }

    public var verifiedUnit: String { "pages of the table" }

    /// Key `index` of `count`: the key whose hash (under `table`'s seed) lies in slice `index`
    /// of `count` equal slices of the 64-bit hash space, so that home slots rise with the index.
    /// Distinct indices give distinct keys (distinct hashes, and the hash is a bijection).
    @inline(__always)
    static func key(_ index: Int, of count: Int, tableSeed: UInt64, seed: UInt64) -> UInt64 {
        let slice = UInt64.max / UInt64(count)
        let hash = UInt64(index) &* slice &+ SplitMix64.mix(UInt64(index) ^ seed ^ 0x6D75_6C74) % slice
        return SplitMix64.unmix(hash) ^ tableSeed
    }

    public var phases: [WorkloadPhase] {
        let table = table, keys = keyCount, seed = seed, ledger = readChecks, batch = batch, prefetches = prefetches
        return [
            WorkloadPhase("fill", measured: false, length: .steps(keys)) { thread, threads in
                Filler(
                    table: table, next: WorkloadPhase.share(of: keys, thread: thread, threads: threads).lowerBound, keys: keys, seed: seed)
            },
            WorkloadPhase("multiget", measured: true, length: .open, opsPerStep: batch) { thread, threads in
                BatchReader(
                    table: table, keys: keys, batch: batch, prefetches: prefetches, seed: seed,
                    random: Xoshiro256StarStar(seed: seed, thread: thread), ledger: ledger)
            },
        ]
    }

    public func verificationPhase() -> WorkloadPhase {
        let table = table, verification = verification, found = recordsFound
        return WorkloadPhase("verify", measured: false, length: .steps(table.pageCount)) { thread, threads in
            PagedHashTableWorkload<Store>.Scanner(
                table: table, next: WorkloadPhase.share(of: table.pageCount, thread: thread, threads: threads).lowerBound,
                verification: verification, found: found)
        }
    }

    public func finalProblems() -> [String] {
        recordsFound.checked == keyCount ? [] : ["the table holds \(recordsFound.checked) records; \(keyCount) keys were inserted"]
    }

    /// One thread's share of the keys, inserted in index order (so in page order).
    struct Filler: WorkloadWorker {
        let table: PagedHashTable<Store>
        var next: Int
        let keys: Int
        let seed: UInt64

        mutating func step() throws {
            try table.insert(MultigetWorkload.key(next, of: keys, tableSeed: table.seed, seed: seed))
            next += 1
        }
    }

    /// One batch per step: `batch` random keys hashed, their pages prefetched, each looked up.
    struct BatchReader: WorkloadWorker {
        let table: PagedHashTable<Store>
        let keys: Int
        let batch: Int
        let prefetches: Bool
        let seed: UInt64
        var random: Xoshiro256StarStar
        let ledger: VerificationLedger
        /// The batch's keys and their indices, and its pages (sorted, without repeats); reused.
        var batchKeys: [(index: Int, key: UInt64)] = []
        var pages: [Int] = []
        var lookups = 0

        init(
            table: PagedHashTable<Store>, keys: Int, batch: Int, prefetches: Bool, seed: UInt64, random: Xoshiro256StarStar,
            ledger: VerificationLedger
        ) {
            self.table = table
            self.keys = keys
            self.batch = batch
            self.prefetches = prefetches
            self.seed = seed
            self.random = random
            self.ledger = ledger
            batchKeys.reserveCapacity(batch)
            pages.reserveCapacity(batch)
        }

        mutating func step() throws {
            batchKeys.removeAll(keepingCapacity: true)
            pages.removeAll(keepingCapacity: true)
            for _ in 0..<batch {
                let index = random.next(below: keys)
                let key = MultigetWorkload.key(index, of: keys, tableSeed: table.seed, seed: seed)
                batchKeys.append((index, key))
                pages.append(table.homePage(key))
            }
            if prefetches {
                pages.sort()
                var unique = 0
                for page in pages where unique == 0 || pages[unique - 1] != page {
                    pages[unique] = page
                    unique += 1
                }
                pages.removeLast(pages.count - unique)
                try table.store.prefetch(pages)
            }
            for (index, key) in batchKeys {
                let found = try table.lookup(key)
                if found != .found {
                    ledger.mismatch("key #\(index) (\(String(key, radix: 16))): \(found)")
                }
            }
            lookups += batch
        }

        mutating func finish() { ledger.add(checked: lookups) }
    }
}
