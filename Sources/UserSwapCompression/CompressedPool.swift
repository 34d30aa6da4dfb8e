import Dispatch
import UserSwap

/// What the pool keeps for one page.
enum PoolPayload: Sendable {
    /// Every 8-byte word of the page is this one (zero pages included): no compression, no bytes.
    case sameFilled(UInt64)
    /// The page compressed by the tier's codec, in an array of exactly its length (one heap
    /// block: the array header and the bytes).
    case compressed([UInt8])

    /// Bytes charged to the pool: the compressed length, plus the per-entry overhead (see
    /// `CompressedPool.entryOverhead`); same-filled pages are charged nothing, as in zram.
    var chargedBytes: Int {
        switch self {
        case .sameFilled: 0
        case .compressed(let bytes): bytes.count + CompressedPool.entryOverhead
        }
    }
}

/// A write-back in flight. Its entry stays in the pool while the page is being written to the
/// lower device, so that every transfer of the same page through the tier waits for it: a
/// write that arrived meanwhile could otherwise reach the lower device first and then be
/// overwritten by the older bytes of the write-back.
final class WriteBackTicket {
    /// Threads waiting for this write-back to end. Protected by the pool lock.
    var waiters = 0
    /// Signalled once per waiter when the write-back has ended.
    let done = DispatchSemaphore(value: 0)
}

// `waiters` is only touched under the pool lock; the semaphore is thread-safe.
extension WriteBackTicket: @unchecked Sendable {}

/// One page in the pool.
struct PoolEntry {
    var payload: PoolPayload
    /// The pool's store counter when the entry was stored: its place in LRU order, and its
    /// identity (a page stored again gets a new sequence).
    let sequence: UInt64
    /// Non-nil while the entry is being written back to the lower device.
    var writeBack: WriteBackTicket?
    /// Set when the slot was freed (invalidated) or loaded while its write-back ran: the end of
    /// the write-back then forgets the entry even if the write failed.
    var dropped = false
}

/// A page found by a lookup.
enum PoolLookup {
    case absent
    case stored(PoolPayload, sequence: UInt64)
    /// Being written back: wait for the ticket (the lookup registered the caller as a waiter),
    /// then look again.
    case busy(WriteBackTicket)
}

/// An entry chosen for write-back: its entry stays in the pool, marked with `ticket`, until
/// `finishWriteBackLocked` runs.
struct WriteBackVictim {
    let page: Int
    let sequence: UInt64
    let payload: PoolPayload
    let ticket: WriteBackTicket
}

/// The compressed pool's state (kernel: zswap's per-swap-device trees, its LRU and its pool
/// size). Every field is protected by `CompressedTier.pool`, the pool lock, which is never held
/// across compression, decompression or I/O.
struct CompressedPool {
    /// What an entry costs beyond its compressed bytes, charged to the pool limit: the array
    /// (a 32-byte header, malloc's 16-byte chunk header and rounding), the dictionary bucket
    /// (key and a 40-byte value, at the table's load factor and power-of-two growth) and the
    /// LRU item (16 bytes, with stale items and growth). Measured by `bench tiers` (the resident
    /// set's growth while a pool fills, `resident_bytes_per_page`): compressed bytes + 150…170.
    /// Same-filled entries are charged nothing (as in zram), though they take the same
    /// metadata minus the array and the LRU item.
    static let entryOverhead = 160

    /// The pages in the pool, by page offset on the device.
    var entries: [Int: PoolEntry] = [:]
    /// Compressed entries in store order (oldest first), for write-back.
    var lru = LRUQueue()
    var nextSequence: UInt64 = 1
    /// Bytes charged for the entries not being written back (an entry leaves this count when
    /// its write-back starts).
    private(set) var bytes = 0
    private(set) var peakBytes = 0
    /// Entries with a compressed payload, including those being written back.
    private(set) var compressedPages = 0
    /// Their compressed bytes, without overhead (for the compression ratio).
    private(set) var compressedBytes = 0
    private(set) var sameFilledPages = 0
    /// The most bytes the pool may be charged.
    let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// Where `page` stands. A page being written back registers the caller as a waiter.
    mutating func lookupLocked(_ page: Int) -> PoolLookup {
        guard let entry = entries[page] else { return .absent }
        if let ticket = entry.writeBack {
            ticket.waiters += 1
            return .busy(ticket)
        }
        return .stored(entry.payload, sequence: entry.sequence)
    }

