import UserSwap

/// An open-addressing hash table of `UInt64` keys whose records live in a swappable region: a
/// real data structure, larger than the RAM budget, for the `hashtable` workload.
///
/// A record is 64 bytes, one cache line: the key, then seven value words that are a function of
/// the key (`valueWord`), so every lookup can check the whole value it finds. Value word 1 is
/// never zero; an all-zero record is an empty slot, which is what a fresh page reads as.
///
/// Linear probing from the key's home slot; a probe that reaches the end of a page goes on at
/// the start of the next (wrapping at the end of the table). Each page has a lock
/// (`PageVersions`), taken after the page is pinned (so never across a fault) and held while
/// the page's records are read or changed, so threads may insert and look up at once. An insert
/// pins the page for writing: that marks it dirty, so reclaim writes it out rather than
/// dropping a stale copy. Records are never removed, so a slot once full stays full, and every
/// slot between a key's home and the key is full: a lookup that meets an empty slot has proved
/// the key absent.
public final class SwappableHashTable: Sendable {
    public static let recordBytes = 64
    static let recordWords = recordBytes / 8
    public static let recordsPerPage = 4096 / recordBytes

    public let region: Region
    let locks: PageVersions
    /// Records the table holds at most.
    public let capacity: Int
    let seed: UInt64

    /// A table of `pages` pages (`pages × 64` records) in `space`.
    public init(space: SwapSpace, pages: Int, seed: UInt64) throws(SwapError) {
        precondition(pages >= 1)
        region = try space.makeRegion(bytes: pages * 4096)
        locks = PageVersions(count: pages)
        capacity = pages * Self.recordsPerPage
        self.seed = seed
    }

    public var pageCount: Int { region.pageCount }

    /// The slot a key's probe starts at: its hash, mapped onto 0..<capacity by a multiply (no
    /// division, no bias worth a mention).
    @inline(__always)
    func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: SplitMix64.mix(key ^ seed).multipliedFullWidth(by: UInt64(capacity)).high)
    }

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
            let pin = try region.pin(page, for: .write)
            let version = locks.lock(page)
            let records = pin.bytes.baseAddress!
            var index = slot % Self.recordsPerPage
            while index < Self.recordsPerPage {
                let offset = index * Self.recordBytes
                if records.load(fromByteOffset: offset + 8, as: UInt64.self) == 0 {
                    records.storeBytes(of: key, toByteOffset: offset, as: UInt64.self)
                    for word in 1..<Self.recordWords {
                        records.storeBytes(of: Self.valueWord(key, word, seed: seed), toByteOffset: offset + word * 8, as: UInt64.self)
                    }
                    locks.unlock(page, version: PageVersions.successor(of: version))
                    return
                }
                index += 1
            }
            locks.unlock(page, version: version)
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
    public func lookup(_ key: UInt64) throws -> Lookup {
        var slot = home(key)
        var probed = 0
        while probed <= capacity {
            let page = slot / Self.recordsPerPage
            let pin = try region.pin(page, for: .read)
            let version = locks.lock(page)
            defer { locks.unlock(page, version: version) }
            let records = UnsafeRawPointer(pin.bytes.baseAddress!)
            var index = slot % Self.recordsPerPage
            while index < Self.recordsPerPage {
                let offset = index * Self.recordBytes
                let first = records.load(fromByteOffset: offset + 8, as: UInt64.self)
                if first == 0 { return .missing }
                if records.load(fromByteOffset: offset, as: UInt64.self) == key {
                    for word in 1..<Self.recordWords {
                        let value = records.load(fromByteOffset: offset + word * 8, as: UInt64.self)
                        if value != Self.valueWord(key, word, seed: seed) { return .corrupt(word: word, value: value) }
                    }
                    return .found
                }
                index += 1
            }
            probed += Self.recordsPerPage
            slot = (page + 1) % pageCount * Self.recordsPerPage
        }
        return .missing
    }

    /// Checks every record of `page`: each full slot's value must match its key, each empty one
    /// must be all zero. Returns the full slots and the bad ones' descriptions.
    public func scan(page: Int) throws -> (records: Int, problems: [String]) {
        let pin = try region.pin(page, for: .read)
        let version = locks.lock(page)
        defer { locks.unlock(page, version: version) }
        let records = UnsafeRawPointer(pin.bytes.baseAddress!)
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
            for word in 1..<Self.recordWords where records.load(fromByteOffset: offset + word * 8, as: UInt64.self) != Self.valueWord(key, word, seed: seed) {
                problems.append("page \(page) record \(index): key \(String(key, radix: 16)) has a wrong value word \(word)")
                break
            }
        }
        return (full, problems)
    }
}
