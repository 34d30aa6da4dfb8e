import CSodium
import Synchronization

/// Encrypted pages at rest: every page written below is sealed with XChaCha20-Poly1305
/// (libsodium's `crypto_aead_xchacha20poly1305_ietf_*_detached`) under a random key that exists
/// only in this process's memory, and every page read back is authenticated before anyone sees
/// it. A page that fails (a bit flipped on disk, a page from another run or another slot, an
/// older copy of the same slot) is the typed error `SwapError(.ioError, "… failed
/// authentication …")`; its bytes are wiped from the caller's buffer, never returned.
///
/// Layout: the lower device has the same pages as this one and holds only ciphertext (4096
/// bytes per page, so a swap file stays a plain swap file). What does not fit in a page —
/// the 16-byte tag and the nonce — stays in memory, in a side table of 24 bytes per page
/// (`SealRecord`): the nonce is 16 random bytes fixed for the tier followed by an 8-byte counter
/// that every seal takes a new value of, so only the counter is stored. Unique nonces under one
/// key are all XChaCha20-Poly1305 asks for, and a counter guarantees them. The associated data
/// is the page's offset, so a ciphertext moved to another slot fails too; and because the tag
/// lives in memory, so does an older ciphertext of the same slot put back (a replay). The cost:
/// 24 bytes of RAM per device page (0.6 % of the device), and the pages cannot be read by
/// another process or after a restart — as intended for swap.
///
/// Stack it under a compressed tier — `CompressedTier(lower: EncryptedTier(lower: file))` —
/// so that pages are compressed in memory and sealed on their way to the file. The other order
/// works but is pointless: sealed pages look random and would all be rejected by the pool.
public final class EncryptedTier: SwapBackend {
    /// The device that stores the ciphertext.
    public let lower: any SwapBackend
    let key: _PageKey
    /// The first 16 bytes of every nonce, random per tier.
    private let nonceSalt: (UInt64, UInt64)
    /// The next nonce counter; taken once per seal, never reused (2⁶⁴ seals never wrap).
    private let nextCounter = Atomic<UInt64>(1)
    /// Counter and tag of every page's current ciphertext.
    private let seals: _SealTable
    private let counters = Counters()
    /// Scratch buffers that pages are sealed into on their way down, reused across writes.
    let scratch = _UnsafeSealScratchPool(pageCount: EncryptedTier.scratchPages)

    /// Bytes of RAM the tier keeps per page of the device (the side table).
    public static var bytesPerPage: Int { MemoryLayout<SealRecord>.stride }

    /// A tier over `lower` with a fresh random key. Throws if libsodium cannot start.
    public convenience init(lower: any SwapBackend) throws(SwapError) {
        try self.init(lower: lower, key: _PageKey())
    }

    /// A tier over `lower` under `key`, which other tiers may share (a space's key): each tier
    /// draws its own 16-byte nonce salt, so nonces stay unique across the tiers of one key.
    init(lower: any SwapBackend, key: _PageKey) throws(SwapError) {
        self.lower = lower
        self.key = key
        let salt = try _PageKey.randomBytes(16)
        nonceSalt = salt.withUnsafeBytes { ($0.load(as: UInt64.self), $0.load(fromByteOffset: 8, as: UInt64.self)) }
        seals = _SealTable(count: lower.pageCount)
    }

    public var pageCount: Int { lower.pageCount }

    /// True: what reaches `lower` is ciphertext.
    public var sealsPages: Bool { true }

    // MARK: Reads

    public func read(into buffer: UnsafeMutableRawBufferPointer, atPage page: Int) throws(SwapError) {
        try lower.read(into: buffer, atPage: page)
        try open(buffer, at: page)
    }

    public func read(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, atPage page: Int) throws(SwapError) {
        try lower.read(into: buffers, atPage: page)
        try open(buffers, at: page)
    }

    public func readConsuming(into buffer: UnsafeMutableRawBufferPointer, atPage page: Int) throws(SwapError) -> Bool {
        let consumed = try lower.readConsuming(into: buffer, atPage: page)
        try open(buffer, at: page)
        return consumed
    }

    public func readConsuming(into buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, atPage page: Int) throws(SwapError) -> Bool
    {
        let consumed = try lower.readConsuming(into: buffers, atPage: page)
        try open(buffers, at: page)
        return consumed
    }

    /// As the backend below: opening a page is CPU work on the caller's stack (libsodium
    /// allocates nothing to decrypt).
    public var readsInSignalHandler: Bool { lower.readsInSignalHandler }

    // MARK: Writes

    public func write(_ buffer: UnsafeRawBufferPointer, atPage page: Int) throws(SwapError) {
        var one = buffer
        try withUnsafePointer(to: &one) { (p) throws(SwapError) in try seal(UnsafeBufferPointer(start: p, count: 1), at: page) }
    }

