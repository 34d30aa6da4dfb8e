import UserSwap

#if DEBUG
/// Tests only, in debug builds only: a swap device a test supplies in place of the one the
/// options name, made for the size the run needs. Tests build it from their own support (a
/// device that corrupts what it reads), so that the benchmarks link no test code.
public struct SwapDeviceOverride: Equatable, Sendable {
    /// What the device does, for messages and equality (two overrides of one name are the same).
    public let name: String
    /// The device for a swap of `bytes`.
    public let make: @Sendable (_ bytes: Int64) -> SwapSpace.DeviceConfiguration

    public init(_ name: String, make: @escaping @Sendable (_ bytes: Int64) -> SwapSpace.DeviceConfiguration) {
        self.name = name
        self.make = make
    }

    public static func == (a: Self, b: Self) -> Bool { a.name == b.name }
}
#endif
