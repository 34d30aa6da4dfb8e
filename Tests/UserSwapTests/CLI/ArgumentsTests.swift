import Testing

@testable import UserSwapBench
@testable import UserSwapCLI

extension CLI {
    /// The parser as a pure function: command line in, `Invocation` or `UsageError` out.
    @Suite("Arguments")
    struct ArgumentsTests {
        @Test("format takes a file, a size with a suffix, a label and --force")
        func formatWithEverything() {
            let parsed = CommandLineTool.parse(["format", "/tmp/swap0", "--size", "1.5G", "--label", "fast", "--force"])
            #expect(parsed == .success(.format(FormatOptions(path: "/tmp/swap0", bytes: 3 << 29, label: "fast", force: true))))
            let written = CommandLineTool.parse(["format", "/tmp/swap0", "--size", "4M", "--write-out"])
            #expect(written == .success(.format(FormatOptions(path: "/tmp/swap0", bytes: 4 << 20, writeOut: true))))
        }

        @Test("options may come before the file and use --name=value")
        func formatInlineValue() {
            let parsed = CommandLineTool.parse(["format", "--size=256M", "swap.img"])
            #expect(parsed == .success(.format(FormatOptions(path: "swap.img", bytes: 256 << 20))))
        }

        @Test("format without --size is a usage error that names --size")
        func formatNeedsSize() throws {
            let error = try #require(usageError(["format", "swap.img"]))
            #expect(error.verb == .format)
            #expect(error.message.contains("--size"))
            #expect(error.exitCode == 64)
        }

        static let sizeCases: [(String, Int64)] = [
            ("4096", 4096), ("64K", 64 << 10), ("64k", 64 << 10), ("512KiB", 512 << 10),
            ("256M", 256 << 20), ("256MB", 256 << 20), ("1.5G", 3 << 29), ("2T", 2 << 40),
            (".5M", 512 << 10), ("1.50G", 3 << 29), ("0", 0), (" 8M ", 8 << 20),
        ]

        @Test("a size is parsed with binary suffixes", arguments: sizeCases)
        func sizes(text: String, bytes: Int64) {
            #expect(ByteSize.parse(text) == .success(bytes))
        }

        static let badSizeCases: [(String, ByteSizeError)] = [
            ("", .empty), ("abc", .badUnit("abc")), ("-1G", .negative("-1G")),
            ("1.5.5G", .notANumber("1.5.5G")), ("12Q", .badUnit("12Q")), ("G", .notANumber("G")),
            ("5.", .notANumber("5.")), ("1.1K", .notWholeBytes("1.1K")), ("99999999999T", .tooLarge("99999999999T")),
            ("99999999999999999999", .tooLarge("99999999999999999999")),
        ]

        @Test("a bad size says what is wrong with it", arguments: badSizeCases)
        func badSizes(text: String, error: ByteSizeError) {
            #expect(ByteSize.parse(text) == .failure(error))
        }

        @Test("a bad --size is a usage error of format", arguments: ["lots", "-1", "1.1K", ""])
        func badSizeOption(text: String) throws {
            let error = try #require(usageError(["format", "swap.img", "--size", text]))
            #expect(error.verb == .format)
            #expect(error.message.hasPrefix("--size"))
        }

        @Test("an unknown option is a usage error with a suggestion and exit status 64")
        func unknownOption() throws {
            let error = try #require(usageError(["format", "swap.img", "--szie", "1G"]))
            #expect(error.message == "unknown option '--szie' for 'format'; did you mean --size?")
            #expect(error.exitCode == ExitCode.usage)
            #expect(error.description.contains(Verb.format.usageLine))
        }

        @Test("short options other than -h are unknown")
        func shortOption() throws {
            let error = try #require(usageError(["inspect", "-j", "swap.img"]))
            #expect(error.message.contains("'-j'"))
        }

        @Test("a flag given a value is a usage error")
        func flagWithValue() throws {
            let error = try #require(usageError(["format", "x", "--size", "1G", "--force=yes"]))
            #expect(error.message == "--force takes no value")
        }

        @Test("an option missing its value is a usage error, not a swallowed option")
        func missingValue() throws {
            let error = try #require(usageError(["format", "x", "--size", "--force"]))
            #expect(error.message == "--size needs a value: --size SIZE")
        }

        @Test("inspect takes one file and an optional --json flag")
        func inspect() throws {
            #expect(CommandLineTool.parse(["inspect", "swap.img"]) == .success(.inspect(InspectOptions(path: "swap.img"))))
            #expect(
                CommandLineTool.parse(["inspect", "--json", "swap.img"]) == .success(.inspect(InspectOptions(path: "swap.img", json: true)))
            )
            #expect(try #require(usageError(["inspect"])).message == "missing FILE")
            #expect(try #require(usageError(["inspect", "a", "b"])).message == "unexpected argument 'b'")
        }

        @Test("after -- every word is a file name, even one that looks like an option")
        func terminator() {
            #expect(CommandLineTool.parse(["inspect", "--", "--odd-name"]) == .success(.inspect(InspectOptions(path: "--odd-name"))))
        }

        @Test("run takes options only (RunCommandTests has the rest)")
        func run() throws {
            #expect(CommandLineTool.parse(["run"]) == .success(.run(RunOptions())))
            #expect(try #require(usageError(["run", "extra"])).verb == .run)
        }

