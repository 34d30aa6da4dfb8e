import UserSwap

extension CompressedTier {
    /// Writes `victims` (marked busy by `CompressedPool.startWriteBackLocked`) to the lower
    /// device, oldest first, and ends each write-back (kernel: `zswap_writeback_entry`).
    ///
    /// Runs on the thread whose store needed the room, after it released the pool lock, with
    /// no lock held across the decompression or the write. Races, each handled by the busy mark:
    /// - a load of the same page waits for the write-back, then reads the lower device;
    /// - a store of the same page waits, then replaces the entry — so the older bytes written
    ///   here can never land after the newer ones;
    /// - a free (`invalidate`) or an exclusive load that already copied the entry marks it
    ///   dropped: the write-back still writes (harmless, the slot's bytes below are no one's),
    ///   and then forgets the entry whatever the write's outcome;
    /// - a load that copied the entry before the write-back started and finds it gone once the
    ///   write-back ended reports the page as not consumed: it is on the lower device now.
    ///
    /// A failed write keeps the entry in the pool (back in its byte count, at the young end of
    /// the LRU); the failure is counted, not thrown: the store that triggered the write-back
    /// succeeded, and the entry's data is still safe in the pool.
    @discardableResult
    func writeBack(_ victims: [WriteBackVictim]) -> Int {
        guard !victims.isEmpty else { return 0 }
        var count = 0
        // Page-aligned, so that a file below can take it without its page cache (O_DIRECT).
        withUnsafeTemporaryAllocation(byteCount: SwapPage.size, alignment: SwapPage.size) { scratch in
            for victim in victims {
                expand(victim.payload, into: scratch, page: victim.page)
                var written = true
                do {
                    try lower.write(UnsafeRawBufferPointer(scratch), atPage: victim.page)
                } catch {
                    written = false
                }
                let (waiters, released) = pool.withLock { $0.finishWriteBackLocked(victim, written: written) }
                _ = released
                if written {
                    count += 1
                    counters.writeBacks.add(1, ordering: .relaxed)  // Relaxed: a statistic
                    counters.lowerWrites.add(1, ordering: .relaxed)  // Relaxed: a statistic
                } else {
                    counters.writeBackFailures.add(1, ordering: .relaxed)  // Relaxed: a statistic
                }
                for _ in 0..<waiters { victim.ticket.done.signal() }
            }
        }
        return count
    }

    /// Writes back up to `pages` of the oldest entries now, as a full pool would (kernel: the
    /// zswap shrinker). Returns how many were written. For tests and for callers that want the
    /// pool emptied before a pause.
    @discardableResult
    public func writeBack(pages: Int) -> Int {
        var victims: [WriteBackVictim] = []
        pool.withLock { state in
            while victims.count < pages, let victim = state.startWriteBackLocked() { victims.append(victim) }
        }
        return writeBack(victims)
    }
}
