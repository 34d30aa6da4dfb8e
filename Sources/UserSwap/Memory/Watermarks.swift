/// Free-frame thresholds (kernel: `WMARK_MIN/LOW/HIGH`): below `low` the background reclaimer
/// wakes; it reclaims until `high`; below `min` allocating threads reclaim themselves first.
struct Watermarks: Sendable {
    let min: Int
    let low: Int
    let high: Int

    /// min is 1/128 of the budget (at least one frame), low and high 5/4 and 3/2 of min, as the
    /// kernel spaces them, plus a readahead reserve above both: `readaheadReserve` frames (the
    /// space passes two of the largest readahead windows), at most 1/32 of the budget, so that
    /// readahead, which stops at min rather than reclaim, finds a whole window free while the
    /// background reclaimer keeps up.
    init(frames: Int, readaheadReserve: Int) {
        min = Swift.max(1, frames / 128)
        let reserve = Swift.min(readaheadReserve, frames / 32)
        low = min + min / 4 + reserve
        high = min + min / 2 + reserve
    }
}
