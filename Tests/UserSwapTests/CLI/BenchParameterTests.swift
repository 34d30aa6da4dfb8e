import Foundation
import Testing
import UserSwap

@testable import UserSwapBench
@testable import UserSwapCLI

extension CLI {
    /// The scenarios' declared `--param`s: the parser checks every one before anything runs, and
    /// help lists them.
    @Suite("Bench parameters")
    struct BenchParameterTests {
        @Test("an unknown --param key is a usage error (exit 64) naming the scenario's keys")
        func unknownKey() throws {
            let result = runTool(["bench", "zipf", "--param", "thetta=0.5"])
            #expect(result.status == ExitCode.usage)
            #expect(
                result.stderr.contains(
                    "--param thetta: bench zipf has no parameter 'thetta'; its parameters: policy, ops, write_ratio, theta,"),
                "\(result.stderr)")
            #expect(result.stderr.contains("usage: userswap bench"))
            let none = try #require(usageError(["bench", "alloc", "--param", "pages=4"]))
            #expect(none.message == "--param pages: bench alloc has no parameter 'pages'; it takes no --param")
            // A key of the usual mode that --mode kernel does not take.
            let kernel = try #require(usageError(["bench", "random", "--mode", "kernel", "--param", "folio=64K"]))
            #expect(kernel.message.hasPrefix("--param folio: bench random --mode kernel has no parameter 'folio'; its parameters: ops,"))
        }

        static let badValues: [([String], String)] = [
            (["pin", "pages=0"], "--param pages=0: pages takes integer 1…4096"),
            (["pin", "pages=many"], "--param pages=many: pages takes integer 1…4096"),
            (["zipf", "theta=1"], "--param theta=1: theta takes number above 0 and below 1"),
            (["zipf", "policy=lru"], "--param policy=lru: policy takes workingset|active_inactive|frequency|second_chance|all"),
            (["device-limits", "policy=all"], "--param policy=all: policy takes workingset|active_inactive|frequency|second_chance"),
            (["zipf", "folio=48K"], "--param folio=48K: folio takes size, a power of two 4K…2M"),
            (["zipf", "codec=gzip"], "--param codec=gzip: codec takes lz4|zstd|zstd-N (N 1…19)"),
            (["race", "sweep=1,0"], "--param sweep=1,0: sweep takes thread counts 1…4096, comma-separated"),
            (["race", "retry_ms=2000"], "--param retry_ms=2000: retry_ms takes number 0…1000"),
            (
                ["tiers", "devices=memory,tape"],
                "--param devices=memory,tape: devices takes comma-separated: memory,file,compressed,encrypted,compressed+encrypted,compressed-memory,encrypted-memory,compressed+encrypted-memory"
            ),
            (["random", "swap_size=lots"], "--param swap_size=lots: swap_size takes size 2 MiB…16 TiB"),
            (
                ["zipf", "faults=handler_threads:0"],
                "--param faults=handler_threads:0: faults takes handler_threads|handler_threads:N|faulting_thread"
            ),
        ]

        @Test("a value the parameter does not take is a usage error naming the values it takes", arguments: badValues)
        func badValue(words: [String], message: String) throws {
            let error = try #require(usageError(["bench", words[0], "--param", words[1]]))
            #expect(error.message == message)
            #expect(error.verb == .bench)
            #expect(runTool(["bench", words[0], "--param", words[1]]).status == ExitCode.usage)
        }

        @Test("good values parse and reach the scenario as given")
        func goodValues() throws {
            let parsed = CommandLineTool.parse([
                "bench", "zipf", "--param", "theta=0.8", "--param", "folio=64K", "--param", "policy=all",
                "--param", "faults=handler_threads:2", "--param", "codec=zstd-3",
            ])
            guard case .success(.bench(let options)) = parsed else {
                Issue.record("did not parse: \(parsed)")
                return
            }
            #expect(
                options.parameters == ["theta": "0.8", "folio": "64K", "policy": "all", "faults": "handler_threads:2", "codec": "zstd-3"])
            #expect(try options.value(WorkloadBench.theta) as Double == 0.8)
            // Not given: the declared default.
            #expect(try options.value(WorkloadBench.repeats) as Int == 1)
            #expect(try options.value(WorkloadBench.writesInFlight) as Int == IOEngineOptions().maxWritesInFlight)
        }

        @Test("every declared parameter has a unique key and a default it accepts itself")
        func declarations() {
            for scenario in BenchRegistry.all {
                for mode in [nil] + BenchMode.allCases.map(Optional.some) {
                    let parameters = scenario.parameters(mode: mode)
                    #expect(Set(parameters.map(\.key)).count == parameters.count, "\(scenario.name): a key declared twice")
                    for p in parameters {
                        if let value = p.defaultValue {
                            #expect(p.accepts(value), "\(scenario.name) \(p.key): default \(value) is not a \(p.type)")
                        }
                    }
                }
            }
        }

        @Test("help bench lists every scenario's parameters with their types and defaults")
        func help() {
            let text = runTool(["help", "bench"]).stdout
            #expect(text.contains("parameters (--param KEY=VALUE), by scenario:"))
            for scenario in BenchRegistry.listed {
                for p in scenario.parameters(mode: nil) {
                    #expect(text.contains(p.synopsis), "help lacks \(scenario.name) \(p.synopsis)")
                }
            }
            #expect(text.contains("pages=integer 1…4096 (default 16)"))
            #expect(text.contains("zipf --mode kernel:") && text.contains("thp=on|off (default off)"))
        }
    }
}
