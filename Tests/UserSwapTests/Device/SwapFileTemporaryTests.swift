import Foundation
import Glibc
import Testing

@testable import UserSwap

/// Temporary swap files have no name by the time a page reaches them: nothing to open by a
/// path, nothing left on disk afterwards.
@Suite("Swap files: temporary devices leave nothing")
struct SwapFileTemporaryTests {
    /// The targets of this process's descriptors that lie in `directory`.
    static func openFiles(in directory: String) -> [String] {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0) }
            .filter { $0.hasPrefix(directory + "/") }
    }

    @Test(
        "a space on a .temporary device swaps pages out and back while its folder stays empty",
        arguments: [SwapFile.Staging.automatic, .named])
    func temporaryDevice(staging: SwapFile.Staging) throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let pages = 64
        do {
            let device: SwapSpace.DeviceConfiguration
            if staging == .automatic {
                device = .temporary(size: 4 << 20, directory: scratch.path)
            } else {
                let (_, backend) = try SwapFile.openTemporary(
                    bytes: 4 << 20, in: scratch.path, writeOut: false, discard: false, staging: .named)
                device = .backend(backend)
            }
            #expect(scratch.listing() == [], "the swap file has a name: \(scratch.listing())")
            let space = try SwapSpace(.init(memory: 8 * SwapPage.size, devices: [device]))
            let region = try space.makeRegion(bytes: pages * SwapPage.size)
            for page in 0..<pages {
                try region.withPage(page, for: .write) { $0.storeBytes(of: UInt64(page) &* 0x9e37, as: UInt64.self) }
            }
            #expect(space.statistics[.swapOuts] > 0, "nothing was swapped out")
            for page in 0..<pages {
                let value = try region.withPage(page, for: .read) { $0.load(as: UInt64.self) }
                #expect(value == UInt64(page) &* 0x9e37)
            }
            let open = Self.openFiles(in: scratch.path)
            #expect(!open.isEmpty && open.allSatisfy { $0.hasSuffix("(deleted)") }, "\(open)")
            #expect(scratch.listing() == [])
        }
        #expect(Self.openFiles(in: scratch.path).isEmpty, "the file is still open after the space went away")
        #expect(scratch.listing() == [])
    }

    @Test("the unnamed file is private and cannot be linked back into a folder")
    func privateAndUnlinkable() throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let (header, backend) = try SwapFile.openTemporary(bytes: 4 << 20, in: scratch.path)
        #expect(header.pageCount == 1024 && backend.pageCount == 1024)
        let status = try Syscalls.fstat(backend.descriptor.rawValue)
        #expect(status.st_mode & 0o777 == 0o600 && status.st_uid == geteuid() && status.st_nlink == 0)
        #expect(throws: Errno.self) { try Syscalls.linkOpenFile(backend.descriptor.rawValue, to: scratch.file("back")) }
        #expect(scratch.listing() == [])
    }

    @Test("a folder that does not exist is refused by code, saying what to do")
    func missingFolder() throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        for staging in [SwapFile.Staging.automatic, .named] {
            let error = try #require(throws: SwapError.self) {
                try SwapFile.openTemporary(bytes: 4 << 20, in: scratch.file("none"), writeOut: false, discard: false, staging: staging)
            }
            #expect(error.code == .noSuchFile && error.message.contains("create it first"), "\(error)")
        }
        let small = try #require(throws: SwapError.self) { try SwapFile.openTemporary(bytes: 64 << 10, in: scratch.path) }
        #expect(
            small.code == .tooSmall && small.message.contains("2101248 bytes or more")
                && small.message(for: .commandLine).contains("--size 2052K"), "\(small)")
        #expect(scratch.listing() == [])
    }

    @Test("without a folder, the temporary folder is $TMPDIR")
    func defaultFolder() {
        #expect(SwapFile.temporaryDirectory == (ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"))
    }
}
