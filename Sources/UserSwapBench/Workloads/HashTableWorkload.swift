import Synchronization
import UserSwap

/// `hashtable`: a `PagedHashTable` the size of the data, filled to `loadFactor` with distinct
/// keys by all threads at once (each inserts its share), then every key looked up and its value
/// checked. Both phases are measured; every insert and lookup lands on a random page, so with a
/// table 4× the budget about three in four need a swap-in. Verification scans the whole table:
/// every record must be intact and the table must hold exactly the keys inserted. Over any
/// `PageStore`: a UserSwap region (`HashTableWorkload`), or plain memory the kernel swaps.
public struct PagedHashTableWorkload<Store: PageStore>: Workload {
    public let table: PagedHashTable<Store>
    /// Keys inserted: `loadFactor × capacity`.
    public let keyCount: Int
    public let seed: UInt64
    public let readChecks = VerificationLedger()
    public let verification = VerificationLedger()
    /// Full records the verification scan found.
    let recordsFound = VerificationLedger()

    public init(table: PagedHashTable<Store>, loadFactor: Double, seed: UInt64) {
        require(loadFactor > 0 && loadFactor <= 0.9, "an open-addressing table needs room: load factor 0…0.9")
        self.table = table
        keyCount = max(1, Int(Double(table.capacity) * loadFactor))
        self.seed = seed
    }

    public var summary: String {
        "hashtable: \(keyCount) keys inserted into \(table.capacity) slots of \(PagedHashTable<Store>.recordBytes) bytes (\(table.pageCount) pages), then looked up"
    }

    public var verifiedUnit: String { "pages of the table" }

    /// Key `index` of the run: distinct for distinct indices (SplitMix64's mixer is a bijection).
    @inline(__always)
    public static func key(_ index: Int, seed: UInt64) -> UInt64 {
        SplitMix64.mix(UInt64(index) &+ SplitMix64.mix(seed ^ 0x6B65_7973))
    }

    public var phases: [WorkloadPhase] {
        let table = table, keys = keyCount, seed = seed, ledger = readChecks
        return [
            WorkloadPhase("insert", measured: true, length: .steps(keys)) { thread, threads in
                KeyWalker(
                    table: table, keys: WorkloadPhase.share(of: keys, thread: thread, threads: threads), seed: seed, inserts: true,
                    ledger: ledger)
            },
            WorkloadPhase("lookup", measured: true, length: .steps(keys)) { thread, threads in
                KeyWalker(
                    table: table, keys: WorkloadPhase.share(of: keys, thread: thread, threads: threads), seed: seed, inserts: false,
                    ledger: ledger)
            },
        ]
    }

    public func verificationPhase() -> WorkloadPhase {
        let table = table, verification = verification, found = recordsFound
        return WorkloadPhase("verify", measured: false, length: .steps(table.pageCount)) { thread, threads in
            Scanner(
                table: table, next: WorkloadPhase.share(of: table.pageCount, thread: thread, threads: threads).lowerBound,
                verification: verification, found: found)
        }
    }

    public func finalProblems() -> [String] {
        recordsFound.checked == keyCount ? [] : ["the table holds \(recordsFound.checked) records; \(keyCount) keys were inserted"]
    }

    /// One thread's share of the keys, inserted or looked up in order.
    struct KeyWalker: WorkloadWorker {
        let table: PagedHashTable<Store>
        var next: Int
        let seed: UInt64
        let inserts: Bool
        let ledger: VerificationLedger
        var lookups = 0

        init(table: PagedHashTable<Store>, keys: Range<Int>, seed: UInt64, inserts: Bool, ledger: VerificationLedger) {
            self.table = table
            next = keys.lowerBound
            self.seed = seed
            self.inserts = inserts
            self.ledger = ledger
        }

        mutating func step() throws {
            let key = PagedHashTableWorkload.key(next, seed: seed)
            if inserts {
                try table.insert(key)
            } else {
                let found = try table.lookup(key)
                lookups += 1
                if found != .found {
                    ledger.mismatch("key #\(next) (\(String(key, radix: 16))): \(found)")
                }
            }
            next += 1
        }

        mutating func finish() { ledger.add(checked: lookups) }
    }

    /// Scans one thread's share of the table's pages.
    struct Scanner: WorkloadWorker {
        let table: PagedHashTable<Store>
        var next: Int
        let verification: VerificationLedger
        let found: VerificationLedger
        var pages = 0
        var records = 0

        mutating func step() throws {
            let (full, problems) = try table.scan(page: next)
            next += 1
            pages += 1
            records += full
            for problem in problems { verification.mismatch(problem) }
        }

        mutating func finish() {
            verification.add(checked: pages)
            found.add(checked: records)
        }
    }
}

/// The hash-table workload in a UserSwap region.
public typealias HashTableWorkload = PagedHashTableWorkload<RegionPageStore>
