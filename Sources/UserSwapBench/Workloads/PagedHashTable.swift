import UserSwap

/// An open-addressing hash table of `UInt64` keys whose records live in pages of a `PageStore`
/// (a swappable region, or plain memory the kernel swaps): a real data structure, larger than
/// the RAM budget, for the `hashtable` workload.
///
/// A record is 64 bytes, one cache line: the key, then seven value words that are a function of
/// the key (`valueWord`), so every lookup can check the whole value it finds. Value word 1 is
/// never zero; an all-zero record is an empty slot, which is what a fresh page reads as.
///
/// Linear probing from the key's home slot; a probe that reaches the end of a page goes on at
/// the start of the next (wrapping at the end of the table). Each page has a lock
/// (`PageVersions`), taken after the page is brought in (so never across a fault) and held
/// while the page's records are read or changed, so threads may insert and look up at once. An
/// insert accesses the page for writing: that marks it dirty, so reclaim writes it out rather
/// than dropping a stale copy. Records are never removed, so a slot once full stays full, and
/// every slot between a key's home and the key is full: a lookup that meets an empty slot has
/// proved the key absent.
public final class PagedHashTable<Store: PageStore>: Sendable {
    public static var recordBytes: Int { 64 }
    static var recordWords: Int { recordBytes / 8 }
    public static var recordsPerPage: Int { 4096 / recordBytes }

    public let store: Store
    let locks: PageVersions
    /// Records the table holds at most.
    public let capacity: Int
    let seed: UInt64

    /// A table over every page of `store`.
    public init(store: Store, seed: UInt64) {
        require(store.pageCount >= 1, "a hash table needs at least one page")
        self.store = store
        locks = PageVersions(count: store.pageCount)
        capacity = store.pageCount * Self.recordsPerPage
        self.seed = seed
    }

    public var pageCount: Int { store.pageCount }

    /// The slot a key's probe starts at: its hash, mapped onto 0..<capacity by a multiply (no
    /// division, no bias worth a mention).
    @inline(__always)
    func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: SplitMix64.mix(key ^ seed).multipliedFullWidth(by: UInt64(capacity)).high)
    }

    /// The page of `key`'s home slot: the page its lookup reads first (and, but for a probe that
    /// runs off the page's end, the only one).
    @inline(__always)
    public func homePage(_ key: UInt64) -> Int { home(key) / Self.recordsPerPage }

    /// Value word `index` (1…7) of `key`'s record; word 1 is never zero.
    @inline(__always)
    static func valueWord(_ key: UInt64, _ index: Int, seed: UInt64) -> UInt64 {
        SplitMix64.mix(key &+ UInt64(truncatingIfNeeded: index) &* SplitMix64.increment ^ seed) | 1
    }

    /// Inserts `key` (not already present) with its value. Throws when the table is full.
    public func insert(_ key: UInt64) throws {
        var slot = home(key)
        var probed = 0
        while true {
            let page = slot / Self.recordsPerPage
            let first = slot % Self.recordsPerPage
            let inserted = try store.withPage(page, for: .write) { bytes in
                let version = locks.lock(page)
                let records = bytes.baseAddress!
                for index in first..<Self.recordsPerPage {
                    let offset = index * Self.recordBytes
                    if records.load(fromByteOffset: offset + 8, as: UInt64.self) == 0 {
                        records.storeBytes(of: key, toByteOffset: offset, as: UInt64.self)
                        for word in 1..<Self.recordWords {
                            records.storeBytes(of: Self.valueWord(key, word, seed: seed), toByteOffset: offset + word * 8, as: UInt64.self)
                        }
                        locks.unlock(page, version: PageVersions.successor(of: version))
                        return true
                    }
                }
                locks.unlock(page, version: version)
                return false
            }
            if inserted { return }
            probed += Self.recordsPerPage
            guard probed <= capacity + Self.recordsPerPage else {
                throw WorkloadError("the hash table is full (\(capacity) records): lower the load factor")
            }
            slot = (page + 1) % pageCount * Self.recordsPerPage
        }
    }

    /// What a lookup found.
    public enum Lookup: Equatable, Sendable {
        /// The key, with every value word as it must be.
        case found
        /// The key, with a wrong value word.
        case corrupt(word: Int, value: UInt64)
        /// An empty slot before the key: it is not in the table.
        case missing
    }

    /// Looks `key` up and checks its whole value.
    public func lookup(_ key: UInt64) throws(Store.Failure) -> Lookup {
        var slot = home(key)
        var probed = 0
        while probed <= capacity {
            let page = slot / Self.recordsPerPage
            let first = slot % Self.recordsPerPage
            // nil: the key is not on this page, go on to the next.
            let found: Lookup? = try store.withPage(page, for: .read) { bytes in
                let version = locks.lock(page)
                defer { locks.unlock(page, version: version) }
                let records = UnsafeRawPointer(bytes.baseAddress!)
                for index in first..<Self.recordsPerPage {
                    let offset = index * Self.recordBytes
                    if records.load(fromByteOffset: offset + 8, as: UInt64.self) == 0 { return .missing }
                    if records.load(fromByteOffset: offset, as: UInt64.self) == key {
                        for word in 1..<Self.recordWords {
                            let value = records.load(fromByteOffset: offset + word * 8, as: UInt64.self)
                            if value != Self.valueWord(key, word, seed: seed) { return .corrupt(word: word, value: value) }
                        }
                        return .found
                    }
                }
                return nil
            }
            if let found { return found }
            probed += Self.recordsPerPage
            slot = (page + 1) % pageCount * Self.recordsPerPage
        }
        return .missing
    }

    /// Checks every record of `page`: each full slot's value must match its key, each empty one
    /// must be all zero. Returns the full slots and the bad ones' descriptions.
    public func scan(page: Int) throws(Store.Failure) -> (records: Int, problems: [String]) {
        try store.withPage(page, for: .read) { bytes in
            let version = locks.lock(page)
            defer { locks.unlock(page, version: version) }
            let records = UnsafeRawPointer(bytes.baseAddress!)
            var full = 0
            var problems: [String] = []
            for index in 0..<Self.recordsPerPage {
                let offset = index * Self.recordBytes
                let key = records.load(fromByteOffset: offset, as: UInt64.self)
                if records.load(fromByteOffset: offset + 8, as: UInt64.self) == 0 {
                    for word in 0..<Self.recordWords where records.load(fromByteOffset: offset + word * 8, as: UInt64.self) != 0 {
                        problems.append("page \(page) record \(index): empty, but word \(word) is not zero")
                        break
                    }
                    continue
                }
                full += 1
                for word in 1..<Self.recordWords
                where records.load(fromByteOffset: offset + word * 8, as: UInt64.self) != Self.valueWord(key, word, seed: seed) {
                    problems.append("page \(page) record \(index): key \(String(key, radix: 16)) has a wrong value word \(word)")
                    break
                }
            }
            return (full, problems)
        }
    }
}

/// The hash table in a UserSwap region: what `userswap run --workload hashtable` and the
/// explicit-mode benchmark use.
public typealias SwappableHashTable = PagedHashTable<RegionPageStore>

extension PagedHashTable where Store == RegionPageStore {
    /// A table of `pages` pages (`pages × 64` records) in a fresh region of `space`.
    public convenience init(space: SwapSpace, pages: Int, seed: UInt64) throws(SwapError) {
        self.init(store: try RegionPageStore(space: space, pages: pages), seed: seed)
    }

    public var region: Region { store.region }
}
