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

    /// Gives back the whole memory pages of the records of `pages`, which read as
    /// `SealRecord.empty` after. The caller guarantees that no transfer of those pages runs (their
    /// slots are free). A cluster's 512 records are 12 KiB, three whole pages.
    func release(_ pages: Range<Int>) {
        let stride = MemoryLayout<SealRecord>.stride
        let start = UnsafeMutableRawPointer(records)
        let low = (pages.lowerBound * stride + Syscalls.pageSize - 1) / Syscalls.pageSize * Syscalls.pageSize
        let high = min(pages.upperBound, count) * stride / Syscalls.pageSize * Syscalls.pageSize
        guard high > low else { return }
        do {
            try Syscalls.madvise(start + low, length: high - low, advice: cus_MADV_DONTNEED())
        } catch {
            // Only EINVAL/ENOMEM are possible on our own aligned mapping: both would be our bug.
            trap("madvise(DONTNEED) of seal records failed: \(error)")
        }
    }

    /// Bytes of the table resident in RAM (`mincore`).
    var residentBytes: Int {
        let bytes = count * MemoryLayout<SealRecord>.stride
        let pages = (bytes + Syscalls.pageSize - 1) / Syscalls.pageSize
        var vector = [UInt8](repeating: 0, count: pages)
        let r = vector.withUnsafeMutableBufferPointer { mincore(UnsafeMutableRawPointer(records), bytes, $0.baseAddress) }
        guard r == 0 else { return 0 }
        return vector.reduce(0) { $0 + Int($1 & 1) } * Syscalls.pageSize
    }

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
