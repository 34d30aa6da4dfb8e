import CUserSwap
import Glibc

/// What the tier remembers about one sealed page: the nonce counter it was sealed with and
/// its authentication tag. 24 bytes per page of the device, in memory only.
struct SealRecord {
    /// The value of the tier's nonce counter when the page was last sealed; 0 if never.
    var counter: UInt64
    /// Poly1305 tag, 16 bytes.
    var tag: (UInt64, UInt64)

    static let empty = SealRecord(counter: 0, tag: (0, 0))
}

/// One `SealRecord` per page of the device, in a private anonymous mapping: the kernel backs
/// each page with zeroes at its first write, so a large, mostly unused device costs only the
/// pages of the records written. (`calloc` would not promise it: once glibc's mmap threshold has
/// grown past the size, it takes the block from a heap and writes every byte.)
///
/// Not locked: the record of a page is written by a write of that page and read by a read of
/// it, and no two transfers of one page run at once (the engine's folio lock or writeback flag,
/// and a compressed tier above keeps that promise for its write-backs); those same locks order
/// a write's record before a later read of it.
///
/// The one place the table's raw pointer lives.
struct _SealTable: ~Copyable {
    let records: UnsafeMutablePointer<SealRecord>
    let count: Int

    init(count: Int) {
        require(count >= 1, "a seal table needs at least one page, not \(count)")
        let bytes = count * MemoryLayout<SealRecord>.stride
        do {
            let block = try Syscalls.mmap(
                length: bytes, protection: PROT_READ | PROT_WRITE,
                flags: MAP_PRIVATE | MAP_ANONYMOUS | cus_MAP_NORESERVE())
            // Fresh anonymous memory is zero: a valid `SealRecord.empty` for every page.
            records = block.bindMemory(to: SealRecord.self, capacity: count)
        } catch {
            // As any allocation failure in Swift: nothing sensible to do but stop.
            trap("cannot map \(bytes) bytes for the seal table of \(count) pages: \(error)")
        }
        self.count = count
    }

    deinit { Syscalls.munmap(UnsafeMutableRawPointer(records), length: count * MemoryLayout<SealRecord>.stride) }

    subscript(page: Int) -> SealRecord {
        get {
            require(page >= 0 && page < count, "seal record of page \(page) outside 0..<\(count)")
            return records[page]
        }
        nonmutating set {
            require(page >= 0 && page < count, "seal record of page \(page) outside 0..<\(count)")
            records[page] = newValue
        }
    }
}

// Records of different pages are disjoint memory; records of one page are ordered by the
// engine's per-page exclusion (see the type's doc).
extension _SealTable: @unchecked Sendable {}
