import Foundation
import Testing

@testable import UserSwapBench
@testable import UserSwapCLI

extension CLI {
    @Suite("array scenario")
    struct ArrayScenarioTests {
        @Test("SwappableArray next to Array: every operation timed on both, agreeing, in the benchmark JSON shape")
        func figures() throws {
            let json = try benchReport { folder, json in
                BenchOptions(scenario: "array", json: json, directory: folder, parameters: ["elements": "20000"], showsProgress: false)
            }
            #expect(json["scenario"] as? String == "array" && json["verified"] as? Bool == true, "\(json)")
            #expect(json["elements"] as? Int == 20000 && json["swap_outs"] as? Int == 0 && json["all_resident"] as? Bool == true)
            let results = try #require(json["results"] as? [String: Any])
            #expect(Set(results.keys) == Set(ArrayScenario.operationNames))
            for (operation, value) in results {
                let entry = try #require(value as? [String: Any])
                for side in ["swappable_ns_per_element", "array_ns_per_element"] {
                    let figures = try #require(entry[side] as? [String: Any], "\(operation)")
                    let best = try #require(figures["best"] as? Double), median = try #require(figures["median"] as? Double)
                    #expect(best > 0 && best <= median, "\(operation) \(side): best \(best), median \(median)")
                }
                let iterations = try #require(entry["swappable_iterations"] as? [String: Any])
                #expect(iterations["iterations"] as? Int == 3)
            }
        }

        @Test("a budget too small to hold the arrays still verifies, and says the figures include swap I/O")
        func budgetTooSmall() throws {
            let json = try benchReport { folder, json in
                BenchOptions(
                    scenario: "array", json: json, memoryBytes: 256 << 10, directory: folder,
                    parameters: ["elements": "200000", "operations": "read_in_order,iterate"], showsProgress: false)
            }
            #expect(json["verified"] as? Bool == true && json["all_resident"] as? Bool == false && (json["swap_outs"] as? Int ?? 0) > 0)
            #expect(Set((json["results"] as? [String: Any] ?? [:]).keys) == ["read_in_order", "iterate"])
        }
    }
}
