// An image larger than its RAM budget in a transparent region: plain memory, written and read
// through an ordinary pointer (as a C image library would), with pages moving to swap and back
// underneath.
import Foundation
import UserSwap

let small = CommandLine.arguments.contains("--small")
let width = small ? 1024 : 8192
let height = small ? 768 : 8192  // 3 MiB or 256 MiB of RGBA pixels
let budget = small ? 1 << 20 : 64 << 20
let bytes = width * height * 4

let space = try SwapSpace(.init(memory: budget, devices: [.temporary(size: Int64(bytes) * 2)]))
let image = try space.makeTransparentRegion(bytes: bytes)
let pixels = image.base.bindMemory(to: UInt32.self, capacity: width * height)

func gradient(_ x: Int, _ y: Int) -> UInt32 {
    UInt32(x & 0xFF) | UInt32(y & 0xFF) << 8 | UInt32((x ^ y) & 0xFF) << 16 | 0xFF00_0000
}

// Draw, then invert the colour channels in place, row by row: every page is written twice.
for y in 0..<height {
    for x in 0..<width { pixels[y * width + x] = gradient(x, y) }
}
for i in 0..<width * height { pixels[i] ^= 0x00FF_FFFF }

// Read it back a row at a time in random order, so that pages come back from swap out of order.
var wrong = 0
for y in (0..<height).shuffled() {
    for x in 0..<width where pixels[y * width + x] != gradient(x, y) ^ 0x00FF_FFFF { wrong += 1 }
}
let stats = space.statistics
guard wrong == 0, stats[.majorFaults] > 0, image.lastFaultError == nil else {
    print("FAILED: \(wrong) wrong pixels; \(stats[.majorFaults]) major faults; \(String(describing: image.lastFaultError))")
    exit(1)
}
print(
    "ImageBuffer: verified a \(width)×\(height) image (\(bytes >> 10) KiB) in a \(budget >> 10) KiB budget; "
        + "\(stats[.majorFaults]) major faults, \(stats[.minorFaults]) minor, \(stats[.swapOuts]) pages swapped out")
