import Foundation
import Testing

@testable import UserSwap

/// `.file(path:size:)` on a file that exists: the size asked for is checked, not ignored.
@Suite("File devices: an existing file of another size is refused")
struct FileDeviceSizeTests {
    @Test("a leftover smaller file is refused with .fileExists naming both sizes, and left as it was")
    func smallerFileRefused() throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let path = scratch.file("swap")
        try SwapFile.format(path: path, bytes: 4 << 20)
        let before = try #require(DeviceTestSupport.contents(path))

        let error = try #require(throws: SwapError.self) {
            try SwapSpace(.init(memory: 1 << 20, devices: [.file(path: path, size: 64 << 20)]))
        }
        #expect(error.code == .fileExists)
        #expect(error.message.contains("4") && error.message.contains("64"), "\(error.message)")
        #expect(!error.message.contains("--"), "a library error names no command-line option: \(error.message)")
        #expect(DeviceTestSupport.contents(path) == before)
    }

    @Test("the same size, or no size, uses the existing file")
    func sameSizeOrNoSizeUsed() throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        for (i, size) in [Int64(4 << 20), nil].enumerated() {
            let path = scratch.file("swap\(i)")
            try SwapFile.format(path: path, bytes: 4 << 20)
            let space = try SwapSpace(.init(memory: 1 << 20, devices: [.file(path: path, size: size)]))
            #expect(space.devices.count == 1)
        }
    }
}
