import Foundation
import Testing

@testable import UserSwapBench
@testable import UserSwapCLI

extension CLI {
    @Suite("taskgroup scenario", .serialized)
    struct TaskGroupScenarioTests {
        @Test(
            "tasks through async pins over data 4x the budget: verified, with accesses, swap-ins and a heartbeat",
            arguments: ["async", "blocking"])
        func figures(pins: String) async throws {
            // On a thread of its own, as from the command line's main thread: the scenario waits
            // for its tasks there, and a cooperative thread waiting for them could leave none
            // to run them.
            let json = try await onThread {
                try benchReport { folder, json in
                    BenchOptions(
                        scenario: "taskgroup", json: json, seconds: 0.5, memoryBytes: 1 << 20, directory: folder,
                        parameters: ["tasks": "64", "pins": pins], showsProgress: false, encryption: false)
                }
            }
            #expect(json["scenario"] as? String == "taskgroup" && json["verified"] as? Bool == true, "\(json)")
            #expect(json["pin_mode"] as? String == pins && json["tasks"] as? Int == 64)
            // How many accesses fit in 0.5 s depends on what else holds the default executor's
            // threads (in the whole suite, blocking tests of other suites): printed, not checked.
            let heartbeat = try #require(json["heartbeat_late_us"] as? [String: Any])
            // Async pins leave the cooperative threads to the heartbeat; blocking pins may hold
            // them for the whole run (it then never wakes: the figure the scenario is for).
            #expect(heartbeat["count"] is Int && heartbeat["p99"] is Double, "\(heartbeat)")
            print("taskgroup, \(pins) pins: \(json["ops"] ?? 0) accesses, heartbeat \(heartbeat)")
        }

        /// Runs `body` on a new thread and suspends until it returns.
        private func onThread(_ body: @escaping @Sendable () throws -> [String: Any]) async throws -> [String: Any] {
            let box: UncheckedBox = try await withCheckedThrowingContinuation { c in
                Thread { c.resume(with: Result { UncheckedBox(value: try body()) }) }.start()
            }
            return box.value
        }

        /// A JSON object crossing from the thread to the test.
        private struct UncheckedBox: @unchecked Sendable { let value: [String: Any] }
    }
}