        @Test("help: general, per verb, and -h/--help anywhere")
        func help() throws {
            #expect(CommandLineTool.parse(["help"]) == .success(.help(nil)))
            #expect(CommandLineTool.parse(["help", "format"]) == .success(.help(.format)))
            #expect(CommandLineTool.parse(["--help"]) == .success(.help(nil)))
            #expect(CommandLineTool.parse(["format", "--help"]) == .success(.help(.format)))
            // Help wins over a broken command line, so a user in trouble gets it.
            #expect(CommandLineTool.parse(["bench", "--threads", "zero", "-h"]) == .success(.help(.bench)))
            #expect(CommandLineTool.parse(["help", "bench", "--help"]) == .success(.help(.bench)))
            #expect(try #require(usageError(["help", "frobnicate"])).verb == .help)
        }

        @Test("no verb, an unknown verb, or an option first is a general usage error")
        func badVerb() throws {
            #expect(try #require(usageError([])).message == "missing verb")
            let unknown = try #require(usageError(["frobnicate"]))
            #expect(unknown.verb == nil)
            #expect(unknown.description.contains(CommandLineTool.usageLine))
            #expect(try #require(usageError(["--size", "1G"])).message.contains("the verb comes first"))
        }

        @Test("bench parses every option into BenchOptions")
        func benchOptions() {
            let parsed = CommandLineTool.parse([
                "bench", "_selfcheck", "--json", "out/x.json", "--threads", "8", "--seconds", "0.5",
                "--protocol", "both", "--mode", "transparent", "--memory", "256M", "--data", "1G",
                "--iterations", "7", "--warmup", "0", "--seed", "42", "--dir", "/var/tmp",
                "--param", "steps=32", "--no-progress",
            ])
            let expected = BenchOptions(
                scenario: "_selfcheck", json: .file("out/x.json"), threads: 8, seconds: 0.5,
                protocols: [.swapcache, .legacy], mode: .transparent, memoryBytes: 256 << 20,
                dataBytes: 1 << 30, iterations: 7, warmup: 0, seed: 42, directory: "/var/tmp",
                parameters: ["steps": "32"], showsProgress: false
            )
            #expect(parsed == .success(.bench(expected)))
        }

        @Test(
            "bench --json alone, before an option, or as - goes to stdout",
            arguments: [
                ["bench", "_selfcheck", "--json"],
                ["bench", "_selfcheck", "--json", "--threads", "1"],
                ["bench", "_selfcheck", "--json", "-"],
                ["bench", "--json", "_selfcheck"],
            ])
        func benchJSONToStdout(arguments: [String]) throws {
            guard case .success(.bench(let options)) = CommandLineTool.parse(arguments) else {
                Issue.record("\(arguments) did not parse as bench")
                return
            }
            #expect(options.json == .stdout)
            #expect(options.scenario == "_selfcheck")
        }

        @Test("bench defaults: swap-cache protocol, progress on, everything else the scenario's")
        func benchDefaults() {
            #expect(CommandLineTool.parse(["bench", "_selfcheck"]) == .success(.bench(BenchOptions(scenario: "_selfcheck"))))
        }

        static let badBenchOptions: [([String], String)] = [
            (["--threads", "0"], "--threads 0 is out of range; use 1…4096"),
            (["--threads", "many"], "--threads 'many' is not a whole number"),
            (["--threads", "5000"], "--threads 5000 is out of range; use 1…4096"),
            (["--seconds", "0"], "--seconds 0 is out of range; use a number above 0 and at most 86400"),
            (["--seconds", "soon"], "--seconds 'soon' is not a number of seconds"),
            (["--protocol", "fast"], "--protocol 'fast' is not one of: swapcache, legacy, both, legacy-wq, legacy-bypass, all"),
            (["--mode", "magic"], "--mode 'magic' is not one of: explicit, transparent, kernel"),
            (["--seed", "-3"], "--seed '-3' is not a whole number from 0 to 18446744073709551615"),
            (["--param", "novalue"], "--param 'novalue' must be KEY=VALUE"),
        ]

        @Test("bench validates numbers and words", arguments: badBenchOptions)
        func benchValidation(extra: [String], message: String) throws {
            let error = try #require(usageError(["bench", "_selfcheck"] + extra))
            #expect(error.message == message)
            #expect(error.verb == .bench)
        }

        @Test("bench needs a known scenario; --list needs none")
        func benchScenario() throws {
            #expect(try #require(usageError(["bench", "nosuch"])).message.hasPrefix("unknown scenario 'nosuch'"))
            #expect(try #require(usageError(["bench"])).message.hasPrefix("bench needs a scenario"))
            #expect(CommandLineTool.parse(["bench", "--list"]) == .success(.listScenarios))
        }

        @Test("the last of a repeated option wins")
        func lastWins() {
            #expect(
                CommandLineTool.parse(["format", "x", "--size", "1G", "--size", "2G"])
                    == .success(.format(FormatOptions(path: "x", bytes: 2 << 30))))
        }

        @Test("sizes read back in binary units")
        func formatSizes() {
            #expect(ByteSize.format(512) == "512 B")
            #expect(ByteSize.format(64 << 20) == "64 MiB")
            #expect(ByteSize.format(3 << 29) == "1.5 GiB")
        }

        @Test("every verb's help lists its options and starts with its usage line", arguments: Verb.allCases)
        func helpText(verb: Verb) {
            let text = HelpText.verb(verb)
            #expect(text.hasPrefix(verb.usageLine))
            for option in verb.options {
                #expect(text.contains("--\(option.name)"))
            }
        }
    }
}
