import Foundation
import Testing

@testable import UserSwapBench
@testable import UserSwapCLI

extension CLI {
    /// A run whose pages come back wrong fails: `run` and `bench` exit 1, and `bench` writes its
    /// report with `verified: false` and no comparison ratios. The wrong pages come from a swap
    /// device that silently corrupts what it reads back (debug builds only).
    @Suite("Verification gates the figures")
    struct VerificationGateTests {
        @Test("run exits 1 when the swap device corrupts pages, and its report says verified: false")
        func runFails() throws {
            try withTemporaryFolder { folder in
                var options = RunOptions()
                options.memoryBytes = 1 << 20
                options.dataBytes = 4 << 20
                options.limit = .operations(5_000)
                options.swap = .memory
                options.encryption = false
                options.showsProgress = false
                options.json = .file(folder + "/run.json")
                options.swapDeviceOverride = .corruptingReads(byte: 2049)
                let captured = CapturedConsole()
                let status = CommandLineTool.execute(.run(options), console: captured.console)
                #expect(status == ExitCode.failure)
                #expect(captured.stderr.contains("the data did not verify"), "\(captured.stderr)")
                let json = try jsonObject(Data(contentsOf: URL(fileURLWithPath: folder + "/run.json")))
                #expect(json["verified"] as? Bool == false)
            }
        }

        static func bench(_ options: BenchOptions, in folder: String) throws -> (status: Int32, stderr: String, json: [String: Any]) {
            var options = options
            options.json = .file(folder + "/bench.json")
            options.directory = folder
            options.showsProgress = false
            let captured = CapturedConsole()
            let status = BenchCommand.exitStatus(options, console: captured.console)
            #expect(FileManager.default.fileExists(atPath: folder + "/bench.json"), "no report: \(captured.stderr)")
            let json = try jsonObject(Data(contentsOf: URL(fileURLWithPath: folder + "/bench.json")))
            return (status, captured.stderr, json)
        }

        @Test("bench exits 1 and writes no ratios when a page is wrong; the same comparison, clean, has them")
        func benchFails() throws {
            for corrupt in [false, true] {
                try withTemporaryFolder { folder in
                    var options = BenchOptions(
                        scenario: "random", threads: 1, protocols: [.swapcache, .legacy],
                        memoryBytes: 1 << 20, dataBytes: 4 << 20, device: "memory",
                        parameters: ["ops": "2000"])
                    options.swapDeviceOverride = corrupt ? .corruptingReads(byte: 100) : nil
                    let result = try Self.bench(options, in: folder)
                    let runs = try #require(result.json["runs"] as? [[String: Any]])
                    #expect(runs.count == 2)
                    if corrupt {
                        #expect(result.status == ExitCode.failure)
                        #expect(result.stderr.contains("the data did not verify (swapcache, legacy)"), "\(result.stderr)")
                        #expect(result.json["verified"] as? Bool == false)
                        #expect(result.json["ratios"] == nil && result.json["ratios_by_baseline"] == nil)
                        #expect(runs.allSatisfy { $0["verified"] as? Bool == false })
                    } else {
                        #expect(result.status == ExitCode.success, "\(result.stderr)")
                        #expect(result.json["verified"] as? Bool == true)
                        #expect((result.json["ratios"] as? [String: Any])?["ops_per_s"] != nil)
                    }
                }
            }
        }

        @Test("device-limits checks whole pages: one byte wrong in the middle of each page read back fails it, without shares")
        func deviceLimitsWholePages() throws {
            try withTemporaryFolder { folder in
                var options = BenchOptions(
                    scenario: "device-limits", threads: 2, seconds: 0.1,
                    memoryBytes: 4 << 20, dataBytes: 16 << 20)
                // In clear: a sealed page that was changed fails its authentication instead.
                options.encryption = false
                options.swapDeviceOverride = .corruptingReads(byte: 2048)
                let result = try Self.bench(options, in: folder)
                #expect(result.status == ExitCode.failure)
                #expect(result.json["verified"] as? Bool == false)
                #expect(result.json["shares"] == nil)
            }
        }
    }
}
