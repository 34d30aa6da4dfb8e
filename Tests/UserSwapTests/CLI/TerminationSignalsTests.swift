import Foundation
import Glibc
import Testing
import UserSwap

@testable import UserSwapBench
@testable import UserSwapCLI

extension CLI {
    /// The built `userswap` in a child process, ended by a signal once its swap file holds data:
    /// nothing is left on disk, and SIGINT, SIGTERM and SIGHUP exit 130, 143 and 129.
    @Suite("Termination signals leave no file")
    struct TerminationSignalsTests {
        /// The `userswap` executable beside the test bundle (`swift test` builds it).
        static var executable: String? {
            let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("userswap").path
            if FileManager.default.isExecutableFile(atPath: beside) { return beside }
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent()
            let built = root.appendingPathComponent(".build/debug/userswap").path
            return FileManager.default.isExecutableFile(atPath: built) ? built : nil
        }

        /// A private folder for one child (mkdtemp), removed afterwards.
        static func withFolder<T>(_ body: (String) throws -> T) throws -> T {
            var template = Array((FileManager.default.temporaryDirectory.path + "/userswap-signal-test-XXXXXX").utf8CString)
            try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil })
            let folder = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            defer { try? FileManager.default.removeItem(atPath: folder) }
            return try body(folder)
        }

        /// `/proc/PID/fd/N` of the child's open files under `folder`.
        static func openFiles(of pid: Int32, under folder: String) -> [String] {
            let base = "/proc/\(pid)/fd"
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
            return fds.map { base + "/" + $0 }.filter {
                (try? FileManager.default.destinationOfSymbolicLink(atPath: $0))?.hasPrefix(folder + "/") == true
            }
        }

        /// Whether the open file `procPath` holds a nonzero byte in its first 8 MiB past the
        /// header page: a page the workload swapped out.
        static func holdsData(_ procPath: String) -> Bool {
            let fd = open(procPath, O_RDONLY)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            for index in 0..<8 {
                let n = pread(fd, &chunk, chunk.count, off_t(4096 + index << 20))
                if n <= 0 { return false }
                if chunk[..<n].contains(where: { $0 != 0 }) { return true }
            }
            return false
        }

        /// Everything under `folder`.
        static func leftovers(_ folder: String) -> [String] {
            (try? FileManager.default.subpathsOfDirectory(atPath: folder)) ?? ["<cannot list \(folder)>"]
        }

        /// Starts `userswap ARGS` with TMPDIR = `folder`, waits until `ready` says so (at most
        /// `seconds`), sends `signal`, and returns how the child ended and what it printed.
        static func runAndSignal(
            _ arguments: [String], tmpdir folder: String, signal: Int32, seconds: Double = 120,
            ready: (Int32) -> Bool
        ) throws -> (reason: Process.TerminationReason, status: Int32, output: String) {
            let path = try #require(executable, "the userswap executable is not built beside the tests")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = arguments
            var environment = ProcessInfo.processInfo.environment
            environment["TMPDIR"] = folder
            process.environment = environment
            let log = folder + ".log"
            #expect(FileManager.default.createFile(atPath: log, contents: nil))
            defer { try? FileManager.default.removeItem(atPath: log) }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
            let deadline = Date().addingTimeInterval(seconds)
            var isReady = false
            while process.isRunning && Date() < deadline {
                if ready(process.processIdentifier) {
                    isReady = true
                    break
                }
                usleep(20_000)
            }
            let output = { String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self) }
            guard isReady, process.isRunning else {
                if process.isRunning { process.terminate() }
                process.waitUntilExit()
                Issue.record("the child never got ready (running: \(process.isRunning)): \(output())")
                return (process.terminationReason, process.terminationStatus, output())
            }
            kill(process.processIdentifier, signal)
            // A child that ignores the signal would run on for minutes: give it 30 s.
            let patience = Date().addingTimeInterval(30)
            while process.isRunning && Date() < patience { usleep(20_000) }
            if process.isRunning {
                Issue.record("the child did not end within 30 s of signal \(signal)")
                kill(process.processIdentifier, SIGKILL)
            }
            process.waitUntilExit()
            try handle.close()
            return (process.terminationReason, process.terminationStatus, output())
        }

        @Test(
            "userswap run killed once its swap file holds data leaves nothing under TMPDIR",
            arguments: [SIGINT, SIGTERM, SIGHUP, SIGKILL])
        func run(signal: Int32) throws {
            try Self.withFolder { folder in
                let ended = try Self.runAndSignal(
                    ["run", "--data", "32M", "--memory", "4M", "--seconds", "120", "--no-progress"],
                    tmpdir: folder, signal: signal
                ) { pid in
                    // The unnamed swap file is open under TMPDIR and a page reached it.
                    Self.openFiles(of: pid, under: folder).contains { Self.holdsData($0) }
                }
                if signal == SIGKILL {
                    #expect(ended.reason == .uncaughtSignal && ended.status == SIGKILL, "\(ended)")
                } else {
                    #expect(ended.reason == .exit && ended.status == 128 + signal, "\(ended)")
                    #expect(ended.output.contains("stopped by SIG"), "\(ended.output)")
                }
                #expect(Self.leftovers(folder) == [], "left under TMPDIR: \(Self.leftovers(folder))")
            }
        }

        @Test(
            "userswap format killed while it writes its file out leaves nothing in the target folder",
            arguments: [SIGINT, SIGKILL])
        func format(signal: Int32) throws {
            try Self.withFolder { folder in
                let target = folder + "/swap"
                let ended = try Self.runAndSignal(
                    ["format", target, "--size", "4G", "--write-out"],
                    tmpdir: folder, signal: signal
                ) { pid in
                    // The new file is open (unnamed) and its write-out has begun.
                    Self.openFiles(of: pid, under: folder).contains {
                        Self.holdsData($0) == false
                            && {
                                var st = stat()
                                return stat($0, &st) == 0 && st.st_blocks > 0
                            }($0)
                    }
                }
                if signal == SIGKILL {
                    #expect(ended.reason == .uncaughtSignal && ended.status == SIGKILL, "\(ended)")
                } else {
                    #expect(ended.reason == .exit && ended.status == 128 + signal, "\(ended)")
                }
                #expect(Self.leftovers(folder) == [], "left in the folder: \(Self.leftovers(folder))")
            }
        }

        @Test("scratch folders are private (0700) and removed when the body returns or throws")
        func scratchFolders() throws {
            let made = try ScratchDirectory.with(prefix: "userswap-scratch-test") { path in
                var st = stat()
                #expect(lstat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR && st.st_mode & 0o777 == 0o700)
                #expect(FileManager.default.createFile(atPath: path + "/file", contents: Data([1])))
                return path
            }
            #expect(!FileManager.default.fileExists(atPath: made))
            struct Failure: Error {}
            var seen = ""
            #expect(throws: Failure.self) {
                try ScratchDirectory.with(prefix: "userswap-scratch-test") { path in
                    seen = path
                    throw Failure()
                }
            }
            #expect(!seen.isEmpty && !FileManager.default.fileExists(atPath: seen))
            let error = try #require(throws: SwapError.self) {
                try ScratchDirectory.with(prefix: "x", in: "/nonexistent-folder") { _ in }
            }
            #expect(error.message.contains("--dir, or TMPDIR"), "\(error)")
        }

        @Test("the verbs that make files are the ones that clean up on a signal")
        func verbs() {
            #expect(Invocation.run(RunOptions()).makesFiles)
            #expect(Invocation.format(FormatOptions(path: "x", bytes: 1)).makesFiles)
            #expect(!Invocation.listScenarios.makesFiles && !Invocation.help(nil).makesFiles)
            #expect(
                TerminationSignals.exitStatus(for: SIGINT) == 130 && TerminationSignals.exitStatus(for: SIGTERM) == 143
                    && TerminationSignals.exitStatus(for: SIGHUP) == 129)
        }
    }
}
