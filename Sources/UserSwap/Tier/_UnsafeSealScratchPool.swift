import Synchronization

/// The scratch buffers an encrypted tier seals pages into before it writes them below, kept
/// between writes: a write takes one, seals into it, writes it and gives it back, so that a
/// steady stream of swap-outs allocates nothing.
///
/// A buffer is `pageCount` page-aligned pages of ciphertext (so that a file below can take it
/// without its page cache, O_DIRECT) followed by `pageCount` seal records. The pool keeps at
/// most `slotCount` of them, each in an atomic slot: taking one exchanges a slot with 0, giving
/// one back swaps it into an empty slot. No lock: nothing outside the tier can stall a write
/// here, and a slot's exchange hands its buffer to exactly one taker (no ABA: no slot's value
/// is compared with one read earlier). When every kept buffer is in use, a write allocates one
/// more and frees it after unless a slot is free by then: the pool holds at most as many as
/// were ever in use at once, up to `slotCount`, so the heap beside the budget stays
/// `slotCount × bufferBytes` at most (about 2 MiB), and usually what the writes in flight need (the
/// I/O engine's `maxWritesInFlight`, 2 by default, plus the threads that write synchronously).
final class _UnsafeSealScratchPool: Sendable {
    /// Buffers kept at most.
    static let slotCount = 8
    /// Pages of ciphertext per buffer.
    let pageCount: Int
    /// Bytes of one buffer: the pages, then the records.
    let bufferBytes: Int
    private let slots = _UnsafeAtomicArray<UInt>(count: _UnsafeSealScratchPool.slotCount, initialValue: 0)
    /// Buffers allocated so far (kept or freed after use): what a test reads to see the reuse.
    private let allocationCount = Atomic<Int>(0)

    init(pageCount: Int) {
        self.pageCount = pageCount
        bufferBytes = pageCount * SwapPage.size + pageCount * MemoryLayout<SealRecord>.stride
    }

    deinit {
        for i in 0..<Self.slotCount {
            // Relaxed: the pool is going away; no other thread holds it.
            let bits = slots[i].pointee.exchange(0, ordering: .relaxed)
            UnsafeMutableRawPointer(bitPattern: bits)?.deallocate()
        }
    }

    /// Buffers allocated so far.
    var allocations: Int { allocationCount.load(ordering: .relaxed) }  // Relaxed: a statistic

    /// Runs `body` with a buffer's pages (`pageCount` of them, page-aligned) and its records
    /// (`pageCount`, uninitialized memory the body may overwrite), taken from the pool or
    /// allocated, and returns it to the pool after.
    func withScratch<R, E: Error>(
        _ body: (UnsafeMutableRawBufferPointer, UnsafeMutablePointer<SealRecord>) throws(E) -> R
    ) throws(E) -> R {
        let buffer = take()
        defer { give(buffer) }
        let pages = UnsafeMutableRawBufferPointer(start: buffer, count: pageCount * SwapPage.size)
        // Sound: the records start right after the pages, a multiple of the page size in, and
        // `bufferBytes` counts room for `pageCount` of them; SealRecord is a trivial type.
        let records = (buffer + pageCount * SwapPage.size).bindMemory(to: SealRecord.self, capacity: pageCount)
        return try body(pages, records)
    }

    private func take() -> UnsafeMutableRawPointer {
        for i in 0..<Self.slotCount {
            // Acquiring: see the pages the thread that gave the buffer back wrote.
            let bits = slots[i].pointee.exchange(0, ordering: .acquiring)
            if let buffer = UnsafeMutableRawPointer(bitPattern: bits) { return buffer }
        }
        allocationCount.add(1, ordering: .relaxed)  // Relaxed: a statistic
        return UnsafeMutableRawPointer.allocate(byteCount: bufferBytes, alignment: SwapPage.size)
    }

    private func give(_ buffer: UnsafeMutableRawPointer) {
        let bits = UInt(bitPattern: buffer)
        for i in 0..<Self.slotCount {
            // Releasing: the next taker sees this thread's writes to the buffer done.
            if slots[i].pointee.compareExchange(expected: 0, desired: bits, ordering: .releasing).exchanged { return }
        }
        buffer.deallocate()
    }
}
