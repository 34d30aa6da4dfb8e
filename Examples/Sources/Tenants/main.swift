// Two tenants in one space, each in its own memory group: a tenant that fills more than its
// memory limit swaps its own pages, and the other keeps what it had in RAM.
import Foundation
import UserSwap

let small = CommandLine.arguments.contains("--small")
let unit = small ? 256 << 10 : 32 << 20  // the quiet tenant's working set
let space = try SwapSpace(.init(memory: unit * 4, devices: [.temporary(size: Int64(unit) * 32)]))
let quiet = try space.makeGroup(name: "quiet", memoryLimit: unit * 2)
let busy = try space.makeGroup(name: "busy", memoryLimit: unit * 2, swapLimit: unit * 16)

let quietData = try SwappableArray<UInt64>(count: 0, in: space, group: quiet)
try quietData.append(contentsOf: (0..<unit / 8).map { UInt64($0) })
let quietSwappedBefore = quiet[.pswpout]

// The busy tenant writes four times its limit: it must swap, and only its own pages.
let busyData = try SwappableArray<UInt64>(count: 0, in: space, group: busy)
for i in 0..<unit / 2 { try busyData.append(UInt64(i) &* 31) }

var wrong = 0
for (i, value) in quietData.enumerated() where value != UInt64(i) { wrong += 1 }
try busyData.withElements(in: 0..<busyData.count) { start, page in
    for (offset, value) in page.enumerated() where value != UInt64(start + offset) &* 31 { wrong += 1 }
}
let checks: [(String, Bool)] = [
    ("every value reads back", wrong == 0),
    ("the busy tenant swapped out", busy[.pswpout] > 0),
    ("the busy tenant stayed under its memory limit", busy.memoryPeak <= unit * 2),
    ("the quiet tenant lost no page to the busy one", quiet[.pswpout] == quietSwappedBefore),
]
for (what, ok) in checks where !ok { print("FAILED: \(what)") }
guard checks.allSatisfy(\.1) else { exit(1) }
print(
    "Tenants: verified both tenants' data; busy peaked at \(busy.memoryPeak >> 10) KiB of its \((unit * 2) >> 10) KiB limit and swapped "
        + "\(busy[.pswpout]) pages; quiet kept its \((quietData.count * 8) >> 10) KiB in RAM")
