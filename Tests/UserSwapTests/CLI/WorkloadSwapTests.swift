import Foundation
import Testing
import UserSwapRedis

@testable import UserSwapBench
@testable import UserSwapCLI

extension CLI {
    /// `userswap bench zipf|random|… --tier … --device …`: parsing, and short real runs.
    @Suite("Workload benchmarks on tiers and devices")
    struct WorkloadSwapTests {
        @Test("--tier and --device parse into BenchOptions; bad values are usage errors")
        func parsing() throws {
            guard
                case .success(.bench(let options)) = CommandLineTool.parse(
                    ["bench", "zipf", "--tier", "compressed+encrypted", "--device", "redis://127.0.0.1:6390"])
            else {
                Issue.record("did not parse")
                return
            }
            #expect(options.tier == "compressed+encrypted" && options.device == "redis://127.0.0.1:6390")
            #expect(WorkloadDevice("redis") == .redis(url: nil))
            #expect(WorkloadDevice("memory") == .memory && WorkloadDevice("disk") == nil)
            #expect(
                try #require(usageError(["bench", "zipf", "--tier", "zipped"])).message.hasPrefix(
                    "--tier 'zipped' is not one of: none, compressed"))
            #expect(try #require(usageError(["bench", "zipf", "--device", "tape"])).message.hasPrefix("--device 'tape' is not one of"))
        }

        @Test("a tier with --mode kernel, or an unknown encryption, is refused")
        func refusals() {
            #expect(throws: BenchError.self) {
                try WorkloadSwap(options: BenchOptions(scenario: "zipf", mode: .kernel, tier: "compressed"))
            }
            #expect(throws: BenchError.self) {
                try WorkloadSwap(options: BenchOptions(scenario: "zipf", parameters: ["encryption": "rot13"]))
            }
            #expect(throws: BenchError.self) { try WorkloadSwap(options: BenchOptions(scenario: "zipf", parameters: ["codec": "gzip"])) }
            #expect(throws: BenchError.self) {
                try BenchCommand.perform(BenchOptions(scenario: "alloc", tier: "compressed"), console: CapturedConsole().console)
            }
        }

        @Test("--param swap_file=written runs on a swap file written out in full, and says so; other values are refused")
        func writtenSwapFile() throws {
            let json = try Self.run("random", parameters: ["swap_file": "written", "write_ratio": "0.5"])
            #expect(json["verified"] as? Bool == true && json["swap_outs"] as? Int ?? 0 > 0)
            let swap = try #require(json["swap"] as? [String: Any])
            #expect(swap["swap_file"] as? String == "written" && swap["device"] as? String == "file")
            #expect(throws: BenchError.self) {
                try WorkloadSwap(options: BenchOptions(scenario: "zipf", parameters: ["swap_file": "zeroed"]))
            }
            #expect(throws: BenchError.self) {
                try WorkloadSwap(options: BenchOptions(scenario: "zipf", device: "memory", parameters: ["swap_file": "written"]))
            }
        }

        @Test("--param swap_size sets the swap device's size and the report says it; the default is twice the data and a page")
        func swapSize() throws {
            let sized = try Self.run("random", parameters: ["swap_size": "12M"])
            #expect(sized["verified"] as? Bool == true)
            #expect(sized["swap_bytes"] as? Int == 12 << 20)
            let standard = try Self.run("random")
            #expect(standard["swap_bytes"] as? Int == 2 * (4 << 20) + 4096)
            var configuration = WorkloadConfiguration(
                kind: .random, memoryBytes: 1 << 20, dataBytes: 4 << 20, threads: 1, limit: .operations(1))
            configuration.swapSizeBytes = 2 << 20
            #expect(configuration.problems().contains { $0.hasPrefix("a swap size is a whole number of 4 KiB pages, at least 4M + 4K") })
            configuration.swapSizeBytes = (8 << 20) + 100
            #expect(configuration.problems().count == 1)
            #expect(throws: BenchError.self) { try Self.run("random", parameters: ["swap_size": "lots"]) }
        }

        /// Runs `scenario` with tiny sizes and returns its JSON object.
        static func run(_ scenario: String, tier: String? = nil, device: String? = nil, parameters: [String: String] = [:]) throws
            -> [String: Any]
        {
            var parameters = parameters
            parameters["ops"] = "3000"
            return try benchReport { folder, json in
                BenchOptions(
                    scenario: scenario, json: json, threads: 2, memoryBytes: 1 << 20,
                    dataBytes: 4 << 20, directory: folder, tier: tier, device: device,
                    parameters: parameters, showsProgress: false)
            }
        }

        @Test(
            "zipf and random through a compressed tier over a file and over memory report the pool's figures",
            arguments: [("zipf", "file"), ("random", "memory"), ("seq", "memory")])
        func compressed(scenario: String, device: String) throws {
            let json = try Self.run(scenario, tier: "compressed", device: device)
            #expect(json["verified"] as? Bool == true)
            let swap = try #require(json["swap"] as? [String: Any])
            #expect(swap["tier"] as? String == "compressed" && swap["device"] as? String == device)
            let pool = try #require(swap["compressed"] as? [String: Any])
            // The workloads' pages do not compress: each is tried, turned away and written below.
            let rejects = try #require(pool["rejects"] as? Int)
            #expect(rejects > 500, "\(pool)")
            // Nothing is kept compressed; a store now and then is a same-filled page (a fresh
            // zero-filled page reclaim caught before its first write landed).
            #expect(pool["stores"] as? Int == pool["same_filled_stores"] as? Int, "\(pool)")
            #expect(pool["compression_ratio"] is NSNull, "\(pool)")
            #expect(pool["lower_writes"] as? Int == rejects)
            for key in ["stored_pages", "pool_bytes", "compression_ratio", "same_filled_pages", "write_backs"] {
                #expect(pool.keys.contains(key), "no \(key)")
            }
        }

        @Test("--param repeats=4 makes pages the pool keeps at about a quarter of their size")
        func compressible() throws {
            let json = try Self.run("random", tier: "compressed", device: "memory", parameters: ["repeats": "4"])
            #expect(json["verified"] as? Bool == true && json["page_repeats"] as? Int == 4)
            let pool = try #require((json["swap"] as? [String: Any])?["compressed"] as? [String: Any])
            let ratio = try #require(pool["compression_ratio"] as? Double)
            #expect(ratio > 3 && ratio < 4.2, "\(pool)")
            #expect(pool["stores"] as? Int ?? 0 > 500 && pool["rejects"] as? Int == 0 && pool["loads"] as? Int ?? 0 > 500)
        }

        @Test("--param encryption=randomKey seals the space's device; --tier encrypted stacks a tier")
        func encrypted() throws {
            let space = try Self.run("random", device: "memory", parameters: ["encryption": "randomKey"])
            let spaceSwap = try #require(space["swap"] as? [String: Any])
            #expect(spaceSwap["encryption"] as? String == "randomKey" && space["verified"] as? Bool == true)
            let sealed = try #require(spaceSwap["encrypted"] as? [String: Any])
            #expect(sealed["sealed_pages"] as? Int ?? 0 > 500 && sealed["opened_pages"] as? Int ?? 0 > 500)
            let tier = try Self.run("zipf", tier: "encrypted", device: "file")
            let tierSealed = try #require((tier["swap"] as? [String: Any])?["encrypted"] as? [String: Any])
            #expect(tierSealed["sealed_pages"] as? Int ?? 0 > 500 && tierSealed["authentication_failures"] as? Int == 0)
        }

        @Test(
            "a Redis password never reaches the report, the log or an error; the URL without it takes it from USERSWAP_REDIS_PASSWORD",
            .enabled(if: RedisServerProcess.executable != nil, "no redis-server binary (scripts/bootstrap installs it)"))
        func redisPasswordNotPrinted() throws {
            let server = try RedisServerProcess()
            func bench(_ device: String) throws -> (json: String, log: String) {
                let captured = CapturedConsole()
                let json = try withTemporaryFolder { folder in
                    let path = folder + "/report.json"
                    try BenchCommand.perform(
                        BenchOptions(
                            scenario: "random", json: .file(path), threads: 2, memoryBytes: 1 << 20,
                            dataBytes: 4 << 20, directory: folder, device: device,
                            parameters: ["ops": "2000"], showsProgress: true),
                        console: captured.console)
                    return try String(contentsOfFile: path, encoding: .utf8)
                }
                return (json, captured.stdout + captured.stderr)
            }
            // The password in the URL: it works, a warning says ps shows it, and nothing prints it.
            let inURL = try bench("unix://:\(server.password)@\(server.socketPath)")
            #expect(!inURL.json.contains(server.password) && !inURL.log.contains(server.password))
            #expect(inURL.json.contains("\"unix://\(server.socketPath)\""), "the report names the server without credentials")
            #expect(inURL.log.contains("USERSWAP_REDIS_PASSWORD"), "no warning about the password on the command line")
            // The URL alone, the password from the environment.
            setenv("USERSWAP_REDIS_PASSWORD", server.password, 1)
            let fromEnvironment = try bench("unix://\(server.socketPath)")
            unsetenv("USERSWAP_REDIS_PASSWORD")
            #expect(!fromEnvironment.json.contains(server.password) && !fromEnvironment.log.contains("warning"))
            // A wrong password: refused, and the error does not repeat it.
            do {
                _ = try bench("unix://:not-\(server.password)@\(server.socketPath)")
                Issue.record("a wrong password was accepted")
            } catch {
                #expect(!"\(error)".contains(server.password) && "\(error)".contains("WRONGPASS"), "\(error)")
            }
        }

        @Test("bench seals the swap file by default and reports it; --no-encryption writes pages in clear; run parses it too")
        func sealedByDefault() throws {
            let sealed = try Self.run("random", device: "file")
            let swap = try #require(sealed["swap"] as? [String: Any])
            #expect(swap["encryption"] as? String == "randomKey" && sealed["verified"] as? Bool == true)
            let counts = try #require(swap["encrypted"] as? [String: Any])
            #expect(counts["sealed_pages"] as? Int ?? 0 > 500 && counts["authentication_failures"] as? Int == 0)
            let clear = try benchReport { folder, json in
                BenchOptions(
                    scenario: "random", json: json, threads: 2, memoryBytes: 1 << 20, dataBytes: 4 << 20,
                    directory: folder, parameters: ["ops": "3000"], showsProgress: false, encryption: false)
            }
            let clearSwap = try #require(clear["swap"] as? [String: Any])
            #expect(clearSwap["encryption"] as? String == "none" && clearSwap["encrypted"] == nil && clear["verified"] as? Bool == true)
            guard case .success(.bench(let bench)) = CommandLineTool.parse(["bench", "zipf", "--no-encryption"]),
                case .success(.run(let run)) = CommandLineTool.parse(["run", "--no-encryption"]),
                case .success(.run(let runDefault)) = CommandLineTool.parse(["run"])
            else {
                Issue.record("--no-encryption did not parse")
                return
            }
            #expect(!bench.encryption && !run.encryption && runDefault.encryption)
            #expect(throws: BenchError.self) {
                try WorkloadSwap(options: BenchOptions(scenario: "zipf", parameters: ["encryption": "randomKey"], encryption: false))
            }
            // The kernel's swap is never sealed: --mode kernel needs no flag.
            #expect(try WorkloadSwap(options: BenchOptions(scenario: "zipf", mode: .kernel)).encryption.name == "none")
        }

        @Test(
            "--device redis starts a private server and swaps through it",
            .enabled(if: RedisServerProcess.executable != nil, "no redis-server binary (scripts/bootstrap installs it)"))
        func redis() throws {
            let json = try Self.run("random", device: "redis")
            #expect(json["verified"] as? Bool == true)
            let swap = try #require(json["swap"] as? [String: Any])
            let redis = try #require(swap["redis"] as? [String: Any])
            #expect(redis["pages_written"] as? Int ?? 0 > 500 && redis["pages_read"] as? Int ?? 0 > 500)
            #expect(redis["failed_calls"] as? Int == 0)
        }
    }
}