    public func write(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, atPage page: Int) throws(SwapError) {
        try seal(buffers, at: page)
    }

    // MARK: Freed slots

    /// Passed on: the tier keeps nothing a freed slot needs dropped (a stale record only
    /// authenticates a stale ciphertext, which nobody reads; the slot's next write replaces both).
    public var wantsInvalidation: Bool { lower.wantsInvalidation }

    /// As synchronous as the backend below: opening a sealed page is CPU work on the caller.
    public var isSynchronous: Bool { lower.isSynchronous }

    public func invalidate(page: Int) { lower.invalidate(page: page) }

    public func discard(pages: Range<Int>) throws(SwapError) { try lower.discard(pages: pages) }

    /// The records of free slots go back to the kernel (they read as never sealed until the
    /// slot's next write), so the side table holds the slots in use, not every slot once used:
    /// without it, a run's slot allocator, which moves on through the free clusters, left
    /// nearly the whole table resident.
    public func forget(pages: Range<Int>) {
        seals.release(pages)
        lower.forget(pages: pages)
    }

    // MARK: Statistics

    /// Pages sealed, opened, and refused so far.
    public var statistics: EncryptedTierStatistics {
        EncryptedTierStatistics(
            sealedPages: counters.sealed.load(ordering: .relaxed),  // Relaxed: a statistic
            openedPages: counters.opened.load(ordering: .relaxed),  // Relaxed: a statistic
            authenticationFailures: counters.failures.load(ordering: .relaxed),  // Relaxed: a statistic
            sideTableBytes: seals.count * Self.bytesPerPage, sideTableResidentBytes: seals.residentBytes)
    }

    // MARK: Sealing

    /// The 24-byte nonce of counter `counter`: salt, then the counter in little-endian order.
    private func nonce(_ counter: UInt64) -> (UInt64, UInt64, UInt64) {
        (nonceSalt.0, nonceSalt.1, counter.littleEndian)
    }

    /// Pages sealed and written together at most: the scratch buffer's size. A write of more
    /// pages goes down in runs of this many. Bounded because the scratch is heap memory beside
    /// the budget: a whole swap cluster (2 MiB) per writing thread stayed resident in the
    /// allocator's per-thread arenas after the write (11 MiB above the budget for a NumPy sort
    /// of 128 MiB in 16 MiB), where 256 KiB runs keep a quarter of a MiB per buffer at most.
    static let scratchPages = 64

    /// Seals `buffers` (whole pages, for pages `first…`) into a scratch buffer from the pool, a
    /// run of at most `scratchPages` at a time, writes each run to the lower device in one
    /// call, and only then records its new counters and tags: if a write fails, the records
    /// still match what the device holds (the runs before it written and recorded, the failed
    /// one and those after it neither). Allocates nothing once the pool holds a buffer: the
    /// plaintext pages are walked in place, the records wait in the scratch buffer.
    ///
    /// Not in place: the caller's pages stay readable while they are written (a swap-out's
    /// folio stays in the swap cache, where a fault may map it), so they must not change.
    private func seal(_ buffers: UnsafeBufferPointer<UnsafeRawBufferPointer>, at first: Int) throws(SwapError) {
        var total = 0
        for buffer in buffers { total += buffer.count }
        require(total % SwapPage.size == 0, "a transfer of \(total) bytes is not whole pages")
        let pages = total / SwapPage.size
        require(
            first >= 1 && first + pages <= pageCount,
            "transfer of pages \(first)..<\(first + pages) outside the device's 1..<\(pageCount) (page 0 is the header)")
        guard pages > 0 else { return }
        try scratch.withScratch { (scratch, records) throws(SwapError) in
            // The next plaintext page: a buffer of `buffers` and the offset in it.
            var source = 0
            var offset = 0
            for runStart in stride(from: 0, to: pages, by: Self.scratchPages) {
                let count = min(Self.scratchPages, pages - runStart)
                for i in 0..<count {
                    while offset == buffers[source].count {
                        source += 1
                        offset = 0
                    }
                    let plain = UnsafeRawBufferPointer(rebasing: buffers[source][offset..<(offset + SwapPage.size)])
                    offset += SwapPage.size
                    let sealed = UnsafeMutableRawBufferPointer(rebasing: scratch[(i * SwapPage.size)..<((i + 1) * SwapPage.size)])
                    records[i] = sealPage(plain, into: sealed, page: first + runStart + i)
                }
                try lower.write(UnsafeRawBufferPointer(rebasing: scratch[0..<(count * SwapPage.size)]), atPage: first + runStart)
                for i in 0..<count { seals[first + runStart + i] = records[i] }
                counters.sealed.add(count, ordering: .relaxed)  // Relaxed: a statistic
            }
        }
    }

