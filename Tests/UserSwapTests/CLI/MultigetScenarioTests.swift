import Foundation
import Testing

@testable import UserSwapBench

extension CLI {
    @Suite("multiget scenario")
    struct MultigetScenarioTests {
        @Test("a short run reads the disk at depths 1, 2 and 32 before and after the batches, and writes the swap-ins' shares of it")
        func shortRun() throws {
            let json = try benchReport { folder, json in
                BenchOptions(
                    scenario: "multiget", json: json, threads: 2, seconds: 0.3,
                    memoryBytes: 2 << 20, dataBytes: 8 << 20, directory: folder, parameters: ["batch": "16"], showsProgress: false)
            }
            #expect(json["scenario"] as? String == "multiget" && json["verified"] as? Bool == true)
            #expect(json["batch"] as? Int == 16 && json["prefetch"] as? Bool == true)
            #expect((json["prefetch_method"] as? String)?.hasPrefix("Region.prefetch(pages:)") == true)
            #expect((json["ops"] as? Int ?? 0) % 16 == 0 && json["swap_ins"] as? Int ?? 0 > 0)
            let raw = try #require(json["raw"] as? [String: Any])
            for key in ["random_read_4k_io_uring", "random_read_4k_io_uring_before", "random_read_4k_io_uring_after"] {
                let depths = try #require(raw[key] as? [[String: Any]], "no \(key)")
                #expect(depths.compactMap { $0["depth"] as? Int } == [1, 2, 32])
            }
            let best = try #require(raw["random_read_4k_io_uring"] as? [[String: Any]])
            let before = try #require(raw["random_read_4k_io_uring_before"] as? [[String: Any]])
            let after = try #require(raw["random_read_4k_io_uring_after"] as? [[String: Any]])
            for i in 0..<3 {
                let iops = best[i]["iops"] as? Double ?? 0
                #expect(iops > 0 && iops == max(before[i]["iops"] as? Double ?? 0, after[i]["iops"] as? Double ?? 0))
            }
            let shares = try #require(json["shares"] as? [String: Any])
            let swapInsPerSecond = try #require(shares["swap_ins_per_s"] as? Double)
            let depth32 = try #require(shares["swap_in_of_random_read_iops_depth_32"] as? Double)
            #expect(abs(depth32 - swapInsPerSecond / (best[2]["iops"] as? Double ?? 1)) < 1e-9)
            #expect(json["batch_latency_us"] != nil && json["peak_rss_bytes"] != nil && json["rss_stages"] != nil)
        }

        @Test("kernel mode does not measure the disk unless asked, and says how it prefetches")
        func kernelMode() throws {
            let json = try benchReport { folder, json in
                BenchOptions(
                    scenario: "multiget", json: json, threads: 2, seconds: 0.2, mode: .kernel,
                    memoryBytes: 2 << 20, dataBytes: 4 << 20, directory: folder, parameters: ["cgroup": "optional"],
                    showsProgress: false)
            }
            #expect(json["verified"] as? Bool == true && json["raw"] == nil)
            #expect((json["prefetch_method"] as? String)?.hasPrefix("madvise(MADV_WILLNEED)") == true)
        }
    }
}
