import Synchronization
import UserSwap

/// UserSwap's zswap: a pool of compressed pages in memory in front of a swap device.
///
/// A tier is a `SwapBackend` that wraps another (`lower`, the device below it) and is used like
/// any device: `SwapSpace(.init(memory: …, devices: [.backend(try CompressedTier(lower: file, poolBytes: 64 << 20))]))`.
/// The engine allocates slots on it as usual; the tier only decides where each page's bytes go
/// (kernel: `zswap_store` / `zswap_load` / `zswap_invalidate`, `mm/zswap.c`):
///
/// - **Store** (`write`): a page whose words are all equal is kept as that word (zram's
///   same-filled pages); any other page is compressed outside every lock into a buffer of the
///   reject threshold's size. If it does not fit (`rejectAbove`, 3/4 of a page by default) it
///   is written to the lower device (a *reject*); else it goes to the pool, after the oldest
///   entries have been chosen for write-back if the pool would pass its limit.
/// - **Load** (`readConsuming`): a page in the pool is decompressed into the caller's buffer and,
///   by default, dropped from the pool (an *exclusive* load, as zswap's since the swap cache
///   always holds the folio): the engine marks the page dirty, so it is compressed again if it
///   leaves memory again. Other pages are read from the lower device. A plain `read` never drops
///   the entry (its caller would not know that it holds the only copy).
/// - **Invalidate**: a freed slot's entry is dropped (the engine calls it under the slot's
///   cluster lock: a dictionary removal under the pool lock, nothing else).
/// - **Write-back** (`CompressedTier+WriteBack.swift`): entries chosen for write-back, oldest
///   store first, are decompressed and written to the lower device by the thread whose store
///   needed the room, after it released the pool lock. While that I/O runs the entry stays in
///   the pool marked as busy, and every transfer of the same page through the tier waits for it
///   to end: so an older copy written back can never land on the lower device after a newer
///   write of the page, and a load never reads the lower device before the copy is there. A
///   slot freed or loaded meanwhile marks the busy entry dropped; its write-back then just
///   forgets it (kernel: zswap_writeback_entry's re-check of the tree, and its abort when the
///   slot is cached or freed).
///
/// The engine never runs two transfers of one page at once (the folio lock or the writeback
/// flag holds the page), and the tier keeps that promise towards `lower`: its own write-backs
/// are the only other transfers, and they exclude the engine's as above.
///
/// Lock order: the engine's cluster lock → the pool lock (invalidate); the pool lock is taken
/// alone everywhere else and never held across compression, I/O or a wait.
public final class CompressedTier: SwapBackend {
    /// The device below the pool: rejects and write-backs go there, and loads of pages that are
    /// not in the pool come from there.
    public let lower: any SwapBackend
    /// The compressor of the pool.
    public let codec: CompressionCodec
    /// Pages whose compressed size is above this many bytes go to the lower device.
    public let rejectAbove: Int
    /// Whether `readConsuming` drops the entry it loads (zswap's behaviour; see the type's doc).
    public let exclusiveLoads: Bool

    /// The pool: entries, LRU, byte count. The "pool lock".
    let pool: Mutex<CompressedPool>
    let compressor: _PageCodec
    /// Running totals (statistics only; see `Counters`).
    let counters = Counters()

    /// A tier over `lower` with a pool of at most `poolBytes` (compressed bytes plus a fixed
    /// per-entry overhead, `CompressedTier.entryOverhead`).
    ///
    /// - Parameters:
    ///   - lower: the device that takes what the pool rejects or writes back.
    ///   - poolBytes: the most the pool may hold, entries' overhead included.
    ///   - codec: `.lz4` (default) or `.zstd(level:)`.
    ///   - rejectAbove: the most compressed bytes a page may take to be kept in the pool; 3/4
    ///     of a page by default (zram's `huge_class_size` is about that, zswap rejects only what
    ///     does not shrink at all).
    ///   - exclusiveLoads: drop an entry when the engine loads it (default, as zswap).
    ///
    /// Throws `.invalidArgument` for a negative `poolBytes`, a `rejectAbove` outside
    /// `1..<4096`, or a Zstandard level outside `1...19`.
    public init(
        lower: any SwapBackend, poolBytes: Int, codec: CompressionCodec = .lz4,
        rejectAbove: Int = SwapPage.size * 3 / 4, exclusiveLoads: Bool = true
    ) throws(SwapError) {
        guard poolBytes >= 0 else {
            throw SwapError(.invalidArgument, "a compressed pool of \(poolBytes) bytes; give 0 or more")
        }
        guard rejectAbove > 0 && rejectAbove < SwapPage.size else {
            throw SwapError(.invalidArgument, "rejectAbove \(rejectAbove) must be between 1 and \(SwapPage.size - 1) bytes")
        }
        if case .zstd(let level) = codec, !(1...19).contains(level) {
            throw SwapError(.invalidArgument, "Zstandard level \(level) is outside 1...19; 3 is a good start")
        }
        self.lower = lower
        self.codec = codec
        self.rejectAbove = rejectAbove
        self.exclusiveLoads = exclusiveLoads
        self.pool = Mutex(CompressedPool(limit: poolBytes))
        self.compressor = _PageCodec(codec)
    }

