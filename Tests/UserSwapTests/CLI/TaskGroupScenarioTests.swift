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
                        parameters: ["tasks": "64", "pins": pins, "raw": pins == "async" ? "on" : "off"], showsProgress: false,
                        encryption: false)
                }
            }
            #expect(json["scenario"] as? String == "taskgroup" && json["verified"] as? Bool == true, "\(json)")
            #expect(json["pin_mode"] as? String == pins && json["tasks"] as? Int == 64)
            // How many accesses fit in 0.5 s depends on what else holds the default executor's
            // threads (in the whole suite, blocking tests of other suites): printed, not checked.
            let heartbeat = try #require(json["heartbeat_late_us"] as? [String: Any])
            // Async pins leave the cooperative threads to the heartbeat; blocking pins may hold
            // them for the whole run (it then wakes once, that late: the figure the scenario is
            // for). Either way it reports at least one wake-up.
            #expect((heartbeat["count"] as? Int ?? 0) >= 1 && heartbeat["p99"] is Double, "\(heartbeat)")
            print("taskgroup, \(pins) pins: \(json["ops"] ?? 0) accesses, heartbeat \(heartbeat)")
            guard pins == "async" else { return }
            // The raw depth-32 IOPS of the same run, and the timed phase's device reads as a share.
            let raw = try #require(json["raw_iops_depth32"] as? Double)
            let share = try #require(json["swap_in_rate_of_raw_depth32"] as? Double)
            // The reads themselves depend on the threads the tasks got: not checked.
            let reads = try #require(json["device_reads"] as? Int)
            let seconds = try #require(json["seconds"] as? Double)
            #expect(raw > 0, "\(json)")
            #expect(abs(share - Double(reads) / seconds / raw) <= 1e-6 * max(1, share), "\(json)")
        }

        @Test("--mode kernel: the same tasks over anonymous memory, verified, with the kernel's counters and a heartbeat")
        func kernelMode() async throws {
            let json = try await onThread {
                try benchReport { folder, json in
                    BenchOptions(
                        scenario: "taskgroup", json: json, seconds: 0.3, mode: .kernel, memoryBytes: 1 << 20, dataBytes: 4 << 20,
                        directory: folder, parameters: ["tasks": "32", "cgroup": "optional"], showsProgress: false)
                }
            }
            #expect(json["scenario"] as? String == "taskgroup" && json["mode"] as? String == "kernel", "\(json)")
            #expect(json["verified"] as? Bool == true && json["protocol"] == nil, "\(json)")
            // How many accesses the tasks made depends on the threads they got (in the whole
            // suite, other suites' blocking tests hold the default executor's): not checked.
            #expect(json["tasks"] as? Int == 32 && json["data_bytes"] as? Int == 4 << 20 && json["wrong_accesses"] as? Int == 0)
            #expect(json["ops"] is Int, "\(json)")
            // Without a cgroup nothing faults and no task suspends: the heartbeat sleeps until
            // they are done, and that one late wake-up is reported.
            let heartbeat = try #require(json["heartbeat_late_us"] as? [String: Any])
            #expect(heartbeat["p99"] is Double && (heartbeat["count"] as? Int ?? 0) >= 1, "\(heartbeat)")
            let kernel = try #require(json["kernel"] as? [String: Any])
            #expect(kernel["major_faults"] is Int && kernel["swap_counter_source"] is String, "\(kernel)")
            #expect(json["swap_ins"] is Int && json["device_reads_per_s"] is Double, "\(json)")
        }

        @Test("--mode kernel without a limiting cgroup and without cgroup=optional is refused")
        func kernelModeNeedsCgroup() async throws {
            guard MemoryCgroup.current()?.limitBytes == nil else { return }
            await #expect(throws: BenchError.self) {
                _ = try await onThread {
                    try benchReport { folder, json in
                        BenchOptions(
                            scenario: "taskgroup", json: json, seconds: 0.1, mode: .kernel, memoryBytes: 1 << 20, directory: folder,
                            parameters: ["tasks": "4"], showsProgress: false)
                    }
                }
            }
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