    /// Registers the caller as a waiter if `page` is being written back.
    mutating func writeBackInProgressLocked(_ page: Int) -> WriteBackTicket? {
        guard let ticket = entries[page]?.writeBack else { return nil }
        ticket.waiters += 1
        return ticket
    }

    /// Removes `page`'s entry (a freed slot, or a page about to be stored again) and returns its
    /// payload, for the caller to release after unlocking. An entry being written back is only
    /// marked dropped: its write-back forgets it when it ends.
    mutating func removeLocked(_ page: Int) -> PoolPayload? {
        guard var entry = entries[page] else { return nil }
        if entry.writeBack != nil {
            entry.dropped = true
            entries[page] = entry
            return nil
        }
        entries[page] = nil
        uncount(entry.payload, charged: true)
        return entry.payload
    }

    /// After a load of `page` copied out the entry stored as `sequence`: the load is exclusive,
    /// so the entry goes (or, if its write-back started meanwhile, is marked dropped). Returns
    /// whether the load consumed the entry, and the payload to release after unlocking.
    ///
    /// A write-back may have started *and finished* while the load decompressed outside the
    /// lock: the entry is gone and the page is on the lower device. The load then did not
    /// consume anything — the lower device holds the page, so the caller's copy may stay clean.
    mutating func consumeLocked(_ page: Int, sequence: UInt64) -> (consumed: Bool, released: PoolPayload?) {
        guard let entry = entries[page] else { return (false, nil) }
        // Only the engine stores this page, and it does not while it loads it.
        require(entry.sequence == sequence, "page \(page) was stored again during its load")
        return (true, removeLocked(page))
    }

    /// Stores `payload` for `page`, which has no entry, after choosing as many of the oldest
    /// entries for write-back as it takes to stay within the limit. Returns nil, storing
    /// nothing, if even that cannot make room (the page then goes to the lower device).
    mutating func insertLocked(_ page: Int, _ payload: PoolPayload, victims: inout [WriteBackVictim]) -> Bool {
        assert(entries[page] == nil, "page \(page) is already in the pool")
        let charge = payload.chargedBytes
        guard charge <= limit else { return false }
        while bytes + charge > limit {
            guard let victim = startWriteBackLocked() else { return false }
            victims.append(victim)
        }
        let sequence = nextSequence
        nextSequence += 1
        entries[page] = PoolEntry(payload: payload, sequence: sequence)
        switch payload {
        case .sameFilled:
            sameFilledPages += 1
        case .compressed(let data):
            compressedPages += 1
            compressedBytes += data.count
            lru.append(sequence: sequence, page: page)
        }
        bytes += charge
        peakBytes = max(peakBytes, bytes)
        compactLRULocked()
        return true
    }

    /// Takes the oldest compressed entry out of the byte count and marks it as being written
    /// back; nil if there is none. (Same-filled entries cost no bytes and are never written back.)
    mutating func startWriteBackLocked() -> WriteBackVictim? {
        while let (sequence, page) = lru.popFirst() {
            // A stale item: the entry was loaded, freed or stored again since.
            guard var entry = entries[page], entry.sequence == sequence, entry.writeBack == nil else { continue }
            let ticket = WriteBackTicket()
            entry.writeBack = ticket
            entries[page] = entry
            bytes -= entry.payload.chargedBytes
            return WriteBackVictim(page: page, sequence: sequence, payload: entry.payload, ticket: ticket)
        }
        return nil
    }

