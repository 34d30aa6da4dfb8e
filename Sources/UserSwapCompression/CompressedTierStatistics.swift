import Synchronization
import UserSwap

/// A compressed tier's figures at one moment (kernel: zswap's debugfs counters —
/// `stored_pages`, `pool_total_size`, `same_filled_pages`, `reject_compress_poor`,
/// `written_back_pages`, `pool_limit_hit`).
public struct CompressedTierStatistics: Sendable, Equatable {
    /// Pages in the pool now (compressed and same-filled, including any being written back).
    public var storedPages: Int
    /// Of those, same-filled pages (kept as one word).
    public var sameFilledPages: Int
    /// Bytes charged to the pool now: compressed bytes plus the per-entry overhead.
    public var poolBytes: Int
    /// The most `poolBytes` has been.
    public var peakPoolBytes: Int
    /// The pool's limit.
    public var poolLimit: Int
    /// Compressed bytes of the compressed pages in the pool now, without overhead.
    public var compressedBytes: Int

    /// Pages stored in the pool so far (compressed or same-filled).
    public var stores: Int
    /// Of those, same-filled pages.
    public var sameFilledStores: Int
    /// Pages that compressed above the threshold and went to the lower device.
    public var rejects: Int
    /// Of the rejects, pages that compressed well but found no room (every entry already
    /// being written back, or a page bigger than the whole pool).
    public var poolLimitRejects: Int
    /// Entries written back to the lower device to make room.
    public var writeBacks: Int
    /// Write-backs whose lower write failed (the entry stayed in the pool).
    public var writeBackFailures: Int
    /// Pages loaded from the pool.
    public var loads: Int
    /// Entries dropped because their slot was freed.
    public var invalidations: Int
    /// Pages read from the lower device (misses).
    public var lowerReads: Int
    /// Pages written to the lower device (rejects and write-backs).
    public var lowerWrites: Int
    /// Transfers that waited for a write-back of the same page to end.
    public var writeBackWaits: Int
    /// Input and output bytes of every page stored compressed so far.
    public var compressedBytesIn: Int
    /// Their compressed bytes, entry overhead excluded.
    public var compressedBytesOut: Int

    /// Uncompressed ÷ compressed size of the compressed pages in the pool now (nil if none):
    /// zswap's `stored_pages × 4096 ÷ pool_total_size` without the same-filled pages.
    public var compressionRatio: Double? {
        let pages = storedPages - sameFilledPages
        return compressedBytes > 0 ? Double(pages * SwapPage.size) / Double(compressedBytes) : nil
    }

    /// The same over every page stored compressed so far (nil if none).
    public var cumulativeCompressionRatio: Double? {
        compressedBytesOut > 0 ? Double(compressedBytesIn) / Double(compressedBytesOut) : nil
    }

    /// Memory saved: pages in the pool × 4 KiB ÷ bytes charged (overhead included); nil if the
    /// pool is empty or holds only same-filled pages.
    public var effectiveRatio: Double? {
        poolBytes > 0 ? Double(storedPages * SwapPage.size) / Double(poolBytes) : nil
    }

    /// Share of the pages offered to the tier that it kept.
    public var acceptRate: Double? {
        stores + rejects > 0 ? Double(stores) / Double(stores + rejects) : nil
    }
}

/// The tier's running totals. Every update and read is relaxed: they are statistics, read by
/// tests and benchmarks after the transfers they count have returned (and published by
/// whatever joined those threads), and no other memory is published through them.
final class Counters: Sendable {
    let stores = Atomic<Int>(0)
    let sameFilledStores = Atomic<Int>(0)
    let rejects = Atomic<Int>(0)
    let poolLimitRejects = Atomic<Int>(0)
    let writeBacks = Atomic<Int>(0)
    let writeBackFailures = Atomic<Int>(0)
    let loads = Atomic<Int>(0)
    let invalidations = Atomic<Int>(0)
    let lowerReads = Atomic<Int>(0)
    let lowerWrites = Atomic<Int>(0)
    let writeBackWaits = Atomic<Int>(0)
    let compressedBytesIn = Atomic<Int>(0)
    let compressedBytesOut = Atomic<Int>(0)
}

extension CompressedTier {
    /// The tier's figures now.
    public var statistics: CompressedTierStatistics {
        let (stored, same, bytes, peak, limit, compressed) = pool.withLock { p in
            (p.entries.count, p.sameFilledPages, p.bytes, p.peakBytes, p.limit, p.compressedBytes)
        }
        let c = counters
        return CompressedTierStatistics(
            storedPages: stored, sameFilledPages: same, poolBytes: bytes, peakPoolBytes: peak, poolLimit: limit,
            compressedBytes: compressed,
            // Relaxed: statistics, each exact on its own; a snapshot taken during traffic need not add up
            stores: c.stores.load(ordering: .relaxed), sameFilledStores: c.sameFilledStores.load(ordering: .relaxed),
            rejects: c.rejects.load(ordering: .relaxed), poolLimitRejects: c.poolLimitRejects.load(ordering: .relaxed),
            writeBacks: c.writeBacks.load(ordering: .relaxed), writeBackFailures: c.writeBackFailures.load(ordering: .relaxed),
            loads: c.loads.load(ordering: .relaxed), invalidations: c.invalidations.load(ordering: .relaxed),
            lowerReads: c.lowerReads.load(ordering: .relaxed), lowerWrites: c.lowerWrites.load(ordering: .relaxed),
            writeBackWaits: c.writeBackWaits.load(ordering: .relaxed),
            compressedBytesIn: c.compressedBytesIn.load(ordering: .relaxed),
            compressedBytesOut: c.compressedBytesOut.load(ordering: .relaxed))
    }

    /// Inconsistencies between the pool's counts and its entries (empty when all is well). Take
    /// it when no transfer is running.
    public func checkInvariants() -> [String] {
        pool.withLock { $0.problems() }
    }
}
