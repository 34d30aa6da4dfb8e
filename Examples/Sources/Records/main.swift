// A large array of 64-byte records in a small RAM budget, read and updated at random from two
// threads, then checked element by element.
import Foundation
import Synchronization
import UserSwap

/// 64 bytes: an identifier, a version bumped by each update, and a payload derived from both,
/// so that any element can be checked on its own.
struct Record: Equatable {
    var id: UInt64
    var version: UInt64
    var payload: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)

    init(id: UInt64, version: UInt64) {
        self.id = id
        self.version = version
        let seed = id &* 0x9E37_79B9_7F4A_7C15 ^ version
        payload = (seed, seed &+ 1, seed &+ 2, seed &+ 3, seed &+ 4, seed &+ 5)
    }

    var isIntact: Bool { self == Record(id: id, version: version) }

    static func == (a: Record, b: Record) -> Bool {
        a.id == b.id && a.version == b.version && a.payload == b.payload
    }
}

let small = CommandLine.arguments.contains("--small")
let count = small ? 40_000 : 8_000_000  // 2.5 MiB or 512 MiB of records
let budget = small ? 512 << 10 : 64 << 20  // a fifth or an eighth of the data
let space = try SwapSpace(.init(memory: budget, devices: [.temporary(size: Int64(count) * 64 * 2)]))
let records = try SwappableArray<Record>(count: 0, in: space)
try records.reserveCapacity(count)
for i in 0..<count { try records.append(Record(id: UInt64(i), version: 0)) }

// Two threads, each reading and updating the elements of its own parity (an element written by
// one thread while another copies it could be read half-updated, as with any shared memory).
let failures = Atomic<Int>(0)
let operations = small ? 20_000 : 1_000_000
DispatchQueue.concurrentPerform(iterations: 2) { thread in
    var generator = SystemRandomNumberGenerator()
    do {
        for _ in 0..<operations {
            let i = Int.random(in: 0..<count / 2, using: &generator) * 2 + thread
            let record = try records.element(at: i)
            if !record.isIntact || record.id != UInt64(i) { failures.add(1, ordering: .relaxed) }
            if Bool.random(using: &generator) {
                try records.setElement(Record(id: record.id, version: record.version + 1), at: i)
            }
        }
    } catch {
        print("error: \(error)")
        failures.add(1, ordering: .relaxed)
    }
}

// Check every element, a page at a time.
var checked = 0
try records.withElements(in: 0..<count) { start, page in
    for (offset, record) in page.enumerated() where !record.isIntact || record.id != UInt64(start + offset) {
        failures.add(1, ordering: .relaxed)
    }
    checked += page.count
}
let stats = space.statistics
guard failures.load(ordering: .relaxed) == 0, checked == count, stats[.swapIns] > 0 else {
    print("FAILED: \(failures.load(ordering: .relaxed)) wrong records of \(checked); \(stats[.swapIns]) swap-ins")
    exit(1)
}
print(
    "Records: verified \(checked) records (\(mebibytes(count * 64)) in a \(mebibytes(budget)) budget); "
        + "\(stats[.swapOuts]) pages swapped out, \(stats[.swapIns]) swapped in")

func mebibytes(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / Double(1 << 20)) }