    /// Ends `victim`'s write-back and returns how many threads to wake. Written (or dropped
    /// meanwhile): the entry goes. Failed: the entry is kept, back in the byte count and at the
    /// young end of the LRU, so that a later write-back tries again.
    mutating func finishWriteBackLocked(_ victim: WriteBackVictim, written: Bool) -> (waiters: Int, released: PoolPayload?) {
        guard var entry = entries[victim.page], entry.sequence == victim.sequence, entry.writeBack === victim.ticket else {
            trap("pool entry of page \(victim.page) changed during its write-back")
        }
        let waiters = victim.ticket.waiters
        if written || entry.dropped {
            entries[victim.page] = nil
            uncount(entry.payload, charged: false)
            return (waiters, entry.payload)
        }
        entry.writeBack = nil
        entries[victim.page] = entry
        bytes += entry.payload.chargedBytes
        peakBytes = max(peakBytes, bytes)
        lru.append(sequence: entry.sequence, page: victim.page)
        return (waiters, nil)
    }

    /// Takes a payload out of the counts. `charged`: whether it was still in `bytes` (not under
    /// write-back).
    private mutating func uncount(_ payload: PoolPayload, charged: Bool) {
        if charged { bytes -= payload.chargedBytes }
        switch payload {
        case .sameFilled:
            sameFilledPages -= 1
        case .compressed(let data):
            compressedPages -= 1
            compressedBytes -= data.count
        }
    }

    /// Drops stale LRU items once they outnumber the live ones by far, so that the queue stays
    /// within a small multiple of the pool (amortised O(1) per store).
    private mutating func compactLRULocked() {
        guard lru.count > 2 * compressedPages + 1024 else { return }
        let entries = self.entries
        lru.removeAll { sequence, page in
            guard let entry = entries[page] else { return true }
            return entry.sequence != sequence || entry.writeBack != nil
        }
    }

    /// Problems with the counts, for tests: every figure recomputed from the entries.
    func problems() -> [String] {
        var problems: [String] = []
        var charged = 0, compressed = 0, compressedBytes = 0, same = 0
        for (page, entry) in entries {
            if entry.writeBack == nil { charged += entry.payload.chargedBytes }
            switch entry.payload {
            case .sameFilled: same += 1
            case .compressed(let data):
                compressed += 1
                compressedBytes += data.count
                if data.isEmpty { problems.append("page \(page): empty compressed payload") }
            }
        }
        if charged != bytes { problems.append("pool charged \(bytes) bytes, entries add up to \(charged)") }
        if compressed != compressedPages { problems.append("\(compressedPages) compressed pages counted, \(compressed) in the pool") }
        if compressedBytes != self.compressedBytes {
            problems.append("\(self.compressedBytes) compressed bytes counted, \(compressedBytes) in the pool")
        }
        if same != sameFilledPages { problems.append("\(sameFilledPages) same-filled pages counted, \(same) in the pool") }
        if bytes > limit { problems.append("pool at \(bytes) bytes, over its limit of \(limit)") }
        let queued = Set(lru.items.map { $0.sequence })
        for (page, entry) in entries where entry.writeBack == nil {
            if case .compressed = entry.payload, !queued.contains(entry.sequence) {
                problems.append("page \(page) (sequence \(entry.sequence)) is not on the LRU")
            }
        }
        return problems
    }
}

/// The pool's LRU: (sequence, page) in store order. Entries that leave the pool are not taken
/// out (that would need a linked list per entry); their items go stale and are skipped when they
/// reach the front, or dropped in bulk by `removeAll(where:)`.
struct LRUQueue {
    private var storage: [(sequence: UInt64, page: Int)] = []
    /// Index of the oldest live item in `storage`.
    private var head = 0

    var count: Int { storage.count - head }

    /// The items, oldest first.
    var items: ArraySlice<(sequence: UInt64, page: Int)> { storage[head...] }

    mutating func append(sequence: UInt64, page: Int) {
        storage.append((sequence, page))
    }

    mutating func popFirst() -> (sequence: UInt64, page: Int)? {
        guard head < storage.count else { return nil }
        let item = storage[head]
        head += 1
        // Give the consumed front back once it is most of the array.
        if head >= 1024, head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return item
    }

    mutating func removeAll(where stale: (UInt64, Int) -> Bool) {
        storage = storage[head...].filter { !stale($0.sequence, $0.page) }
        head = 0
    }
}
