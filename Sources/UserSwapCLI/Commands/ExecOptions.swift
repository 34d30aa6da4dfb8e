/// The options of `userswap exec`, validated by the parser: how to run an unmodified program
/// with its heap in UserSwap's memory (docs/EXEC.md).
public struct ExecOptions: Equatable, Sendable {
    /// Where the program's heap swaps to.
    public enum Swap: Equatable, Sendable {
        /// An unnamed swap file in `directory` (nil: $TMPDIR, else /tmp), gone from the disk at
        /// once: nothing is left however the program ends.
        case temporaryFile(directory: String?)
        /// `--device FILE`: a named swap file, created if missing and kept.
        case file(String)
        /// `--device redis://…` or `unix://…`: a Redis server.
        case redis(String)
    }

    /// `--memory`: the RAM budget of the heap.
    public var memoryBytes: Int64 = 256 << 20
    /// `--swap-size`: the swap behind it; the heap holds at most budget + swap. Nil: 8 × memory.
    public var swapBytes: Int64?
    /// `--swap-dir` or `--device`: where the heap swaps to.
    public var swap: Swap = .temporaryFile(directory: nil)
    /// `--report FILE`: a JSON report at exit.
    public var reportPath: String?
    /// `--quiet`: no summary line on stderr at exit.
    public var quiet = false
    /// `--no-encryption`: pages go to swap in clear.
    public var noEncryption = false
    /// The program and its arguments (after `--`).
    public var command: [String]

    /// The defaults, running `command`.
    public init(command: [String]) {
        self.command = command
    }

    /// The swap size in bytes: as given, or 8 × the budget.
    public var effectiveSwapBytes: Int64 { swapBytes ?? memoryBytes * 8 }
}
