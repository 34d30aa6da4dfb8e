import Glibc

/// A small, fast, seedable generator (SplitMix64) so random tests reproduce: each prints its
/// seed, and `USERSWAP_SEED=<n>` replays one.
struct SeededRandom: RandomNumberGenerator {
    private(set) var state: UInt64
    let seed: UInt64

    init(seed: UInt64) {
        self.seed = seed
        state = seed
    }

    /// The seed from `USERSWAP_SEED`, or a fresh one, printed so a failure can be replayed.
    static func fromEnvironment(_ test: String) -> SeededRandom {
        let seed: UInt64
        if let s = getenv("USERSWAP_SEED"), let v = UInt64(String(cString: s)) {
            seed = v
        } else {
            seed = UInt64.random(in: 1...UInt64.max)
        }
        print("\(test): seed \(seed) (replay with USERSWAP_SEED=\(seed))")
        return SeededRandom(seed: seed)
    }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