    /// What the pool charges per entry beyond the compressed bytes.
    public static var entryOverhead: Int { CompressedPool.entryOverhead }

    public var pageCount: Int { lower.pageCount }

    // MARK: Loads

    public func read(into buffer: UnsafeMutableRawBufferPointer, atPage page: Int) throws(SwapError) {
        _ = try load(Self.pages(of: buffer), at: page, consume: false)
    }

    public func read(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, atPage page: Int) throws(SwapError) {
        _ = try load(buffers.flatMap(Self.pages(of:)), at: page, consume: false)
    }

    public func readConsuming(into buffer: UnsafeMutableRawBufferPointer, atPage page: Int) throws(SwapError) -> Bool {
        try load(Self.pages(of: buffer), at: page, consume: exclusiveLoads)
    }

    public func readConsuming(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, atPage page: Int) throws(SwapError) -> Bool
    {
        try load(buffers.flatMap(Self.pages(of:)), at: page, consume: exclusiveLoads)
    }

    // MARK: Stores

    public func write(_ buffer: UnsafeRawBufferPointer, atPage page: Int) throws(SwapError) {
        try store(Self.pages(of: buffer), at: page)
    }

    public func write(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, atPage page: Int) throws(SwapError) {
        try store(buffers.flatMap(Self.pages(of:)), at: page)
    }

    // MARK: Freed slots

    public var wantsInvalidation: Bool { true }

    /// Whether the device below seals what it is given: then every page that leaves the
    /// process through this tier is sealed (the pool itself stays in memory).
    public var sealsPages: Bool { lower.sealsPages }

    /// As synchronous as the device below (kernel: `SWP_SYNCHRONOUS_IO` is the swap device's
    /// flag, which zswap in front of it leaves as it is): over a memory device every load is a
    /// decompression or a copy on the caller — UserSwap's zram — and a swap-in frees its slot,
    /// as zram's does; over a file a pool miss waits for the disk, and the slot's clean copy is
    /// worth keeping.
    public var isSynchronous: Bool { lower.isSynchronous }

    /// Drops the pool's copy of a freed slot (kernel: `zswap_invalidate`). Called under the
    /// slot's cluster lock: one dictionary removal under the pool lock; the payload is released
    /// after the pool lock is (the array's free happens when `released` goes out of scope).
    public func invalidate(page: Int) {
        let released = pool.withLock { $0.removeLocked(page) }
        if released != nil { counters.invalidations.add(1, ordering: .relaxed) }  // Relaxed: a statistic
        if lower.wantsInvalidation { lower.invalidate(page: page) }
    }

    /// Drops the pool's copies of `pages` and passes the discard on.
    public func discard(pages: Range<Int>) throws(SwapError) {
        let released = pool.withLock { state in pages.compactMap { state.removeLocked($0) } }
        counters.invalidations.add(released.count, ordering: .relaxed)  // Relaxed: a statistic
        try lower.discard(pages: pages)
    }

    /// Passed on: the pool's copies of those slots went with each slot's invalidation.
    public func forget(pages: Range<Int>) { lower.forget(pages: pages) }

    // MARK: Internals

