import UserSwap

/// A Redis Cluster hash slot: which of the 16384 slots a key belongs to, as the cluster
/// specification defines it (`keyHashSlot()` in Redis's `cluster.c`): CRC16 (XMODEM: polynomial
/// 0x1021, initial value 0, no reflection) of the key, or of its hash tag (the bytes between
/// the first `{` and the next `}`, when that is not empty), modulo 16384.
///
/// Every key of a UserSwap device carries one hash tag per swap cluster (`RedisPageFormat`), so
/// a key group has one slot, computed once per group rather than once per key.
struct RedisHashSlot: Hashable, Sendable, Comparable {
    /// Slots in a Redis Cluster (`CLUSTER_SLOTS`).
    static let count = 16384

    let index: Int

    init(_ index: Int) {
        require(index >= 0 && index < Self.count, "hash slot \(index) outside 0..<16384")
        self.index = index
    }

    /// The slot of `key`, hash tag rules included.
    init(key: some Collection<UInt8>) {
        let bytes = Array(key)
        var hashed = bytes[...]
        if let open = bytes.firstIndex(of: UInt8(ascii: "{")),
            let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            hashed = bytes[(open + 1)..<close]
        }
        self.init(Int(Self.crc16(hashed)) & (Self.count - 1))
    }

    init(key: String) { self.init(key: Array(key.utf8)) }

    static func < (a: Self, b: Self) -> Bool { a.index < b.index }

    /// CRC16-CCITT (XMODEM), the cluster's key hash (`crc16()` in Redis's `crc16.c`), from the
    /// table below.
    static func crc16(_ bytes: some Collection<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for b in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ b)]
        }
        return crc
    }

    /// The 256 CRCs of one byte each, built once from the polynomial.
    private static let table: [UInt16] = (0..<256).map { byte in
        var crc = UInt16(byte) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