    /// Encrypts one page into `sealed` and returns its record.
    private func sealPage(_ plain: UnsafeRawBufferPointer, into sealed: UnsafeMutableRawBufferPointer, page: Int) -> SealRecord {
        // Relaxed: uniqueness is all a nonce needs, and an atomic increment gives every caller
        // a different value whatever the ordering.
        let counter = nextCounter.wrappingAdd(1, ordering: .relaxed).oldValue
        var record = SealRecord(counter: counter, tag: (0, 0))
        var nonce = nonce(counter)
        var associated = UInt64(page).littleEndian
        let result = withUnsafeMutableBytes(of: &record.tag) { tag in
            withUnsafeBytes(of: &nonce) { nonce in
                withUnsafeBytes(of: &associated) { associated in
                    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
                        sealed.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        tag.baseAddress!.assumingMemoryBound(to: UInt8.self), nil,
                        plain.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(SwapPage.size),
                        associated.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(associated.count),
                        nil, nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), key.bytes)
                }
            }
        }
        // It fails only for messages over 256 GiB.
        require(result == 0, "crypto_aead_xchacha20poly1305_ietf_encrypt_detached failed for one page")
        return record
    }

    /// Authenticates and decrypts, in place, the pages in `buffers` (pages `first…`, as read
    /// from the lower device). On the first page that fails, every byte of the transfer is
    /// wiped and the error thrown: no data that failed (or that came with it) reaches the caller.
    private func open(_ buffer: UnsafeMutableRawBufferPointer, at first: Int) throws(SwapError) {
        var one = buffer
        try withUnsafePointer(to: &one) { (p) throws(SwapError) in try open(UnsafeBufferPointer(start: p, count: 1), at: first) }
    }

    /// `open` for the pages of `buffers`. No array of them is made: a page read for a fault
    /// on the faulting thread is opened in its signal handler, which must not allocate.
    private func open(_ buffers: UnsafeBufferPointer<UnsafeMutableRawBufferPointer>, at first: Int) throws(SwapError) {
        var page = first
        for buffer in buffers {
            for start in stride(from: 0, to: buffer.count, by: SwapPage.size) {
                let bytes = UnsafeMutableRawBufferPointer(rebasing: buffer[start..<start + SwapPage.size])
                guard openPage(bytes, page: page) else {
                    for b in buffers { b.initializeMemory(as: UInt8.self, repeating: 0) }
                    counters.failures.add(1, ordering: .relaxed)  // Relaxed: a statistic
                    let never = seals[page].counter == 0
                    throw SwapError(
                        .ioError,
                        never
                            ? "page \(page) failed authentication: it was never written through this encrypted tier (a read of a slot nobody wrote); its bytes are not returned"
                            : "page \(page) failed authentication: its ciphertext on the device was changed (or belongs to another slot or an older write); its bytes are not returned"
                    )
                }
                page += 1
            }
        }
        counters.opened.add(page - first, ordering: .relaxed)  // Relaxed: a statistic
    }

    /// Authenticates and decrypts one page in place; false if it fails (libsodium then leaves
    /// the buffer as it was: the caller wipes it).
    private func openPage(_ bytes: UnsafeMutableRawBufferPointer, page: Int) -> Bool {
        var record = seals[page]
        guard record.counter != 0 else { return false }
        var nonce = nonce(record.counter)
        var associated = UInt64(page).littleEndian
        let pointer = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let result = withUnsafeBytes(of: &record.tag) { tag in
            withUnsafeBytes(of: &nonce) { nonce in
                withUnsafeBytes(of: &associated) { associated in
                    // In place (m == c): libsodium checks the tag over the ciphertext first,
                    // then decrypts with a stream cipher, which may overlap exactly.
                    crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                        pointer, nil, pointer, UInt64(SwapPage.size),
                        tag.baseAddress!.assumingMemoryBound(to: UInt8.self),
                        associated.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(associated.count),
                        nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), key.bytes)
                }
            }
        }
        return result == 0
    }
}

/// An encrypted tier's figures.
public struct EncryptedTierStatistics: Sendable, Equatable {
    /// Pages sealed and written below so far.
    public var sealedPages: Int
    /// Pages read back and authenticated so far.
    public var openedPages: Int
    /// Reads refused because a page failed authentication.
    public var authenticationFailures: Int
    /// RAM the side table of tags and nonce counters takes (24 bytes per device page; the
    /// kernel gives the untouched part lazily).
    public var sideTableBytes: Int
    /// The part of it in RAM now: the pages of records of slots in use (free clusters' records
    /// are given back).
    public var sideTableResidentBytes: Int
}

/// Running totals; relaxed, as statistics read after the transfers they count.
private final class Counters: Sendable {
    let sealed = Atomic<Int>(0)
    let opened = Atomic<Int>(0)
    let failures = Atomic<Int>(0)
}

/// Sealing is CPU work before a file's pwrite: pool workers run it (`IOEngine`).
extension EncryptedTier: FileBackedTransfers {
    var isFileBacked: Bool { lower is FileBackend }
}
