import Foundation
import Testing

@testable import UserSwapBench
@testable import UserSwapCLI

extension CLI {
    /// `userswap run`: its options as a pure function, and short runs in-process.
    @Suite("Run command")
    struct RunCommandTests {
        static func parsed(_ words: [String]) throws -> RunOptions {
            guard case .success(.run(let options)) = CommandLineTool.parse(["run"] + words) else {
                Issue.record("\(words) did not parse as run options: \(CommandLineTool.parse(["run"] + words))")
                throw UsageError("no")
            }
            return options
        }

        @Test("the defaults: zipf over 1 GiB in 256 MiB, 2 threads, 20 s, 20 % writes, a temporary swap file")
        func defaults() throws {
            let options = try Self.parsed([])
            #expect(options == RunOptions())
            let c = options.configuration
            #expect(c.kind == .zipf)
            #expect(c.memoryBytes == 256 << 20)
            #expect(c.dataBytes == 1 << 30)
            #expect(c.dataBytes > c.memoryBytes)
            #expect(c.threads == 2)
            #expect(c.limit == .seconds(20))
            #expect(c.writeRatio == 0.2)
            #expect(c.swapProtocol == .swapcache)
            #expect(options.swap == .temporaryFile)
            #expect(c.swapBytes == 2 * (1 << 30) + 4096)
        }

        @Test("every option is read")
        func everything() throws {
            let options = try Self.parsed([
                "--workload", "random", "--memory", "64M", "--data=512M", "--threads", "4", "--ops", "1000",
                "--swap", "/tmp/x.swap", "--protocol", "legacy", "--write-ratio", "0.5", "--seed", "99",
                "--json", "out.json", "--no-progress", "--mode", "transparent", "--faults", "faulting-thread",
                "--policy", "second-chance",
            ])
            var expected = RunOptions()
            expected.workload = .random
            expected.memoryBytes = 64 << 20
            expected.dataBytes = 512 << 20
            expected.threads = 4
            expected.limit = .operations(1000)
            expected.swap = .file("/tmp/x.swap")
            expected.swapProtocol = .legacy
            expected.writeRatio = 0.5
            expected.seed = 99
            expected.json = .file("out.json")
            expected.showsProgress = false
            expected.mode = .transparent
            expected.transparentFaults = .faultingThread
            expected.reclaimPolicy = .secondChance
            #expect(options == expected)
            #expect(options.configuration.reclaimPolicy == .secondChance)
            #expect(RunOptions().configuration.reclaimPolicy == .frequency)
            #expect(try Self.parsed(["--policy", "workingset"]).configuration.reclaimPolicy == .workingset)
            #expect(try Self.parsed(["--policy", "active-inactive"]).configuration.reclaimPolicy == .activeInactive)
            #expect(options.configuration.transparentFaults == .faultingThread)
            #expect(try Self.parsed(["--seconds", "2.5", "--json"]).limit == .seconds(2.5))
            #expect(try Self.parsed(["--json"]).json == .stdout)
            #expect(try Self.parsed(["--workload", "hashtable"]).configuration.kind == .hashtable)
        }

        static let badLines: [([String], String)] = [
            (["--ops", "10", "--seconds", "1"], "not both"),
            (["--workload", "usemem", "--ops", "10"], "fixed job"),
            (["--workload", "hashtable", "--write-ratio", "0.5"], "fixed job"),
            (["--workload", "btree"], "--workload 'btree' is not one of"),
            (["--write-ratio", "1.5"], "--write-ratio"),
            (["--memory", "4K"], "--memory"),
            (["--threads", "0"], "--threads"),
            (["--protocol", "both"], "--protocol"),
            (["--mode", "kernel"], "--mode 'kernel' is not one of: explicit, transparent"),
            (["--seed", "-1"], "--seed"),
            (["--faults", "faulting-thread"], "--faults applies to --mode transparent only"),
            (["--mode", "transparent", "--faults", "kernel"], "--faults 'kernel' is not one of"),
            (["--policy", "lru"], "--policy 'lru' is not one of: frequency, workingset"),
            (["--swap="], "--swap"),
            (["--size", "1G"], "unknown option '--size'"),
        ]

        @Test("nonsense is a usage error of run that says what is wrong", arguments: badLines)
        func usage(words: [String], message: String) throws {
            let error = try #require(usageError(["run"] + words))
            #expect(error.verb == .run)
            #expect(error.message.contains(message), "\(error.message)")
            #expect(error.exitCode == ExitCode.usage)
        }

