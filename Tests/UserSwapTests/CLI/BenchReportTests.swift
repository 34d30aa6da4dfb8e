import Foundation
import Testing
import UserSwap

@testable import UserSwapBench
@testable import UserSwapCLI

extension CLI {
    /// The JSON contract of docs/BENCH-JSON.md: names, nesting, ratio directions.
    @Suite("Bench report")
    struct BenchReportTests {
        static let machine = MachineInfo(cores: 2, memoryBytes: 24 << 30, kernel: "6.18.44", date: "2026-11-27T02:00:00Z")

        static func report(
            protocol swapProtocol: BenchProtocol? = .swapcache, mode: BenchMode = .explicit,
            ops: Int64 = 1_000_000, seconds: Double = 2, latency: LatencySummary = LatencySummary(p50: 1.1, p99: 8, p999: 40.2, max: 950)
        ) -> BenchReport {
            BenchReport(
                scenario: "race", mode: mode, swapProtocol: swapProtocol, threads: 8, ops: ops, seconds: seconds,
                latency: latency, budgetBytes: 256 << 20, dataBytes: 1 << 30, peakResidentBytes: 270_532_608,
                swapIns: 123_456, swapOuts: 234_567, deviceReads: 123_000, deviceWrites: 200_000, verified: true,
                machine: machine
            )
        }

        @Test("a report has every contract key, with the contract's names and values")
        func contractKeys() throws {
            let json = try jsonObject(JSONOutput.encode(Self.report()))
            let expected: Set<String> = [
                "scenario", "mode", "protocol", "threads", "ops", "seconds", "ops_per_s", "latency_us",
                "budget_bytes", "data_bytes", "peak_resident_bytes", "swap_ins", "swap_outs",
                "device_reads", "device_writes", "verified", "machine",
            ]
            #expect(Set(json.keys) == expected)
            #expect(BenchReport.contractKeys == expected)
            #expect(json["scenario"] as? String == "race")
            #expect(json["mode"] as? String == "explicit")
            #expect(json["protocol"] as? String == "swapcache")
            #expect(json["threads"] as? Int == 8)
            #expect(json["ops"] as? Int == 1_000_000)
            #expect(json["seconds"] as? Double == 2)
            #expect(json["ops_per_s"] as? Double == 500_000)
            #expect(json["budget_bytes"] as? Int == 268_435_456)
            #expect(json["data_bytes"] as? Int == 1_073_741_824)
            #expect(json["peak_resident_bytes"] as? Int == 270_532_608)
            #expect(json["swap_ins"] as? Int == 123_456)
            #expect(json["swap_outs"] as? Int == 234_567)
            #expect(json["device_reads"] as? Int == 123_000)
            #expect(json["device_writes"] as? Int == 200_000)
            #expect(json["verified"] as? Bool == true)

            let latency = try #require(json["latency_us"] as? [String: Any])
            #expect(Set(["p50", "p99", "p999", "max"]).isSubset(of: Set(latency.keys)))
            #expect(latency["p999"] as? Double == 40.2)
            let machine = try #require(json["machine"] as? [String: Any])
            #expect(Set(["cores", "memory_bytes", "kernel", "date"]).isSubset(of: Set(machine.keys)))
            #expect(machine["memory_bytes"] as? Int == 24 << 30)
        }

        @Test("the kernel's run has no protocol key")
        func kernelHasNoProtocol() throws {
            let json = try jsonObject(JSONOutput.encode(Self.report(protocol: nil, mode: .kernel)))
            #expect(json["protocol"] == nil)
            #expect(json["mode"] as? String == "kernel")
        }

        @Test("extras land at the top level beside the contract keys")
        func extras() throws {
            var report = Self.report()
            report.extras["metadata_bytes_per_slot"] = 8.5
            report.extras["results"] = [["order": 0, "threads": 1, "ops_per_s": 1.5e6], ["order": 9, "threads": 2, "ops_per_s": 2e5]]
            report.extras["pin_ns"] = ["p50": 31, "p99": 48]
            let json = try jsonObject(JSONOutput.encode(report))
            #expect(json["metadata_bytes_per_slot"] as? Double == 8.5)
            let results = try #require(json["results"] as? [[String: Any]])
            #expect(results.count == 2)
            #expect(results[1]["order"] as? Int == 9)
            #expect((json["pin_ns"] as? [String: Any])?["p99"] as? Int == 48)
        }

        @Test("JSON is pretty-printed with sorted keys")
        func sortedKeys() throws {
            let text = String(decoding: try JSONOutput.encode(Self.report()), as: UTF8.self)
            let budget = try #require(text.range(of: "\"budget_bytes\""))
            let verified = try #require(text.range(of: "\"verified\""))
            #expect(budget.lowerBound < verified.lowerBound)
            #expect(text.contains("\n  \""))
        }

