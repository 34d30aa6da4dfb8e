import Foundation
import Glibc
import Testing

@testable import UserSwap

@Suite("Discard on swap files")
struct DiscardTests {
    static func allocatedBytes(_ path: String) -> Int {
        var st = stat()
        return lstat(path, &st) == 0 ? Int(st.st_blocks) * 512 : -1
    }

    /// Fills 2048 pages through a 64-frame space on a 16 MiB swap file, frees them all, and
    /// returns the file's allocated bytes after format and after the frees.
    static func allocatedAroundFrees(discard: Bool?) throws -> (full: Int, after: Int) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "userswap-discard-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        ).path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/swap0"
        let device: SwapSpace.DeviceConfiguration =
            if let discard {
                .file(path: path, size: 16 << 20, discard: discard)
            } else {
                .file(path: path, size: 16 << 20)
            }
        let space = try SwapSpace(.init(memory: 64 * SwapPage.size, devices: [device], backgroundReclaim: false))
        let full = Self.allocatedBytes(path)
        #expect(full >= 16 << 20, "format allocates every block up front")
        let region = try space.makeRegion(bytes: 2048 * SwapPage.size)
        for p in 0..<2048 { try region.withPage(p) { fill($0, page: p) } }
        for p in stride(from: 0, to: 2048, by: 101) { try region.withPage(p, for: .read) { #expect(matches($0, page: p)) } }
        try region.discard(pages: 0..<2048)
        #expect(space.devices[0].usedPages == 0)
        return (full, Self.allocatedBytes(path))
    }

    @Test("by default a swap file keeps its blocks: swap-out never meets a full disk")
    func blocksKeptByDefault() throws {
        let (full, after) = try Self.allocatedAroundFrees(discard: nil)
        #expect(after >= full, "\((full - after) >> 20) MiB given back without discard")
    }

    @Test("with discard, freed clusters give their disk blocks back to the file system")
    func holesPunched() throws {
        let (full, after) = try Self.allocatedAroundFrees(discard: true)
        // 2048 pages went through four clusters besides the header's, and each was freed whole
        // (a few blocks of file-system slack aside).
        #expect(full - after >= 7 << 20, "only \((full - after) >> 20) MiB given back")
        print("discard: \(full >> 20) MiB allocated after format, \(after >> 20) MiB after freeing every cluster")
    }
}
