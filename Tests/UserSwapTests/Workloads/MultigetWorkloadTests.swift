import Testing
import UserSwap

@testable import UserSwapBench

extension Workloads {
    @Suite("Multiget: the hash table looked up in batches")
    struct MultigetWorkloadTests {
        @Test("unmix inverts SplitMix64's mixer")
        func unmixInverts() {
            var random = Xoshiro256StarStar(seed: 99)
            for value in [0, 1, UInt64.max, 0x8000_0000_0000_0000] + (0..<10_000).map({ _ in random.next() }) {
                #expect(SplitMix64.mix(SplitMix64.unmix(value)) == value)
                #expect(SplitMix64.unmix(SplitMix64.mix(value)) == value)
            }
        }

        @Test("keys are distinct and their home pages rise with their index, so the fill streams through the table")
        func keysInPageOrder() throws {
            let table = PagedHashTable(store: try AnonymousPageStore(pages: 64), seed: 5)
            let count = table.capacity / 2
            let keys = (0..<count).map { MultigetWorkload<AnonymousPageStore>.key($0, of: count, tableSeed: 5, seed: 5) }
            #expect(Set(keys).count == count)
            let pages = keys.map(table.homePage)
            #expect(pages == pages.sorted())
            #expect(pages.first == 0 && pages.last == 63)
        }

        @Test("runs of consecutive pages")
        func runs() {
            var runs: [Range<Int>] = []
            RegionPageStore.forEachRun([3, 4, 5, 9, 11, 12]) { runs.append($0) }
            #expect(runs == [3..<6, 9..<10, 11..<13])
            runs.removeAll()
            RegionPageStore.forEachRun([]) { runs.append($0) }
            #expect(runs.isEmpty)
        }

        @Test(
            "a batch prefetches its keys' home pages, sorted and once each, before its first lookup; without prefetch it does not",
            arguments: [true, false])
        func prefetchesBeforeLookups(prefetches: Bool) throws {
            let store = RecordingPageStore(pageCount: 256)
            let table = PagedHashTable(store: store, seed: 9)
            let workload = MultigetWorkload(table: table, loadFactor: 0.5, batch: 16, prefetches: prefetches, seed: 9)
            let phase = try #require(workload.phases.first { $0.name == "multiget" })
            #expect(phase.opsPerStep == 16 && phase.measured)
            let worker = phase.prepare(0, 1)
            // Three batches. The scratch page reads as empty, so each lookup reads its home page only.
            let outcome = try worker.drive(DriverShared(threads: 1), 3, .max)
            #expect(outcome.steps == 3)
            #expect(store.accesses.count == 48)
            guard prefetches else {
                #expect(store.prefetches.isEmpty)
                return
            }
            #expect(store.prefetches.count == 3)
            for (batch, prefetch) in store.prefetches.enumerated() {
                #expect(prefetch.afterAccesses == batch * 16)
                let read = store.accesses[batch * 16..<(batch + 1) * 16].map(\.page)
                #expect(prefetch.pages == Array(Set(read)).sorted())
            }
        }

        @Test("a table 8× the budget, looked up in batches on a region, finds every key; ops count keys", arguments: [true, false])
        func swapsAndVerifies(prefetch: Bool) throws {
            var configuration = WorkloadConfiguration(
                kind: .multiget, memoryBytes: 1 << 20, dataBytes: 8 << 20, threads: 2, limit: .operations(3000), seed: 7)
            configuration.batch = 32
            configuration.prefetch = prefetch
            let outcome = try WorkloadSession.run(
                configuration, device: .memory(bytes: Int(configuration.swapBytes)),
                console: Workloads.quiet, showsProgress: false, label: "test")
            print("multiget prefetch \(prefetch): \(outcome.readsChecked) lookups, \(outcome.counters[.swapIns] ?? 0) swap-ins")
            #expect(outcome.verified, "\(outcome.verificationLine)")
            // Each thread does whole batches: 1500 keys are 47 batches of 32.
            #expect(outcome.measured.ops == 2 * 47 * 32)
            #expect(outcome.readsChecked == Int(outcome.measured.ops))
            #expect(outcome.verifiedUnits == 2048)
            #expect((outcome.counters[.swapIns] ?? 0) > 1000)
            let multiget = try #require(outcome.phases.first { $0.name == "multiget" })
            #expect(multiget.stepLatency?.count == 2 * 47)
            var report = BenchReport(scenario: "multiget", threads: 2, ops: 0, seconds: 0, machine: .current())
            outcome.fill(&report)
            #expect(report.extras["batch"] == JSONValue(32) && report.extras["prefetch"] == .bool(prefetch))
            #expect(report.extras["batch_latency_us"] != nil)
        }

        @Test("the same batches on plain anonymous memory with MADV_WILLNEED verify")
        func anonymousMemory() throws {
            var configuration = WorkloadConfiguration(
                kind: .multiget, memoryBytes: 1 << 20, dataBytes: 4 << 20, threads: 2, limit: .operations(2048), seed: 3)
            configuration.batch = 8
            let run = try WorkloadSession.runOnKernelSwap(
                configuration, cgroup: nil, console: Workloads.quiet, showsProgress: false, label: "test")
            #expect(run.outcome.verified, "\(run.outcome.verificationLine)")
            #expect(run.outcome.measured.ops == 2048)
        }
    }
}
