/// Encryption of a whole space's swap: one setting instead of wrapping each device by hand.
///
/// The engine knows no cipher (it builds with the toolchain alone), so the setting is a hook:
/// a module that has a cipher provides values of `SwapSpace.Encryption` —
/// `UserSwapEncryption` gives `.randomKey`. The space calls the hook once, when it is made,
/// for a sealer (where a per-space key is born), and passes every device it opens through that
/// sealer, from the configuration and from `swapOn` alike.
///
/// ```swift
/// import UserSwap
/// import UserSwapEncryption
/// let space = try SwapSpace(.init(memory: 256 << 20, devices: [.file(path: "/var/tmp/swap0", size: 1 << 30)],
///                                 encryption: .randomKey))
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
        let makeSealer: MakeSealer?

        /// An encryption that seals every device's pages through what `makeSealer` returns.
        public init(name: String, makeSealer: @escaping MakeSealer) {
            self.name = name
            self.makeSealer = makeSealer
        }

        private init(none: Void) {
            name = "none"
            makeSealer = nil
        }

        /// Pages go to the devices as they are (the default).
        public static let none = Encryption(none: ())

        public var description: String { name }
    }
}
