import UserSwap
import UserSwapBench
import UserSwapTestSupport

extension SwapDeviceOverride {
    /// Process memory that inverts byte `byte` of every page read back from it.
    static func corruptingReads(byte: Int) -> Self {
        SwapDeviceOverride("memory that inverts byte \(byte) of every page read") { bytes in
            let corrupting = FaultInjectingBackend(MemoryBackend(pageCount: Int(bytes) / SwapPage.size))
            corrupting.inject(.corrupt(byte: byte), on: .read, when: .always)
            return .backend(corrupting)
        }
    }
}
