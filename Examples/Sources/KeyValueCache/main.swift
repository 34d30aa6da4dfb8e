// A key-value cache bigger than its RAM budget: an open-addressing hash table whose slots live in
// a SwappableArray. Lookups touch one or two pages; the cold part of the table waits on swap.
import Foundation
import UserSwap

/// A fixed-size value: what a cache of session records or feature vectors holds.
struct Value: Equatable {
    var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)

    init(for key: UInt64, generation: UInt64) {
        let seed = key &* 0xBF58_476D_1CE4_E5B9 &+ generation
        words = (seed, seed ^ 1, seed ^ 2, seed ^ 3, seed ^ 4, generation)
    }

    static func == (a: Value, b: Value) -> Bool { a.words == b.words }
}

/// One slot of the table: 64 bytes, so that 64 slots fill a page.
struct Slot {
    var key: UInt64 = 0  // 0: empty
    var tag: UInt64 = 0
    var value = Value(for: 0, generation: 0)
}

/// Linear probing over a power-of-two table; keys are nonzero.
final class SwappableCache: Sendable {
    let slots: SwappableArray<Slot>
    let mask: Int

    init(capacity: Int, in space: SwapSpace) throws(SwapError) {
        var size = 1
        while size < capacity * 2 { size <<= 1 }  // at most half full
        slots = try SwappableArray<Slot>(repeating: Slot(), count: size, in: space)
        mask = size - 1
    }

    private func home(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 17) & mask }

    func set(_ value: Value, for key: UInt64) throws(SwapError) {
        var i = home(key)
        while true {
            let slot = try slots.element(at: i)
            if slot.key == 0 || slot.key == key {
                try slots.setElement(Slot(key: key, tag: key ^ 0xA5A5, value: value), at: i)
                return
            }
            i = (i + 1) & mask
        }
    }

    func value(for key: UInt64) throws(SwapError) -> Value? {
        var i = home(key)
        while true {
            let slot = try slots.element(at: i)
            if slot.key == 0 { return nil }
            if slot.key == key { return slot.value }
            i = (i + 1) & mask
        }
    }
}

let small = CommandLine.arguments.contains("--small")
let keys = small ? 20_000 : 4_000_000  // table: 2.5 MiB or 512 MiB
let budget = small ? 512 << 10 : 48 << 20
let space = try SwapSpace(.init(memory: budget, devices: [.temporary(size: Int64(keys) * 64 * 4 + (8 << 20))]))
let cache = try SwappableCache(capacity: keys, in: space)

func key(_ i: Int) -> UInt64 { UInt64(i) &* 2_654_435_761 &+ 1 }

for i in 0..<keys { try cache.set(Value(for: key(i), generation: 0), for: key(i)) }
// Update a random third, then look every key up, and some that were never stored.
var generation = [UInt8](repeating: 0, count: keys)
for _ in 0..<keys / 3 {
    let i = Int.random(in: 0..<keys)
    generation[i] &+= 1
    try cache.set(Value(for: key(i), generation: UInt64(generation[i])), for: key(i))
}
var wrong = 0
for i in (0..<keys).shuffled() where try cache.value(for: key(i)) != Value(for: key(i), generation: UInt64(generation[i])) {
    wrong += 1
}
for i in keys..<keys + 1000 where try cache.value(for: key(i)) != nil { wrong += 1 }

let stats = space.statistics
guard wrong == 0, stats[.swapIns] > 0 else {
    print("FAILED: \(wrong) wrong lookups; \(stats[.swapIns]) swap-ins")
    exit(1)
}
print(
    "KeyValueCache: verified \(keys) keys and 1000 misses; table of \(cache.slots.count) slots "
        + "(\((cache.slots.count * 64) >> 10) KiB) in a \(budget >> 10) KiB budget; \(stats[.swapIns]) swap-ins")