        @Test("comparison ratios: throughput is ours ÷ other, latency is other ÷ ours")
        func ratioDirections() throws {
            let ours = Self.report(ops: 2_000_000, seconds: 2, latency: LatencySummary(p50: 1, p99: 5, p999: 10, max: 100))
            let other = Self.report(
                protocol: .legacy, ops: 1_000_000, seconds: 2, latency: LatencySummary(p50: 2, p99: 20, p999: 40, max: 4_000))
            let comparison = ComparisonReport(ours: ours, other: other)
            #expect(comparison.ratios == ["ops_per_s": 2, "p50": 2, "p99": 4, "p999": 4, "max": 40])

            let json = try jsonObject(JSONOutput.encode(comparison))
            let runs = try #require(json["runs"] as? [[String: Any]])
            #expect(runs.map { $0["protocol"] as? String } == ["swapcache", "legacy"])
            let ratios = try #require(json["ratios"] as? [String: Double])
            #expect(ratios["ops_per_s"] == 2)
            #expect(ratios["p999"] == 4)
        }

        @Test("--protocol all: the swap cache against each baseline, by name")
        func ratiosByBaseline() throws {
            let ours = Self.report(ops: 2_000_000, seconds: 2, latency: LatencySummary(p50: 1, p99: 5, p999: 10, max: 100))
            let others = [(BenchProtocol.legacy, 1.0), (.legacyWQ, 2.0), (.legacyBypass, 4.0)].map { p, slower in
                Self.report(
                    protocol: p, ops: Int64(2_000_000 / slower), seconds: 2,
                    latency: LatencySummary(p50: slower, p99: 5 * slower, p999: 10 * slower, max: 100 * slower))
            }
            let comparison = ComparisonReport(ours: ours, others: others)
            #expect(comparison.ratios == ComparisonReport.ratios(ours: ours, other: others[0]))
            #expect(comparison.ratiosByBaseline["legacy-wq"]?["p999"] == 2)
            #expect(comparison.ratiosByBaseline["legacy-bypass"]?["ops_per_s"] == 4)
            let json = try jsonObject(JSONOutput.encode(comparison))
            let runs = try #require(json["runs"] as? [[String: Any]])
            #expect(runs.map { $0["protocol"] as? String } == ["swapcache", "legacy", "legacy-wq", "legacy-bypass"])
            let byBaseline = try #require(json["ratios_by_baseline"] as? [String: [String: Double]])
            #expect(Set(byBaseline.keys) == ["legacy", "legacy-wq", "legacy-bypass"])
            #expect(byBaseline["legacy"]?["p999"] == 1)
            let text = comparison.text()
            #expect(
                text.contains("swapcache vs legacy: ") && text.contains("swapcache vs legacy-wq: ")
                    && text.contains("swapcache vs legacy-bypass: "))
            // Two runs keep the two-run shape.
            let pair = try jsonObject(JSONOutput.encode(ComparisonReport(ours: ours, other: others[0])))
            #expect(pair["ratios_by_baseline"] == nil)
            #expect(BenchProtocol.parse("all") == BenchProtocol.allCases && BenchProtocol.parse("both") == [.swapcache, .legacy])
            #expect(BenchProtocol.parse("legacy-wq") == [.legacyWQ] && BenchProtocol.parse("fast") == nil)
        }

        @Test("a ratio over zero is left out, not written as infinity")
        func zeroDenominator() {
            let ours = Self.report(latency: .empty)
            let other = Self.report(protocol: .legacy, ops: 0)
            let ratios = ComparisonReport.ratios(ours: ours, other: other)
            #expect(ratios["ops_per_s"] == nil)
            #expect(ratios["p999"] == nil)
        }

        @Test("JSON goes to a file in an existing folder; a missing folder is a typed error and is not created")
        func writesFile() throws {
            try withTemporaryFolder { folder in
                let path = folder + "/alloc.json"
                try JSONOutput.write(Self.report(), to: .file(path), console: CapturedConsole().console)
                let json = try jsonObject(Data(contentsOf: URL(fileURLWithPath: path)))
                #expect(json["scenario"] as? String == "race")
                let deep = folder + "/deep/er/alloc.json"
                #expect(throws: SwapError.self) { try JSONOutput.write(Self.report(), to: .file(deep), console: CapturedConsole().console) }
                #expect(!FileManager.default.fileExists(atPath: folder + "/deep"))
            }
        }

        @Test("the machine is read from this machine, with an ISO-8601 UTC date")
        func machineInfo() throws {
            let machine = MachineInfo.current(directory: "/tmp/does/not/exist/yet")
            #expect(machine.cores >= 1)
            #expect(machine.memoryBytes > 0)
            #expect(!machine.kernel.isEmpty)
            #expect(machine.date.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/) != nil)
            #expect(machine.disk != nil)
            #expect(MachineInfo.isoDate(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00Z")
        }

        @Test("peak resident memory is measured and at least the current one")
        func residentMemory() {
            let current = ResidentMemory.currentBytes()
            #expect(current > 0)
            // Other tests run beside this one: the resident size may shrink between the reads,
            // and the kernel's high-water mark then only bounds the smaller of the two.
            let peak = ResidentMemory.peakBytes()
            #expect(peak >= min(current, ResidentMemory.currentBytes()))
        }
    }
}
