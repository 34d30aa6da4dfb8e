import Testing

@testable import UserSwapRedis

/// The cluster's key hashing, against the specification's vectors and the examples `CLUSTER
/// KEYSLOT` answers on Redis 7 (the live cross-check is in the cluster suite).
@Suite("Redis Cluster hash slots")
struct RedisHashSlotTests {
    @Test("CRC16 (XMODEM) of the specification's check string is 0x31C3")
    func crc16Vector() {
        #expect(RedisHashSlot.crc16(Array("123456789".utf8)) == 0x31C3)
        #expect(RedisHashSlot.crc16([UInt8]()) == 0)
    }

    @Test(
        "keys map to the slots CLUSTER KEYSLOT gives",
        arguments: [
            ("123456789", 12739), ("foo", 12182), ("bar", 5061), ("somekey", 11058), ("hello", 866), ("", 0),
        ])
    func slots(key: String, slot: Int) {
        #expect(RedisHashSlot(key: key).index == slot)
    }

    @Test("hash tags: the first {…} that is not empty decides; an empty one hashes the whole key")
    func hashTags() {
        #expect(RedisHashSlot(key: "{user1000}.following") == RedisHashSlot(key: "{user1000}.followers"))
        #expect(RedisHashSlot(key: "{user1000}.following").index == 3443)
        #expect(RedisHashSlot(key: "foo{}{bar}").index == 8363)  // `{}` is empty: the whole key
        #expect(RedisHashSlot(key: "foo{{bar}}zap").index == 4015)  // the tag is `{bar`
        #expect(RedisHashSlot(key: "foo{bar}{zap}") == RedisHashSlot(key: "bar"))
        #expect(RedisHashSlot(key: "foo{bar") == RedisHashSlot(key: "foo{bar"))
        #expect(RedisHashSlot(key: "foo{bar").index == Int(RedisHashSlot.crc16(Array("foo{bar".utf8))) & 16383)
    }

    @Test("a device's keys: one slot per key group of 512 pages, groups spread over the slots")
    func deviceKeys() {
        let format = RedisPageFormat(namespace: "userswap-1-a", instance: 1)
        #expect(RedisHashSlot(key: format.key(of: 3)).index == 6994)
        #expect(RedisHashSlot(key: format.key(of: 512)).index == 2931)
        for group in 0..<8 {
            let slot = RedisHashSlot(key: format.key(of: group * 512))
            #expect((1..<512).allSatisfy { RedisHashSlot(key: format.key(of: group * 512 + $0)) == slot })
        }
        // 3 masters each serve a third of the slots: 300 groups land on all three.
        let thirds = Set((0..<300).map { RedisHashSlot(key: format.key(of: $0 * 512)).index * 3 / RedisHashSlot.count })
        #expect(thirds == [0, 1, 2])
    }
}
