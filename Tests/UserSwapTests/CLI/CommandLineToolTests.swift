import Foundation
import Testing
import UserSwap

@testable import UserSwapBench
@testable import UserSwapCLI

extension CLI {
    /// `CommandLineTool.main` end to end, in-process: exit statuses and where the text goes.
    @Suite("Command line tool")
    struct CommandLineToolTests {
        @Test("no arguments: exit status 64 and the usage line on stderr")
        func noArguments() {
            let result = runTool([])
            #expect(result.status == 64)
            #expect(result.stdout.isEmpty)
            #expect(result.stderr.contains(CommandLineTool.usageLine))
        }

        @Test("a usage error of a verb prints that verb's usage line")
        func verbUsage() {
            let result = runTool(["format", "swap.img"])
            #expect(result.status == ExitCode.usage)
            #expect(result.stderr.contains(Verb.format.usageLine))
        }

        @Test("help goes to stdout with exit status 0")
        func help() {
            let general = runTool(["help"])
            #expect(general.status == 0)
            #expect(general.stdout.contains("verbs:"))
            let format = runTool(["format", "-h"])
            #expect(format.status == 0)
            #expect(format.stdout.hasPrefix(Verb.format.usageLine))
            #expect(format.stderr.isEmpty)
        }

        @Test("a failing verb exits 1 with the SwapError's description, in the command line's terms, on stderr")
        func failure() throws {
            try withTemporaryFolder { folder in
                let missing = folder + "/missing"
                var expected = ""
                do throws(SwapError) {
                    _ = try SwapFile.inspect(path: missing)
                    Issue.record("inspecting a missing file succeeded")
                } catch {
                    expected = error.description(for: .commandLine)
                    #expect(expected.contains("`userswap format \(missing) --size 1G`") && !error.description.contains("userswap format"))
                }
                let result = runTool(["inspect", missing])
                #expect(result.status == 1)
                #expect(result.stderr == "userswap: \(expected)\n")
            }
        }

        @Test("format then inspect --json: the report is JSON on stdout")
        func formatAndInspect() throws {
            try withTemporaryFolder { folder in
                let path = folder + "/swap0"
                let formatted = runTool(["format", path, "--size", "8M", "--label", "test"])
                #expect(formatted.status == 0, "\(formatted.stderr)")
                #expect(formatted.stdout.contains("label test"))
                let inspected = runTool(["inspect", path, "--json"])
                #expect(inspected.status == 0, "\(inspected.stderr)")
                _ = try jsonObject(Data(inspected.stdout.utf8))
                // A second format without --force must refuse.
                #expect(runTool(["format", path, "--size", "8M"]).status == 1)
            }
        }

        @Test("a small run swaps to a temporary file with no name and verifies")
        func run() {
            let result = runTool(["run", "--memory", "1M", "--data", "4M", "--ops", "5000", "--no-progress"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("verified "))
            #expect(result.stdout.contains(": all match"))
            #expect(result.stdout.contains("with no name (nothing is left on disk, even if the run is killed)"), "\(result.stdout)")
        }

        @Test("bench --list shows only listed scenarios")
        func list() {
            let result = runTool(["bench", "--list"])
            #expect(result.status == 0)
            #expect(!result.stdout.contains("_selfcheck"))
            #expect(result.stdout == BenchRegistry.listed.map { $0.name + "\n" }.joined())
        }

        #if DEBUG
        @Test("bench refuses to run in a debug build")
        func benchRefusesDebug() {
            let result = runTool(["bench", "_selfcheck"])
            #expect(result.status == 1)
            #expect(result.stderr == "userswap: benchmarks need a release build: make bench\n")
        }
        #endif
    }
}