        @Test("help run lists the options and the workloads")
        func help() {
            let result = runTool(["help", "run"])
            #expect(result.status == 0)
            for word in [
                "--workload", "--memory", "--data", "--ops", "--seconds", "--swap", "--write-ratio", "--protocol", "--policy", "hashtable",
                "usemem",
            ] {
                #expect(result.stdout.contains(word), "help lacks \(word)")
            }
        }

        @Test("a short run on a memory device verifies, reports, and writes BENCH-JSON")
        func shortRun() throws {
            try withTemporaryFolder { folder in
                var options = RunOptions()
                options.memoryBytes = 1 << 20
                options.dataBytes = 4 << 20
                options.limit = .operations(20_000)
                options.swap = .memory
                options.showsProgress = false
                options.json = .file(folder + "/run.json")
                let captured = CapturedConsole()
                let status = CommandLineTool.execute(.run(options), console: captured.console)
                #expect(status == ExitCode.success, "\(captured.stderr)")
                let out = captured.stdout
                #expect(out.contains("verified 1024 pages: all match"), "\(out)")
                for word in ["operations/s", "p99.9", "swap-ins", "refaults", "activations", "peak resident", "process RSS"] {
                    #expect(out.contains(word), "the report lacks \(word)")
                }
                let json = try jsonObject(Data(contentsOf: URL(fileURLWithPath: folder + "/run.json")))
                #expect(json["scenario"] as? String == "run")
                #expect(json["verified"] as? Bool == true)
                #expect(json["ops"] as? Int == 20_000)
                #expect(json["budget_bytes"] as? Int == 1 << 20)
                #expect(json["data_bytes"] as? Int == 4 << 20)
                #expect((json["swap_ins"] as? Int ?? 0) > 0)
                for key in BenchReport.contractKeys {
                    #expect(json[key] != nil, "missing \(key)")
                }
                let latency = try #require(json["latency_us"] as? [String: Any])
                #expect(latency["p999"] != nil)
            }
        }

        @Test("run seals its swap file by default and says so; --no-encryption writes in clear and says so")
        func encryption() throws {
            for sealed in [true, false] {
                try withTemporaryFolder { folder in
                    var options = RunOptions()
                    options.memoryBytes = 1 << 20
                    options.dataBytes = 4 << 20
                    options.limit = .operations(5_000)
                    options.swap = .file(folder + "/swap0")
                    options.showsProgress = false
                    options.encryption = sealed
                    options.json = .file(folder + "/run.json")
                    let captured = CapturedConsole()
                    let status = CommandLineTool.execute(.run(options), console: captured.console)
                    #expect(status == ExitCode.success, "\(captured.stderr)")
                    #expect(captured.stdout.contains(sealed ? "pages sealed (XChaCha20-Poly1305" : "pages in clear (--no-encryption)"))
                    let json = try jsonObject(Data(contentsOf: URL(fileURLWithPath: folder + "/run.json")))
                    #expect(json["encryption"] as? String == (sealed ? "randomKey" : "none") && json["verified"] as? Bool == true)
                }
            }
        }

        @Test("a short transparent run verifies and says so in its report")
        func shortTransparentRun() throws {
            try withTemporaryFolder { folder in
                var options = RunOptions()
                options.memoryBytes = 1 << 20
                options.dataBytes = 4 << 20
                options.limit = .operations(20_000)
                options.swap = .memory
                options.showsProgress = false
                options.mode = .transparent
                options.json = .file(folder + "/run.json")
                let captured = CapturedConsole()
                let status = CommandLineTool.execute(.run(options), console: captured.console)
                #expect(status == ExitCode.success, "\(captured.stderr)")
                #expect(captured.stdout.contains("transparent region"), "\(captured.stdout)")
                #expect(captured.stdout.contains("verified 1024 pages: all match"), "\(captured.stdout)")
                let json = try jsonObject(Data(contentsOf: URL(fileURLWithPath: folder + "/run.json")))
                #expect(json["mode"] as? String == "transparent")
                #expect((json["swap_ins"] as? Int ?? 0) > 0)
                // The time the workload's threads waited in the region's faults.
                #expect(captured.stdout.contains("waiting in faults (the whole run): "), "\(captured.stdout)")
                let wait = try #require(json["fault_wait"] as? [String: Any])
                #expect((wait["count"] as? Int ?? 0) > 0 && (wait["seconds"] as? Double ?? 0) > 0)
                #expect((wait["p99_us"] as? Double ?? 0) > 0 && (wait["mean_us"] as? Double ?? 0) > 0)
                let counters = try #require(json["counters_total"] as? [String: Any])
                // Taken a moment earlier (a handler thread records a fault once it woke its thread).
                #expect((1...(wait["count"] as? Int ?? 0)).contains(counters["faultWaits"] as? Int ?? 0))
            }
        }
    }
}
