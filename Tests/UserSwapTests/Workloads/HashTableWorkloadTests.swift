import Testing
import UserSwap

@testable import UserSwapBench
@testable import UserSwapCLI

extension Workloads {
    @Suite("Swappable hash table")
    struct HashTableWorkloadTests {
        @Test(
            "a table 8× the budget, filled by two threads, finds every key with its value", arguments: [BenchProtocol.swapcache, .legacy])
        func swapsAndVerifies(swapProtocol: BenchProtocol) throws {
            let configuration = WorkloadConfiguration(
                kind: .hashtable, memoryBytes: 1 << 20, dataBytes: 8 << 20, threads: 2, limit: .operations(0),
                seed: 7, swapProtocol: swapProtocol)
            let outcome = try WorkloadSession.run(
                configuration, device: .memory(bytes: Int(configuration.swapBytes)),
                console: Workloads.quiet, showsProgress: false, label: "test")
            let keys = (8 << 20) / SwappableHashTable.recordBytes / 2
            print(
                "hashtable \(swapProtocol): \(outcome.readsChecked) lookups, \(outcome.totals[.swapIns] ?? 0) swap-ins, \(outcome.verifiedUnits) pages scanned"
            )
            #expect(outcome.verified, "\(outcome.verificationLine)")
            #expect(outcome.readsChecked == keys)
            #expect(outcome.verifiedUnits == 2048)
            #expect(outcome.measured.ops == Int64(2 * keys))
            // It must have swapped: most of the table cannot be in 1 MiB.
            #expect((outcome.counters[.swapIns] ?? 0) > keys / 2)
            #expect(outcome.peakResidentFrames <= 256)
        }

        @Test("lookups report a missing key and a damaged value")
        func detectsDamage() throws {
            let space = try SwapSpace(.init(memory: 1 << 20, devices: [.memory(bytes: 8 << 20)]))
            let table = try SwappableHashTable(space: space, pages: 16, seed: 3)
            let keys = (0..<500).map { HashTableWorkload.key($0, seed: 3) }
            for key in keys { try table.insert(key) }
            for key in keys { #expect(try table.lookup(key) == .found) }
            #expect(try table.lookup(HashTableWorkload.key(500, seed: 3)) == .missing)

            // Damage one value word of the first key's record, wherever it landed.
            var damaged = false
            for page in 0..<table.pageCount where !damaged {
                try table.region.withPage(page, for: .write) { bytes in
                    for record in 0..<SwappableHashTable.recordsPerPage
                    where bytes.load(fromByteOffset: record * 64, as: UInt64.self) == keys[0] {
                        bytes.storeBytes(of: 12345, toByteOffset: record * 64 + 24, as: UInt64.self)
                        damaged = true
                    }
                }
            }
            #expect(damaged)
            #expect(try table.lookup(keys[0]) == .corrupt(word: 3, value: 12345))
            let scanned = try (0..<table.pageCount).map { try table.scan(page: $0) }
            #expect(scanned.reduce(0) { $0 + $1.records } == 500)
            #expect(scanned.flatMap(\.problems).count == 1)
        }

        @Test("keys are distinct")
        func distinctKeys() {
            let keys = Set((0..<100_000).map { HashTableWorkload.key($0, seed: 9) })
            #expect(keys.count == 100_000)
        }
    }
}
