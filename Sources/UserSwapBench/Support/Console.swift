import CUserSwap
import Foundation

/// Where the command's output goes. `standard` is the process's stdout and stderr; tests pass
/// a console that captures both, so `CommandLineTool.main` can be checked without a subprocess.
public struct Console: Sendable {
    /// Writes text (with its own newlines) to standard output.
    public let writeOutput: @Sendable (String) -> Void
    /// Writes text (with its own newlines) to standard error.
    public let writeError: @Sendable (String) -> Void
    /// Whether stderr is a terminal: progress draws a bar there, and plain lines otherwise.
    public let errorIsTerminal: Bool

    public init(
        errorIsTerminal: Bool = false,
        writeOutput: @escaping @Sendable (String) -> Void,
        writeError: @escaping @Sendable (String) -> Void
    ) {
        self.writeOutput = writeOutput
        self.writeError = writeError
        self.errorIsTerminal = errorIsTerminal
    }

    /// The process's stdout (through C stdio, line-buffered by `main`, so it interleaves with any
    /// `print` a scenario does) and stderr (unbuffered `write(2)`).
    public static var standard: Console {
        Console(
            errorIsTerminal: cus_stderr_is_tty() != 0,
            writeOutput: { print($0, terminator: "") },
            writeError: { FileHandle.standardError.write(Data($0.utf8)) }
        )
    }

    /// A line on stdout.
    package func line(_ text: String) { writeOutput(text.hasSuffix("\n") ? text : text + "\n") }

    /// A line on stderr.
    package func errorLine(_ text: String) { writeError(text.hasSuffix("\n") ? text : text + "\n") }
}
