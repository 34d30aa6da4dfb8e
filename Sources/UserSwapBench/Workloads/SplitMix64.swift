/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014):
/// one 64-bit word of state, a Weyl sequence passed through a bijective mixer. Used to seed
/// `Xoshiro256StarStar` from one number (as its authors recommend) and, through `mix`, as the
/// hash behind page patterns and hash-table keys.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// The golden-ratio increment of the Weyl sequence.
    public static let increment: UInt64 = 0x9E37_79B9_7F4A_7C15

    public mutating func next() -> UInt64 {
        state &+= Self.increment
        return Self.mix(state)
    }

    /// The finalizer alone: a bijection of `UInt64` that spreads every input bit over every
    /// output bit (each step, an xor-shift or a multiply by an odd constant, is invertible).
    @inline(__always)
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The inverse of `mix`: `mix(unmix(x)) == x` for every `x`. Each step undoes one of
    /// `mix`'s, last first: an xor-shift by `s` is undone by xoring the shifts by `s`, `2s`, …
    /// below 64, a multiply by the constant's inverse modulo 2^64.
    @inline(__always)
    public static func unmix(_ value: UInt64) -> UInt64 {
        var z = value
        z = z ^ (z >> 31) ^ (z >> 62)
        z = z &* 0x3196_42B2_D24D_8EC3
        z = z ^ (z >> 27) ^ (z >> 54)
        z = z &* 0x96DE_1B17_3F11_9089
        return z ^ (z >> 30) ^ (z >> 60)
    }
}
