import UserSwap
import UserSwapBench

/// `userswap inspect FILE [--json]`: `SwapFile.inspect`, as text or JSON on stdout.
enum InspectCommand {
    static func run(_ options: InspectOptions, console: Console) throws {
        let report = try SwapFile.inspect(path: options.path)
        if options.json {
            try JSONOutput.write(report, to: .stdout, console: console)
        } else {
            console.line(report.text())
        }
    }
}
