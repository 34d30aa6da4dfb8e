import Foundation
import Testing

@testable import UserSwap
@testable import UserSwapBench
@testable import UserSwapCLI

/// Labels and paths reach a terminal only as visible text.
@Suite("Printable text")
struct PrintableTextTests {
    @Test(
        "controls and other non-printables become escapes; letters of every script pass",
        arguments: [
            ("plain label", "plain label"),
            ("\u{1B}[2J\u{1B}]0;t\u{07}", "\\u{1B}[2J\\u{1B}]0;t\\u{7}"),
            ("a\nb\rc\td\\e", "a\\nb\\rc\\td\\\\e"),
            ("\u{7F}\u{9B}31m", "\\u{7F}\\u{9B}31m"),
            ("abc\u{202E}fdp.exe", "abc\\u{202E}fdp.exe"),
            ("x\u{2028}y\u{E000}z\u{00A0}", "x\\u{2028}y\\u{E000}z\\u{A0}"),
            ("é 日本 😀", "é 日本 😀"),
        ])
    func escapes(input: String, expected: String) {
        #expect(PrintableText.escaped(input) == expected)
    }

    @Test("inspect prints a hostile label and path escaped, on stdout and in the report text")
    func inspectEscapes() throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let path = scratch.file("swap\u{1B}[1A\nfile")
        let label = "\u{1B}]0;owned\u{07}\u{1B}[2J"
        try SwapFile.format(path: path, bytes: 4 << 20, label: label)
        let report = try SwapFile.inspect(path: path)
        #expect(report.label == label, "the report keeps the label as it is; only its text escapes it")
        let text = report.text()
        #expect(!text.unicodeScalars.contains { $0 == "\u{1B}" || $0 == "\u{07}" }, "\(text.debugDescription)")
        #expect(text.contains("label      \\u{1B}]0;owned\\u{7}\\u{1B}[2J"), "\(text)")
        #expect(text.contains("swap\\u{1B}[1A\\nfile"), "\(text)")
        let printed = runTool(["inspect", path])
        #expect(printed.status == 0, "\(printed.stderr)")
        #expect(!printed.stdout.utf8.contains(0x1B) && !printed.stdout.utf8.contains(0x07), "\(printed.stdout.debugDescription)")
        // JSON carries the exact bytes, escaped the JSON way.
        let json = runTool(["inspect", path, "--json"])
        #expect(!json.stdout.utf8.contains(0x1B) && json.stdout.contains("\\u001b]0;owned"), "\(json.stdout)")
    }
}
