import Foundation
import Testing

@testable import UserSwapBench
@testable import UserSwapCLI

extension CLI {
    @Suite("seq scenario")
    struct SeqScenarioTests {
        @Test("a stream over 64 KiB folios reads whole folios ahead, every page checked, and says its folio size")
        func largeFolios() throws {
            let json = try benchReport { folder, json in
                BenchOptions(
                    scenario: "seq", json: json, threads: 2, seconds: 0.3,
                    memoryBytes: 4 << 20, dataBytes: 16 << 20, directory: folder,
                    parameters: ["folio": "64K"], showsProgress: false)
            }
            #expect(json["verified"] as? Bool == true && json["folio_bytes"] as? Int == 64 << 10)
            let counters = try #require(json["counters"] as? [String: Any])
            let hits = try #require(counters["cacheHits"] as? Int)
            let swapIns = try #require(json["swap_ins"] as? Int)
            // Swap-ins count pages, cache hits folios: a stream of 4 KiB folios has about one
            // hit per page swapped in (each read ahead, then found in the cache), 64 KiB ones
            // one per 16.
            #expect(hits > 0 && hits * 8 < swapIns, "\(hits) cache hits for \(swapIns) pages swapped in")
        }

        @Test("a short run streams read-only and reports its swap-in as a share of the raw sequential read")
        func share() throws {
            let json = try benchReport { folder, json in
                BenchOptions(
                    scenario: "seq", json: json, threads: 2, seconds: 0.3,
                    memoryBytes: 4 << 20, dataBytes: 16 << 20, directory: folder, showsProgress: false)
            }
            #expect(json["scenario"] as? String == "seq" && json["verified"] as? Bool == true)
            #expect(json["write_ratio"] as? Double == 0)
            let raw = try #require(json["raw"] as? [String: Any])
            let rawRead = try #require(raw["sequential_read_mib_per_s"] as? Double)
            let stream = try #require(json["seq_swap_in_mib_per_s"] as? Double)
            #expect(rawRead > 0 && stream > 0)
            let shares = try #require(json["shares"] as? [String: Any])
            let share = try #require(shares["sequential_swap_in_of_sequential_read"] as? Double)
            #expect(abs(share - stream / rawRead) < 1e-9)
            // The same read into scattered 4 KiB pages, the requests a 4 KiB stream makes.
            let pageRead = try #require(raw["sequential_read_4k_pages_mib_per_s"] as? Double)
            let pageShare = try #require(shares["sequential_swap_in_of_4k_page_read"] as? Double)
            #expect(pageRead > 0 && abs(pageShare - stream / pageRead) < 1e-9)
            // A read-only stream: what it swapped in came from the device, and nothing of
            // the timed phase was written back but what reclaim found dirty from the fill.
            #expect(json["swap_ins"] as? Int ?? 0 > 0)
        }

        @Test("without a plain swap file there is no disk to compare with: no share")
        func noShareOverMemory() throws {
            let json = try benchReport { folder, json in
                BenchOptions(
                    scenario: "seq", json: json, threads: 2, seconds: 0.2,
                    memoryBytes: 4 << 20, dataBytes: 16 << 20, directory: folder, device: "memory",
                    parameters: ["write_ratio": "0.2"], showsProgress: false)
            }
            #expect(json["verified"] as? Bool == true && json["write_ratio"] as? Double == 0.2)
            #expect(json["shares"] == nil && json["raw"] == nil)
        }
    }
}
