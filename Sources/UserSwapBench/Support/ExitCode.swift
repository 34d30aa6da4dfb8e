/// The process exit statuses of `userswap`.
public enum ExitCode {
    public static let success: Int32 = 0
    /// The command was understood but failed (a `SwapError`, an I/O error, a debug-build bench).
    public static let failure: Int32 = 1
    /// The command line was wrong (BSD `EX_USAGE`).
    public static let usage: Int32 = 64
}
