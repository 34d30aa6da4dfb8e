import Testing
import UserSwap

@testable import UserSwapBench
@testable import UserSwapCLI

extension Workloads {
    @Suite("Workload runs")
    struct WorkloadSessionTests {
        static let kinds = WorkloadKind.allCases

        @Test("every workload swaps 4× its budget and verifies every page", arguments: kinds)
        func verifies(kind: WorkloadKind) throws {
            let configuration = WorkloadConfiguration(
                kind: kind, memoryBytes: 1 << 20, dataBytes: 4 << 20, threads: 2, limit: .operations(20_000), seed: 11)
            let outcome = try WorkloadSession.run(
                configuration, device: .memory(bytes: Int(configuration.swapBytes)),
                console: Workloads.quiet, showsProgress: false, label: "test")
            print("\(kind): \(outcome.measured.ops) ops, \(outcome.totals[.swapIns] ?? 0) swap-ins, \(outcome.verificationLine)")
            #expect(outcome.verified, "\(outcome.verificationLine)")
            #expect((outcome.totals[.swapOuts] ?? 0) > 0)
            #expect(outcome.verifiedUnits > 0)
            if kind.isOpen {
                // multiget looks keys up in whole batches of 32: 10,000 per thread are 313 batches.
                #expect(outcome.measured.ops == (kind == .multiget ? 2 * 313 * 32 : 20_000))
                #expect(outcome.readsChecked > 0)
            }
        }

        @Test("a replay with the same per-thread counts does the same operations")
        func replay() throws {
            let first = WorkloadConfiguration(
                kind: .zipf, memoryBytes: 1 << 20, dataBytes: 4 << 20, threads: 2,
                limit: .operations(10_001), seed: 5)
            let a = try WorkloadSession.run(
                first, device: .memory(bytes: Int(first.swapBytes)),
                console: Workloads.quiet, showsProgress: false, label: "test")
            var second = first
            second.limit = .operationsPerThread(a.openOpsPerThread)
            let b = try WorkloadSession.run(
                second, device: .memory(bytes: Int(second.swapBytes)),
                console: Workloads.quiet, showsProgress: false, label: "test")
            #expect(a.openOpsPerThread == [5000, 5001])
            #expect(b.openOpsPerThread == a.openOpsPerThread)
        }

        @Test("the progress line shows ops/s, resident MiB and swap traffic")
        func progressDetail() {
            let text = WorkloadDriver.progressDetail(opsPerSecond: 201_000, residentFrames: 65_536, swapIns: 1_200_000, swapOuts: 42)
            #expect(text == "201k ops/s, resident 256 MiB, swap-ins 1.2M, swap-outs 42")
        }

        @Test("a page changed behind the workload's back fails verification")
        func detectsCorruption() throws {
            let space = try SwapSpace(.init(memory: 1 << 20, devices: [.memory(bytes: 8 << 20)]))
            let store = try PatternedRegion(space: space, pages: 1024, seed: 1)
            for page in 0..<1024 { try store.write(page) }
            // Page 10 is long swapped out; overwrite it through the region, not the store.
            try store.region.withPage(10, for: .write) { $0.storeBytes(of: 1, toByteOffset: 100, as: UInt64.self) }
            let driver = WorkloadDriver(space: space, threads: 2, console: Workloads.quiet, showsProgress: false, label: "test")
            _ = try driver.run(store.verificationPhase(), limit: .operations(0))
            #expect(store.verification.checked == 1024)
            #expect(store.verification.mismatches == 1)
            #expect(store.verification.failures.first?.hasPrefix("page 10:") == true)
        }
    }
}
