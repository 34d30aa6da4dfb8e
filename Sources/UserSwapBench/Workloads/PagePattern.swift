import UserSwap

/// The content of a page written by a workload: 512 words that depend on the run's seed, the
/// page's index and the version of the write, so a page read from the wrong slot, an older write
/// of the same page, or a copy torn by a bad swap-out all fail the check.
///
/// Word i = base + (i mod period) × G (G the golden-ratio constant, odd), base =
/// SplitMix64.mix(seed, page, version): one hash per page and a cheap, vectorizable fill. A page
/// never written (version 0) must be all zeroes. With the full period (512 words, the default)
/// no compressor shrinks a page; a period of 512 / N repeats the first 4096 / N bytes N times,
/// which LZ4 and zram take to about 1/N: compressible data for the compressed tier.
public enum PagePattern {
    public static let words = 4096 / 8
    static let step: UInt64 = 0x9E37_79B9_7F4A_7C15

    @inline(__always)
    static func base(page: Int, version: UInt32, seed: UInt64) -> UInt64 {
        SplitMix64.mix(seed ^ SplitMix64.mix(UInt64(truncatingIfNeeded: page) << 32 | UInt64(version)))
    }

    /// Writes version `version` (≥ 1) of `page` into `bytes` (4 KiB).
    @inline(__always)
    public static func fill(_ bytes: UnsafeMutableRawBufferPointer, page: Int, version: UInt32, seed: UInt64, period: Int = words) {
        require(
            bytes.count == 4096 && version != 0,
            "a pattern fills one 4096-byte page with a version above 0, not \(bytes.count) bytes with version \(version)")
        let base = base(page: page, version: version, seed: seed)
        // Raw stores: the page's memory is untyped (the engine zero-fills it as bytes).
        let start = bytes.baseAddress!
        let mask = period - 1
        for index in 0..<Self.words {
            start.storeBytes(of: base &+ UInt64(truncatingIfNeeded: index & mask) &* step, toByteOffset: index * 8, as: UInt64.self)
        }
    }

    /// Checks the first and last words: what a hot-path read checks (a wrong page, a stale
    /// version or a zeroed page all show there).
    @inline(__always)
    public static func quickCheck(_ bytes: UnsafeRawBufferPointer, page: Int, version: UInt32, seed: UInt64, period: Int = words) -> Bool {
        let first = bytes.load(fromByteOffset: 0, as: UInt64.self)
        let last = bytes.load(fromByteOffset: 4096 - 8, as: UInt64.self)
        guard version != 0 else { return first == 0 && last == 0 }
        let base = base(page: page, version: version, seed: seed)
        return first == base && last == base &+ UInt64((Self.words - 1) & (period - 1)) &* step
    }

    /// Checks every word: what the final verification checks.
    public static func check(_ bytes: UnsafeRawBufferPointer, page: Int, version: UInt32, seed: UInt64, period: Int = words) -> Bool {
        require(bytes.count == 4096, "a pattern checks one 4096-byte page, not \(bytes.count) bytes")
        let start = bytes.baseAddress!
        let base = version == 0 ? 0 : base(page: page, version: version, seed: seed)
        let step = version == 0 ? 0 : Self.step
        let mask = period - 1
        var differences: UInt64 = 0
        for index in 0..<Self.words {
            differences |=
                start.load(fromByteOffset: index * 8, as: UInt64.self) ^ (base &+ UInt64(truncatingIfNeeded: index & mask) &* step)
        }
        return differences == 0
    }
}
