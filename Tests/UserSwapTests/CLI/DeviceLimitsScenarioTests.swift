import Foundation
import Testing

@testable import UserSwapBench
@testable import UserSwapCLI

extension CLI {
    @Suite("device-limits scenario")
    struct DeviceLimitsScenarioTests {
        @Test("a short run measures the raw file and UserSwap and writes their shares")
        func shortRun() throws {
            let json = try benchReport { folder, json in
                BenchOptions(
                    scenario: "device-limits", json: json, threads: 2, seconds: 0.2,
                    memoryBytes: 4 << 20, dataBytes: 16 << 20, directory: folder, showsProgress: false)
            }
            #expect(json["scenario"] as? String == "device-limits" && json["verified"] as? Bool == true)
            let raw = try #require(json["raw"] as? [String: Any])
            #expect(raw["sequential_write_mib_per_s"] as? Double ?? 0 > 0 && raw["sequential_read_mib_per_s"] as? Double ?? 0 > 0)
            #expect(raw["memcpy_gib_per_s"] as? Double ?? 0 > 0.1)
            let random = try #require(raw["random_read_4k"] as? [[String: Any]])
            #expect(random.compactMap { $0["threads"] as? Int } == [1, 2, 32])
            // The same disk at queue depths 1, 2 and 32 on one io_uring, each read timed.
            let ring = try #require(raw["random_read_4k_io_uring"] as? [[String: Any]])
            #expect(ring.compactMap { $0["depth"] as? Int } == [1, 2, 32])
            for depth in ring {
                let latency = try #require(depth["latency_us"] as? [String: Any])
                #expect(depth["iops"] as? Double ?? 0 > 0 && latency["count"] as? Int == depth["reads"] as? Int)
            }
            // What `top` sees, beside the budget.
            #expect(json["peak_rss_bytes"] as? Int ?? 0 > 0)
            let split = try #require(json["rss_bytes"] as? [String: Any])
            #expect(split["anon"] as? Int ?? 0 > 0 && split["file"] as? Int ?? 0 > 0)
            let swap = try #require(json["userswap"] as? [String: Any])
            // 16M of data in 4M: the 12M beyond the budget leave through the file, less what is
            // still under write-back when the clock stops (a debug build's reclaim lags: 2,912
            // of 3,072 pages counted once).
            #expect(swap["fill_swap_outs"] as? Int ?? 0 >= 2 * 1024)
            #expect(swap["random_swap_ins"] as? Int ?? 0 > 0)
            let shares = try #require(json["shares"] as? [String: Any])
            #expect(shares["swap_out_of_sequential_write"] as? Double ?? 0 > 0)
            #expect(shares["swap_in_of_random_read_iops"] as? Double ?? 0 > 0)
        }

        @Test(
            "with 256 KiB folios the streams run to the end: an allocation waits out the background reclaimer's batch (a spurious out-of-memory before)"
        )
        func largeFolios() throws {
            let json = try benchReport { folder, json in
                BenchOptions(
                    scenario: "device-limits", json: json, threads: 2, seconds: 0.2,
                    memoryBytes: 16 << 20, dataBytes: 64 << 20, directory: folder,
                    parameters: ["large_folio": "256K"], showsProgress: false)
            }
            #expect(json["verified"] as? Bool == true)
            let large = try #require(json["userswap_large_folios"] as? [String: Any])
            #expect(large["folio_bytes"] as? Int == 256 << 10)
            #expect(large["fill_swap_outs"] as? Int ?? 0 >= 8 * 1024)
        }

        @Test("data smaller than twice the budget is refused")
        func refusesSmallData() {
            let options = BenchOptions(scenario: "device-limits", memoryBytes: 64 << 20, dataBytes: 64 << 20)
            #expect(throws: BenchError.self) { try BenchCommand.perform(options, console: CapturedConsole().console) }
        }
    }
}