    /// `buffer` cut into 4 KiB pages.
    static func pages(of buffer: UnsafeMutableRawBufferPointer) -> [UnsafeMutableRawBufferPointer] {
        require(buffer.count % SwapPage.size == 0, "a transfer of \(buffer.count) bytes is not whole pages")
        return stride(from: 0, to: buffer.count, by: SwapPage.size).map {
            UnsafeMutableRawBufferPointer(rebasing: buffer[$0..<$0 + SwapPage.size])
        }
    }

    static func pages(of buffer: UnsafeRawBufferPointer) -> [UnsafeRawBufferPointer] {
        require(buffer.count % SwapPage.size == 0, "a transfer of \(buffer.count) bytes is not whole pages")
        return stride(from: 0, to: buffer.count, by: SwapPage.size).map {
            UnsafeRawBufferPointer(rebasing: buffer[$0..<$0 + SwapPage.size])
        }
    }

    private func checkRange(_ first: Int, _ count: Int) {
        require(
            first >= 1 && first + count <= pageCount,
            "transfer of pages \(first)..<\(first + count) outside the device's 1..<\(pageCount) (page 0 is the header)")
    }

    /// Loads pages `first…` into `pages`: from the pool where it has them, from the lower device
    /// (in runs of consecutive pages, one vectored read each) elsewhere. With `consume`, the
    /// entries loaded leave the pool — only once every page has been read, so that a failed
    /// lower read leaves the pool as it was (the engine then keeps the slots and may try again).
    /// Returns whether any entry was consumed (or, for a lower tier, whether it consumed).
    func load(_ pages: [UnsafeMutableRawBufferPointer], at first: Int, consume: Bool) throws(SwapError) -> Bool {
        checkRange(first, pages.count)
        // Look every page up in one critical section; a page being written back makes us wait
        // for its write-back and look again (it will then be on the lower device).
        var hits: [(index: Int, sequence: UInt64, payload: PoolPayload)] = []
        while true {
            hits.removeAll(keepingCapacity: true)
            let busy: WriteBackTicket? = pool.withLock { state in
                for index in pages.indices {
                    switch state.lookupLocked(first + index) {
                    case .absent: continue
                    case .stored(let payload, let sequence): hits.append((index, sequence, payload))
                    case .busy(let ticket): return ticket
                    }
                }
                return nil
            }
            guard let busy else { break }
            counters.writeBackWaits.add(1, ordering: .relaxed)  // Relaxed: a statistic
            busy.done.wait()
        }

        // The misses, in runs, from the lower device.
        var lowerConsumed = false
        var index = 0
        var nextHit = 0
        while index < pages.count {
            if nextHit < hits.count, hits[nextHit].index == index {
                nextHit += 1
                index += 1
                continue
            }
            let end = nextHit < hits.count ? hits[nextHit].index : pages.count
            lowerConsumed = try readLower(pages[index..<end], at: first + index, consume: consume) || lowerConsumed
            counters.lowerReads.add(end - index, ordering: .relaxed)  // Relaxed: a statistic
            index = end
        }

        for hit in hits { expand(hit.payload, into: pages[hit.index], page: first + hit.index) }
        counters.loads.add(hits.count, ordering: .relaxed)  // Relaxed: a statistic
        guard consume, !hits.isEmpty else { return lowerConsumed }
        let (consumed, released) = pool.withLock { state in
            var consumed = false
            var released: [PoolPayload] = []
            for hit in hits {
                let outcome = state.consumeLocked(first + hit.index, sequence: hit.sequence)
                consumed = consumed || outcome.consumed
                if let payload = outcome.released { released.append(payload) }
            }
            return (consumed, released)
        }
        _ = released
        return consumed || lowerConsumed
    }

    private func readLower(_ run: ArraySlice<UnsafeMutableRawBufferPointer>, at page: Int, consume: Bool) throws(SwapError) -> Bool {
        if run.count == 1 {
            if consume { return try lower.readConsuming(into: run.first!, atPage: page) }
            try lower.read(into: run.first!, atPage: page)
            return false
        }
        return try Array(run).withUnsafeBufferPointer { (buffers) throws(SwapError) -> Bool in
            if consume { return try lower.readConsuming(into: buffers, atPage: page) }
            try lower.read(into: buffers, atPage: page)
            return false
        }
    }

