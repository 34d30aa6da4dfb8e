import Foundation
import Testing

@testable import UserSwapCLI

extension CLI {
    /// `userswap exec`: its command line (a pure function) and its check of the program to run.
    /// The runs themselves are tests/exec/run's (`make test-exec`).
    @Suite("Exec command")
    struct ExecCommandTests {
        @Test("options end at --, and every later word is the command's, its options included")
        func commandAfterTerminator() {
            var expected = ExecOptions(command: ["python3", "-c", "print(1)", "--memory", "1G"])
            expected.memoryBytes = 64 << 20
            expected.swap = .temporaryFile(directory: "/var/tmp")
            expected.reportPath = "run.json"
            let parsed = CommandLineTool.parse([
                "exec", "--memory", "64M", "--swap-dir", "/var/tmp", "--report", "run.json", "--", "python3", "-c", "print(1)",
                "--memory", "1G",
            ])
            #expect(parsed == .success(.exec(expected)))
        }

        @Test("without --, the command starts at the first word that is not an option or its value")
        func commandWithoutTerminator() {
            var expected = ExecOptions(command: ["sort", "-S", "1G", "big.txt"])
            expected.memoryBytes = 32 << 20
            expected.quiet = true
            expected.swapBytes = 1 << 30
            #expect(
                CommandLineTool.parse(["exec", "--memory=32M", "--quiet", "--swap-size", "1G", "sort", "-S", "1G", "big.txt"])
                    == .success(.exec(expected)))
            #expect(expected.effectiveSwapBytes == 1 << 30)
            #expect(ExecOptions(command: ["x"]).effectiveSwapBytes == 8 * (256 << 20))
        }

        @Test("--device names a swap file or a Redis server")
        func devices() {
            var file = ExecOptions(command: ["true"])
            file.swap = .file("swap.img")
            #expect(CommandLineTool.parse(["exec", "--device", "swap.img", "--", "true"]) == .success(.exec(file)))
            var redis = ExecOptions(command: ["true"])
            redis.swap = .redis("redis://10.0.0.2:6379")
            #expect(CommandLineTool.parse(["exec", "--device", "redis://10.0.0.2:6379", "true"]) == .success(.exec(redis)))
        }

        @Test(
            "a missing command, --swap-dir with --device, and a tiny budget are usage errors",
            arguments: [
                ["exec", "--memory", "64M"], ["exec", "--memory", "64M", "--"],
                ["exec", "--swap-dir", "/tmp", "--device", "f", "--", "true"], ["exec", "--memory", "1K", "--", "true"],
            ])
        func usageErrors(arguments: [String]) throws {
            let error = try #require(usageError(arguments))
            #expect(error.verb == .exec)
            #expect(error.exitCode == 64)
        }

