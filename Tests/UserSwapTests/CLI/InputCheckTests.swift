import Foundation
import Glibc
import Testing
import UserSwap

@testable import UserSwapBench
@testable import UserSwapCLI

extension CLI {
    /// The commands check the paths and sizes they are given before they work, and say what to
    /// change in words: one test per message.
    @Suite("Inputs checked up front")
    struct InputCheckTests {
        /// A run that must fail before it starts: small sizes, so that a check that is missing
        /// shows as a run that went ahead (and a test that takes seconds, not minutes).
        static func run(_ words: [String]) -> (status: Int32, stdout: String, stderr: String) {
            runTool(["run", "--memory", "1M", "--data", "4M", "--ops", "100", "--no-progress"] + words)
        }

        @Test("format and inspect of an empty path are usage errors, not '  does not exist'")
        func emptyPath() throws {
            for words in [["format", "", "--size", "4M"], ["inspect", ""]] {
                let error = try #require(usageError(words))
                #expect(error.message == "FILE is empty; give a path")
            }
        }

        @Test("format into a folder that takes no new files says so, not that the folder is missing")
        func formatIntoProc() throws {
            let result = runTool(["format", "/proc/userswap-test.swap", "--size", "4M"])
            #expect(result.status == ExitCode.failure)
            #expect(!result.stderr.contains("does not exist"), "\(result.stderr)")
            #expect(
                result.stderr.contains("/proc does not take new files") || result.stderr.contains("/proc is not writable"),
                "\(result.stderr)")
        }

        @Test("inspect of a file that is not a swap file suggests a format command that works as given")
        func inspectSuggestion() throws {
            try withTemporaryFolder { folder in
                let path = folder + "/data.bin"
                #expect(FileManager.default.createFile(atPath: path, contents: Data(repeating: 7, count: 3 << 20)))
                let result = runTool(["inspect", path])
                #expect(result.status == ExitCode.failure)
                let suggestion = try #require(result.stderr.split(separator: "`").dropFirst().first, "\(result.stderr)")
                #expect(suggestion == "userswap format \(path) --size 3M --force")
                let words = suggestion.split(separator: " ").dropFirst().map(String.init)
                #expect(runTool(words).status == ExitCode.success)
                #expect(runTool(["inspect", path]).status == ExitCode.success)
            }
        }

        @Test("run with more data than the swap file's file system holds names --data, before it starts")
        func runDataTooLarge() {
            let result = runTool(["run", "--data", "4T", "--ops", "10", "--no-progress"])
            #expect(result.status == ExitCode.failure)
            #expect(result.stderr.contains("give a smaller --data"), "\(result.stderr)")
            #expect(!result.stderr.contains("--size") && !result.stdout.contains("userswap run: zipf"), "\(result.stdout)\(result.stderr)")
        }

        @Test("bench --memory 0 and --memory 1 get the same message")
        func benchMemoryMinimum() throws {
            let zero = try #require(usageError(["bench", "zipf", "--memory", "0"]))
            let one = try #require(usageError(["bench", "zipf", "--memory", "1"]))
            #expect(zero.message == "--memory 0 is too small; it must be at least 64 KiB")
            #expect(one.message == "--memory 1 is too small; it must be at least 64 KiB")
        }

        @Test("run with --memory above --data says that nothing will be swapped")
        func runNothingSwaps() throws {
            let result = runTool(["run", "--memory", "1M", "--data", "512K", "--ops", "100", "--no-progress", "--no-encryption"])
            #expect(result.status == ExitCode.success, "\(result.stderr)")
            #expect(result.stderr.contains("--memory 1 MiB holds all 512 KiB of --data, so nothing will be swapped"), "\(result.stderr)")
            #expect(!Self.run([]).stderr.contains("nothing will be swapped"))
        }

        @Test("run --dir puts the swap file in an existing folder; a missing one is an error and is not created")
        func runDir() throws {
            try withTemporaryFolder { folder in
                let ok = Self.run(["--dir", folder])
                #expect(ok.status == ExitCode.success, "\(ok.stderr)")
                #expect(ok.stdout.contains("file in \(folder) with no name"), "\(ok.stdout)")
                let missing = folder + "/not/there"
                let result = Self.run(["--dir", missing])
                #expect(result.status == ExitCode.failure)
                #expect(result.stderr.contains("--dir \(missing) does not exist; create it first"), "\(result.stderr)")
                #expect(!FileManager.default.fileExists(atPath: folder + "/not"))
                let file = folder + "/file"
                #expect(FileManager.default.createFile(atPath: file, contents: Data([1])))
                #expect(Self.run(["--dir", file]).stderr.contains("--dir \(file) is not a folder"))
            }
            #expect(try #require(usageError(["run", "--dir", "/tmp", "--swap", "/tmp/x.swap"])).message.contains("not both"))
        }

        @Test("TMPDIR naming a regular file is a typed error naming TMPDIR")
        func tmpdirFile() throws {
            try withTemporaryFolder { folder in
                let file = folder + "/file"
                #expect(FileManager.default.createFile(atPath: file, contents: Data([1])))
                #expect(throws: SwapError(.invalidArgument, "")) { try PathCheck.writableFolder(file, named: "TMPDIR") }
                do { try PathCheck.writableFolder(file, named: "TMPDIR") } catch let error as SwapError {
                    #expect(error.message == "TMPDIR \(file) is not a folder; give a folder for the swap files")
                }
            }
        }

        @Test("run --json into a missing or unwritable folder fails before the run, in words, and creates nothing")
        func runJSONChecked() throws {
            try withTemporaryFolder { folder in
                let missing = folder + "/reports/run.json"
                let result = Self.run(["--json", missing])
                #expect(result.status == ExitCode.failure)
                #expect(result.stderr.contains("--json \(missing): folder \(folder)/reports does not exist"), "\(result.stderr)")
                #expect(!result.stdout.contains("userswap run: zipf"), "the run started")
                #expect(!FileManager.default.fileExists(atPath: folder + "/reports"))
            }
            let proc = Self.run(["--json", "/proc/userswap-test.json"])
            #expect(proc.status == ExitCode.failure)
            #expect(
                !proc.stderr.contains("NSCocoaErrorDomain") && proc.stderr.contains("--json /proc/userswap-test.json: folder /proc"),
                "\(proc.stderr)")
            #expect(!proc.stdout.contains("userswap run: zipf"), "the run started")
        }

        @Test("bench --dir and --json are checked before the scenario runs, and nothing is created")
        func benchPathsChecked() throws {
            try withTemporaryFolder { folder in
                let missing = folder + "/none"
                #expect(throws: SwapError.self) {
                    try BenchCommand.perform(
                        BenchOptions(scenario: "_selfcheck", directory: missing, showsProgress: false),
                        console: CapturedConsole().console)
                }
                #expect(throws: SwapError.self) {
                    try BenchCommand.perform(
                        BenchOptions(scenario: "_selfcheck", json: .file(missing + "/r.json"), showsProgress: false),
                        console: CapturedConsole().console)
                }
                #expect(!FileManager.default.fileExists(atPath: missing))
            }
        }
    }
}