    /// Writes `payload`'s page into `destination`. A payload that does not decode is memory
    /// corruption (this process compressed it): trap rather than hand out wrong data.
    func expand(_ payload: PoolPayload, into destination: UnsafeMutableRawBufferPointer, page: Int) {
        switch payload {
        case .sameFilled(let word):
            SameFilledPage.fill(destination, with: word)
        case .compressed(let data):
            let ok = data.withUnsafeBytes { compressor.decompress($0, into: destination) }
            guard ok else {
                trap("compressed page \(page) (\(data.count) bytes of \(codec)) does not decompress: pool memory is corrupt")
            }
        }
    }

    /// What a store decided for one page before taking the pool lock.
    enum Classified {
        case keep(PoolPayload)
        case reject
    }

    /// Same-filled check, then compression into a buffer of `rejectAbove` bytes on this
    /// thread's stack; a page that fits is copied into an array of its exact length.
    func classify(_ page: UnsafeRawBufferPointer) -> Classified {
        if let word = SameFilledPage.word(of: page) { return .keep(.sameFilled(word)) }
        return withUnsafeTemporaryAllocation(byteCount: rejectAbove, alignment: 16) { scratch -> Classified in
            guard let length = compressor.compress(page, into: scratch) else { return .reject }
            return .keep(.compressed([UInt8](UnsafeRawBufferPointer(rebasing: scratch[..<length]))))
        }
    }

    /// Stores pages `first…`: each into the pool or (rejected, or no room) onto the lower device
    /// in runs of consecutive pages; then writes back the entries that had to make room.
    func store(_ pages: [UnsafeRawBufferPointer], at first: Int) throws(SwapError) {
        checkRange(first, pages.count)
        var decisions = pages.map(classify)
        var victims: [WriteBackVictim] = []
        var released: [PoolPayload] = []
        var index = 0
        while index < pages.count {
            // A page being written back: wait until its older copy is on the lower device, so
            // that ours (to the pool or below) is the one that stays.
            let busy: WriteBackTicket? = pool.withLock { state in
                while index < pages.count {
                    let page = first + index
                    if let ticket = state.writeBackInProgressLocked(page) { return ticket }
                    if let old = state.removeLocked(page) { released.append(old) }
                    if case .keep(let payload) = decisions[index], !state.insertLocked(page, payload, victims: &victims) {
                        decisions[index] = .reject
                        counters.poolLimitRejects.add(1, ordering: .relaxed)  // Relaxed: a statistic
                    }
                    index += 1
                }
                return nil
            }
            if let busy {
                counters.writeBackWaits.add(1, ordering: .relaxed)  // Relaxed: a statistic
                busy.done.wait()
            }
        }
        released.removeAll()

        // Victims were marked busy: they must be written back (or put back) whatever happens
        // to our own lower writes, or their waiters would wait forever.
        var failure: SwapError?
        do {
            try writeRejects(pages, decisions, at: first)
        } catch {
            failure = error
        }
        writeBack(victims)

        for decision in decisions {
            switch decision {
            case .reject: counters.rejects.add(1, ordering: .relaxed)  // Relaxed: a statistic
            case .keep(.sameFilled):
                // Relaxed: statistics
                counters.stores.add(1, ordering: .relaxed)
                counters.sameFilledStores.add(1, ordering: .relaxed)
            case .keep(.compressed(let data)):
                // Relaxed: statistics
                counters.stores.add(1, ordering: .relaxed)
                counters.compressedBytesIn.add(SwapPage.size, ordering: .relaxed)
                counters.compressedBytesOut.add(data.count, ordering: .relaxed)
            }
        }
        if let failure { throw failure }
    }

    /// Writes the rejected pages to the lower device, one (vectored) write per run.
    private func writeRejects(_ pages: [UnsafeRawBufferPointer], _ decisions: [Classified], at first: Int) throws(SwapError) {
        var index = 0
        while index < pages.count {
            guard case .reject = decisions[index] else {
                index += 1
                continue
            }
            var end = index + 1
            while end < pages.count, case .reject = decisions[end] { end += 1 }
            if end - index == 1 {
                try lower.write(pages[index], atPage: first + index)
            } else {
                try Array(pages[index..<end]).withUnsafeBufferPointer { (buffers) throws(SwapError) in
                    try lower.write(buffers, atPage: first + index)
                }
            }
            counters.lowerWrites.add(end - index, ordering: .relaxed)  // Relaxed: a statistic
            index = end
        }
    }
}
