import Foundation
import Synchronization
import Testing

@testable import UserSwapBench
@testable import UserSwapCLI

/// The CLI suites live under one `CLI` namespace, so `swift test --filter CLI` runs exactly them.
@Suite("CLI")
enum CLI {}

/// A console whose stdout and stderr are kept for the test to read.
final class CapturedConsole: Sendable {
    private let output = Mutex("")
    private let error = Mutex("")

    var console: Console {
        Console(
            errorIsTerminal: false,
            writeOutput: { text in self.output.withLock { $0 += text } },
            writeError: { text in self.error.withLock { $0 += text } }
        )
    }

    var stdout: String { output.withLock { $0 } }
    var stderr: String { error.withLock { $0 } }
}

/// Runs `userswap ARGS` in-process and returns the exit status with what it printed.
func runTool(_ arguments: [String]) -> (status: Int32, stdout: String, stderr: String) {
    let captured = CapturedConsole()
    let status = CommandLineTool.main(arguments, console: captured.console)
    return (status, captured.stdout, captured.stderr)
}

/// The `UsageError` of a command line that must not parse.
func usageError(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) -> UsageError? {
    switch CommandLineTool.parse(arguments) {
    case .success(let invocation):
        Issue.record("\(arguments) parsed as \(invocation), expected a usage error", sourceLocation: sourceLocation)
        return nil
    case .failure(let error):
        return error
    }
}

/// A fresh temporary folder for one test, removed afterwards.
func withTemporaryFolder<T>(_ body: (String) throws -> T) throws -> T {
    try ScratchDirectory.with(prefix: "userswap-cli-test", body)
}

/// Runs one benchmark in a fresh temporary folder and returns its JSON report. `options` gets the
/// folder (for `directory:`, the swap files' place) and the report's destination (for `json:`).
func benchReport(
    _ options: (_ folder: String, _ json: JSONDestination) -> BenchOptions,
    sourceLocation: SourceLocation = #_sourceLocation
) throws -> [String: Any] {
    try withTemporaryFolder { folder in
        let path = folder + "/report.json"
        try BenchCommand.perform(options(folder, .file(path)), console: CapturedConsole().console)
        return try jsonObject(Data(contentsOf: URL(fileURLWithPath: path)), sourceLocation: sourceLocation)
    }
}

/// A decoded JSON object.
func jsonObject(_ data: Data, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
    try #require(JSONSerialization.jsonObject(with: data) as? [String: Any], sourceLocation: sourceLocation)
}
