import UserSwapBench

/// A command line that does not make sense: the user typed something we cannot run. Reported on
/// stderr with the verb's usage line, and the process exits with `ExitCode.usage` (64, BSD's
/// `EX_USAGE`).
public struct UsageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What was wrong, in words that say how to fix it ("--size needs a value, e.g. --size 1G").
    public let message: String
    /// The verb whose usage line to print; `nil` for the general one.
    public let verb: Verb?

    public init(_ message: String, verb: Verb? = nil) {
        self.message = message
        self.verb = verb
    }

    /// The synopsis printed under the message.
    public var usageLine: String { verb?.usageLine ?? CommandLineTool.usageLine }

    public var exitCode: Int32 { ExitCode.usage }

    /// The complete text for stderr: message, usage line, where to read more.
    public var description: String {
        let more = verb.map { "run `userswap help \($0.rawValue)` for its options" } ?? "run `userswap help` for the verbs"
        return "userswap: \(message)\n\(usageLine)\n\(more)\n"
    }
}