        @Test("--group-limit sets the program's group limits, as a cgroup's files take them; later ones win")
        func groupLimits() {
            var expected = ExecOptions(command: ["sort", "big.txt"])
            expected.memoryBytes = 64 << 20
            expected.groupMemoryBytes = 32 << 20
            expected.groupSwapBytes = 1 << 30
            #expect(
                CommandLineTool.parse(["exec", "--memory", "64M", "--group-limit", "memory=32M,swap=1G", "sort", "big.txt"])
                    == .success(.exec(expected)))
            #expect(
                CommandLineTool.parse([
                    "exec", "--memory", "64M", "--group-limit", "swap=2G", "--group-limit", "memory.max=32M",
                    "--group-limit=memory.swap.max=1G", "--", "sort", "big.txt",
                ]) == .success(.exec(expected)))
            // The swap file is the swap limit (and its header page) unless --swap-size says otherwise.
            #expect(expected.effectiveSwapBytes == (1 << 30) + 4096)
            #expect(expected.heapCapacityBytes == (32 << 20) + (1 << 30))
            expected.groupSwapBytes = nil
            #expect(
                CommandLineTool.parse(["exec", "--memory", "64M", "--group-limit", "memory=32M,swap=max", "sort", "big.txt"])
                    == .success(.exec(expected)))
            #expect(expected.effectiveSwapBytes == 8 * (64 << 20) && expected.hasGroupLimit)
            var noSwap = ExecOptions(command: ["true"])
            noSwap.memoryBytes = 64 << 20
            noSwap.groupSwapBytes = 0
            #expect(CommandLineTool.parse(["exec", "--memory", "64M", "--group-limit", "swap=0", "true"]) == .success(.exec(noSwap)))
            #expect(noSwap.effectiveSwapBytes == 0 && noSwap.heapCapacityBytes == 64 << 20)
        }

        @Test(
            "a --group-limit that is not KEY=SIZE, names no limit, or can never bind is a usage error that says so",
            arguments: [
                (["--group-limit", "1G"], "must be KEY=SIZE"),
                (["--group-limit", "=1G"], "must be KEY=SIZE"),
                (["--group-limit", "swap=1G,"], "must be KEY=SIZE"),
                (["--group-limit", "swap=lots"], "--group-limit swap: "),
                (["--group-limit", "disk=1G"], "no limit 'disk'; the limits are memory and swap"),
                (["--group-limit", "memory=512K"], "--group-limit memory 512K is too small"),
                (["--memory", "64M", "--group-limit", "memory=128M"], "is above --memory 64 MiB"),
                (["--swap-size", "1G", "--group-limit", "swap=2G"], "is above --swap-size 1 GiB"),
                (["--memory", "16M", "--group-limit", "swap=8M"], "the heap needs at least 32 MiB"),
            ])
        func groupLimitErrors(words: [String], message: String) throws {
            let error = try #require(usageError(["exec"] + words + ["--", "true"]))
            #expect(error.message.contains(message), "\(error.message)")
            #expect(error.exitCode == 64)
        }

        @Test("the environment carries the settings, with paths made absolute")
        func environment() throws {
            var options = ExecOptions(command: ["true"])
            options.memoryBytes = 64 << 20
            options.swap = .file("swap.img")
            options.reportPath = "/tmp/r.json"
            options.noEncryption = true
            let variables = try ExecCommand.settings(options)
            #expect(variables["USERSWAP_MEMORY"] == String(64 << 20))
            #expect(variables["USERSWAP_SWAP_SIZE"] == String(512 << 20))
            #expect(variables["USERSWAP_SWAP_FILE"] == FileManager.default.currentDirectoryPath + "/swap.img")
            #expect(variables["USERSWAP_EXEC_REPORT"] == "/tmp/r.json")
            #expect(variables["USERSWAP_ENCRYPTION"] == "none")
            #expect(variables["USERSWAP_EXEC_GROUP_MEMORY"] == nil && variables["USERSWAP_EXEC_GROUP_SWAP"] == nil)
            options.groupMemoryBytes = 32 << 20
            options.groupSwapBytes = 0
            let limited = try ExecCommand.settings(options)
            #expect(limited["USERSWAP_EXEC_GROUP_MEMORY"] == String(32 << 20) && limited["USERSWAP_EXEC_GROUP_SWAP"] == "0")
        }

        @Test("a dynamically linked program passes; a missing one, a directory and a Java launcher do not")
        func programChecks() throws {
            let shell = try #require(ExecutableCheck.resolve("sh", path: "/usr/bin:/bin"))
            #expect(ExecutableCheck.check(shell) == nil)
            #expect(ExecutableCheck.resolve("no-such-program-here", path: "/usr/bin") == nil)
            #expect(ExecutableCheck.check("/no/such/file") == .notFound("/no/such/file"))
            #expect(ExecutableCheck.check("/tmp") == .notExecutable("/tmp"))
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("exec-check-\(getpid())")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            // A script is judged by its interpreter, and noted when that is a shell.
            let script = folder.appendingPathComponent("job")
            try "#!/bin/sh\necho hi\n".write(to: script, atomically: true, encoding: .utf8)
            chmod(script.path, 0o755)
            #expect(ExecutableCheck.check(script.path) == nil)
            #expect(ExecutableCheck.scriptInterpreter(script.path) == "/bin/sh")
            #expect(ExecutableCheck.scriptInterpreter(shell) == nil)
            // Text that is neither ELF nor a script.
            let text = folder.appendingPathComponent("text")
            try "hello\n".write(to: text, atomically: true, encoding: .utf8)
            chmod(text.path, 0o755)
            #expect(ExecutableCheck.check(text.path) == .notELF(text.path))
            let java = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"
            if access(java, X_OK) == 0 {
                #expect(ExecutableCheck.check(java) == .ownAllocator(java, runtime: "Java (JVM)"))
            }
        }

        @Test("an ELF file without PT_INTERP is statically linked; one with it passes; a truncated one is not ELF")
        func elfHeaders() throws {
            // A minimal ELF64 header with one program header (PT_LOAD) and no sections.
            var bytes = [UInt8](repeating: 0, count: 64 + 56)
            bytes.replaceSubrange(0..<6, with: [0x7F, 0x45, 0x4C, 0x46, 2, 1])
            bytes[0x20] = 64  // e_phoff
            bytes[0x36] = 56  // e_phentsize
            bytes[0x38] = 1  // e_phnum
            bytes[64] = 1  // PT_LOAD
            #expect(ELFFile(Data(bytes))?.refusal(path: "p") == .staticallyLinked("p"))
            bytes[64] = 3  // PT_INTERP
            #expect(ELFFile(Data(bytes))?.refusal(path: "p") == nil)
            #expect(ELFFile(Data(bytes[0..<32])) == nil)
        }
    }
}
