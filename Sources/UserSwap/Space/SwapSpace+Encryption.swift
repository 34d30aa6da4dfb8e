/// Encryption of a whole space's swap: pages are sealed when they leave the process.
///
/// By default (`.randomKey`) every device a space opens — from the configuration or added
/// later — except `.memory` (whose pages never leave the process) is wrapped in an
/// `EncryptedTier`: XChaCha20-Poly1305 under one random key made for the space, held only in
/// its memory (locked in RAM, read-only, wiped when the space's last device goes). A swap file
/// or a Redis server then holds only ciphertext, and a page changed there (by another user, a
/// disk, or whoever can reach the server) fails authentication with a typed error instead of
/// reaching the program: the tag that proves it is in our memory, under a key the device never
/// sees. `.none` turns this off (benchmarks against the kernel's own swap, which does not
/// encrypt either).
///
/// A backend that already seals its pages (`SwapBackend.sealsPages`: an `EncryptedTier`, or a
/// compressed tier over one) is used as given, so that compression keeps working below
/// encryption: `CompressedTier(lower: EncryptedTier(lower: file))`.
///
/// ```swift
/// let space = try SwapSpace(.init(memory: 256 << 20, devices: [.file(path: "/var/tmp/swap0", size: 1 << 30)]))
/// // sealed; `encryption: .none` for pages in clear
/// ```
extension SwapSpace {
    /// How the pages a space writes to its devices are protected.
    public struct Encryption: Sendable, CustomStringConvertible {
        /// Wraps one device's backend: what the device then reads and writes through.
        public typealias Sealer = @Sendable (any SwapBackend) throws(SwapError) -> any SwapBackend
        /// Called once per space; the sealer it returns holds that space's key.
        public typealias MakeSealer = @Sendable () throws(SwapError) -> Sealer

        /// A short name for reports ("none", "randomKey").
        public let name: String
        /// Makes the sealer and says what did not go as asked (a key that could not be locked).
        let makeSealer: (@Sendable () throws(SwapError) -> (Sealer, warnings: [SwapError]))?

        /// An encryption that seals every device's pages through what `makeSealer` returns.
        public init(name: String, makeSealer: @escaping MakeSealer) {
            self.name = name
            self.makeSealer = { () throws(SwapError) in (try makeSealer(), warnings: []) }
        }

        private init(name: String, makeSealerWithWarnings: (@Sendable () throws(SwapError) -> (Sealer, warnings: [SwapError]))?) {
            self.name = name
            makeSealer = makeSealerWithWarnings
        }

        /// Pages go to the devices as they are: readable by whoever can read the device.
        public static let none = Encryption(name: "none", makeSealerWithWarnings: nil)

        /// The default: every page a space writes to a device other than `.memory` is sealed
        /// with XChaCha20-Poly1305 (`EncryptedTier`) under one random key made for that space
        /// when it is created, with a fresh nonce per write of a slot. A page that fails
        /// authentication is a `SwapError(.ioError)`, never returned. A key that cannot be
        /// locked in RAM is a warning in `SwapSpace.warnings`, not an error.
        public static var randomKey: Self {
            Self(name: "randomKey") { () throws(SwapError) -> (Sealer, warnings: [SwapError]) in
                let key = try _PageKey()
                let sealer: Sealer = { (lower: any SwapBackend) throws(SwapError) -> any SwapBackend in
                    try EncryptedTier(lower: lower, key: key)
                }
                return (sealer, warnings: key.lockFailure.map { [$0] } ?? [])
            }
        }

        public var description: String { name }
    }
}
