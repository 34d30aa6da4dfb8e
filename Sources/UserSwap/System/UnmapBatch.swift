import CUserSwap
import Glibc
import Synchronization

/// Unmaps of page ranges gathered to be done together (kernel: the `mmu_gather` of a zap,
/// `tlb_gather_mmu` … `tlb_finish_mmu`, across ranges here): up to `capacity` ranges go to the
/// kernel in one `process_madvise(2)` with `MADV_DONTNEED`, one system call and one gathered TLB
/// flush for all of them, where a `madvise(2)` per page enters the kernel and flushes once per
/// page (each flush interrupting the other CPUs that run the process). The gathering covers clean
/// entries only: the kernel flushes a range holding a dirty entry of a shared mapping on its own
/// (it must see the dirty bit before the entry goes), so a page the application or a read wrote
/// through the mapping costs its own flush either way. Adjacent ranges merge. On
/// a kernel that refuses `process_madvise` on the calling process, each range is one `madvise`.
///
/// Only an unmap that may come late waits in a batch. `MADV_DONTNEED` of a shared mapping drops
/// page-table entries, never data (the memfd keeps the page), so a late one costs at most a
/// minor fault or a page counted in RSS a moment longer, even when the page changed hands
/// meanwhile. An unmap that orders something — swap-out's, which must come before the page's
/// data is written — is done on the spot.
struct UnmapBatch: ~Copyable {
    /// Ranges per call: what one call gathers, and how long a page may wait.
    static let capacity = 64
    private let ranges: UnsafeMutablePointer<iovec>
    /// Ranges gathered and not unmapped yet.
    private(set) var count = 0

    init() {
        ranges = .allocate(capacity: Self.capacity)
    }

    deinit {
        Self.unmap(ranges, count: count)
        ranges.deallocate()
    }

    var isEmpty: Bool { count == 0 }

    /// Gathers `[address, address + length)`; unmaps the batch first when it is full.
    mutating func add(_ address: UnsafeMutableRawPointer, length: Int) {
        if count > 0, let last = ranges[count - 1].iov_base, last + ranges[count - 1].iov_len == address {
            ranges[count - 1].iov_len += length
            return
        }
        if count == Self.capacity { flush() }
        ranges[count] = iovec(iov_base: address, iov_len: length)
        count += 1
    }

    /// Unmaps what was gathered.
    mutating func flush() {
        Self.unmap(ranges, count: count)
        count = 0
    }

    /// Cleared for good at the first refusal of `process_madvise` (an older kernel).
    private static let gatheredUsable = Atomic<Bool>(true)

    private static func unmap(_ ranges: UnsafeMutablePointer<iovec>, count: Int) {
        guard count > 0 else { return }
        var done = 0
        // Relaxed: a one-way switch; a stale true costs one refused call
        if gatheredUsable.load(ordering: .relaxed) {
            var total = 0
            for i in 0..<count { total += ranges[i].iov_len }
            switch Syscalls.processMadviseSelf(ranges, count: count, advice: cus_MADV_DONTNEED()) {
            case .success(let bytes):
                if bytes == total { return }
                // A range failed: the ones before it are done; `madvise` says what failed.
                var left = bytes
                while done < count && ranges[done].iov_len <= left {
                    left -= ranges[done].iov_len
                    done += 1
                }
            case .failure:
                gatheredUsable.store(false, ordering: .relaxed)  // Relaxed: a one-way switch that orders nothing else
            }
        }
        for i in done..<count {
            // Sound: every range was added by a caller that owns a mapping covering it.
            let base = ranges[i].iov_base!
            do {
                try Syscalls.madvise(base, length: ranges[i].iov_len, advice: cus_MADV_DONTNEED())
            } catch {
                trap("cannot unmap \(ranges[i].iov_len) bytes at \(base): \(error)")
            }
        }
    }
}
