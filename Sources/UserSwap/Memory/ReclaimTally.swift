/// What reclaim did, in every thread, while one allocation looked for a frame: read from the
/// space's counters before and after, for the report of an allocation that found none (which
/// folios reclaim looked at, and why none of them could go).
struct ReclaimTally {
    private var counts: [Int]

    private static let counted: [SwapStatistics.Counter] = [
        .reclaimScanned, .reclaimFreed, .reclaimActivated, .reclaimLocked, .busyFolios, .reclaimNoSlot, .writeErrors,
    ]

    init(_ stats: SwapStatistics) {
        counts = Self.counted.map { stats[$0] }
    }

    /// The counts since `earlier`, as text: "scanned 96, freed 0, second chances 88, …".
    func since(_ earlier: ReclaimTally) -> String {
        let names = ["scanned", "freed", "second chances", "locked by others", "busy", "no swap slot", "write errors"]
        return zip(names, zip(counts, earlier.counts)).map { "\($0) \($1.0 - $1.1)" }.joined(separator: ", ")
    }
}
