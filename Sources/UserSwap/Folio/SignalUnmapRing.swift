import CUserSwap
import Glibc
import Synchronization

/// Unmaps of single pages queued from signal handlers, done together: `UnmapBatch` for code that
/// may neither allocate nor lock. Every `capacity / 2` pushes, the pusher that fills a half of
/// the ring unmaps that half in one `process_madvise(2)` (one system call and one gathered TLB
/// flush for up to 32 pages, where a `madvise(2)` per page flushes once per page, interrupting
/// the other CPUs that run the process).
///
/// Only unmaps that may come late go here, as in `UnmapBatch`: at most `capacity` pages wait,
/// and a page whose half never fills again waits until the ring laps. Lock-free: a slot is
/// emptied only by the exchange that takes its page, so each queued page is unmapped once, by
/// whoever took it; a push that finds its slot still full (a flush skipped or slow) unmaps the
/// older page itself.
final class SignalUnmapRing: @unchecked Sendable {
    /// Pages queued at most; a power of two.
    static let capacity = 64
    private static let half = capacity / 2
    /// Per slot: the page's address, 0 when empty.
    private let slots: _UnsafeAtomicArray<UInt>
    private let cursor = Atomic<UInt>(0)
    /// Per half: set while a flush of it gathers into its `ranges`.
    private let flushing: _UnsafeAtomicArray<Bool>
    /// Per half: `half` ranges, written only by the flush holding that half's flag.
    private let ranges: UnsafeMutablePointer<iovec>
    /// Cleared for good at the first refusal of `process_madvise` (an older kernel): each page
    /// is one `madvise` then.
    private let gatheredUsable = Atomic<Bool>(true)

    init() {
        slots = _UnsafeAtomicArray(count: Self.capacity, initialValue: 0)
        flushing = _UnsafeAtomicArray(count: 2, initialValue: false)
        ranges = .allocate(capacity: Self.capacity)
    }

    deinit {
        ranges.deallocate()
    }

    /// Queues the unmap of the page at `address`. Signal-safe: no allocation, no lock.
    func push(_ address: UnsafeMutableRawPointer) {
        // Relaxed: the slot's exchange below carries the page; the cursor only picks slots
        let i = cursor.add(1, ordering: .relaxed).oldValue
        let slot = Int(i % UInt(Self.capacity))
        let older = slots[slot].pointee.exchange(UInt(bitPattern: address), ordering: .acquiringAndReleasing)
        if older != 0 { unmapOne(older) }
        if (i + 1) % UInt(Self.half) == 0 { flush(half: slot / Self.half) }
    }

    /// Unmaps what is queued now: for a caller that wants every page unmapped (a test counting
    /// what is mapped, a region going quiet).
    func flushAll() {
        for h in 0..<2 { flush(half: h) }
        // A half busy in another thread's flush is done when that flush returns; pages pushed
        // meanwhile into it stay queued, as they would behind any flush.
    }

    private func flush(half h: Int) {
        guard !flushing[h].pointee.exchange(true, ordering: .acquiring) else { return }
        defer { flushing[h].pointee.store(false, ordering: .releasing) }
        let base = ranges + h * Self.half
        var count = 0
        for slot in h * Self.half..<(h + 1) * Self.half {
            let page = slots[slot].pointee.exchange(0, ordering: .acquiringAndReleasing)
            if page != 0 {
                base[count] = iovec(iov_base: UnsafeMutableRawPointer(bitPattern: page), iov_len: SwapPage.size)
                count += 1
            }
        }
        guard count > 0 else { return }
        // Relaxed: a one-way switch; a stale true costs one refused call
        if gatheredUsable.load(ordering: .relaxed) {
            switch Syscalls.processMadviseSelf(base, count: count, advice: cus_MADV_DONTNEED()) {
            case .success(let bytes) where bytes == count * SwapPage.size: return
            case .success: break  // a range failed: `madvise` below does them all again, harmlessly
            case .failure: gatheredUsable.store(false, ordering: .relaxed)  // Relaxed: as above
            }
        }
        for r in 0..<count { unmapOne(UInt(bitPattern: base[r].iov_base)) }
    }

    /// A failure leaves the page mapped (counted twice in RSS, nothing worse): not reported,
    /// as no one in a signal handler could act on it.
    private func unmapOne(_ page: UInt) {
        // Sound: only addresses of pages a caller maps are pushed.
        _ = Syscalls.madviseInSignal(UnsafeMutableRawPointer(bitPattern: page)!, length: SwapPage.size, advice: cus_MADV_DONTNEED())
    }
}
