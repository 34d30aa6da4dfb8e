import Foundation
import Glibc
import Testing

@testable import UserSwap

@Suite("Swap files: format, open, inspect")
struct SwapFileTests {
    @Test("format makes a fully allocated, private swap file that opens with the same header")
    func formatThenOpen() throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let path = scratch.file("swap")
        let made = try SwapFile.format(path: path, bytes: (8 << 20) + 100, label: "test-label")
        #expect(made.pageCount == 2048, "the size is rounded down to whole pages")
        #expect(made.label == "test-label")
        #expect(scratch.listing() == ["swap"], "no temporary file is left behind")

        let status = try DeviceTestSupport.status(path)
        #expect(status.st_size == 8 << 20)
        #expect(status.st_mode & 0o777 == 0o600)
        #expect(Int64(status.st_blocks) * 512 >= 8 << 20, "allocated up front")

        let (header, backend) = try SwapFile.open(path: path)
        #expect(header == made)
        #expect(backend.pageCount == 2048)

        let report = try SwapFile.inspect(path: path)
        #expect(report.pageCount == 2048 && report.usablePages == 2047 && report.clusters == 4)
        #expect(report.bytes == 8 << 20 && !report.hasHoles && !report.inUseByKernel)
        #expect(report.uuid == made.uuidString && report.label == "test-label" && report.badPages.isEmpty)
        #expect(report.version == 1 && report.pageSize == 4096)
        let text = report.text()
        #expect(text.contains("swap file  \(path)"), "\(text)")
        #expect(text.contains("8 MiB: 2048 pages in 4 clusters"), "\(text)")
        #expect(text.contains(made.uuidString) && text.contains("no holes"), "\(text)")
        let json = String(decoding: try JSONEncoder().encode(report), as: UTF8.self)
        #expect(json.contains("\"usablePages\":2047") && json.contains("\"hasHoles\":false"), "\(json)")
    }

    @Test("format with writeOut writes every block: past the header the file is data, zeros, and opens as before")
    func formatWrittenOut() throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let path = scratch.file("swap")
        let made = try SwapFile.format(path: path, bytes: 8 << 20, writeOut: true)
        let (header, backend) = try SwapFile.open(path: path)
        #expect(header == made && backend.pageCount == 2048)
        let fd = Glibc.open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { Glibc.close(fd) }
        // Written blocks are data to SEEK_DATA everywhere; ext4 and xfs report the unwritten
        // extents `fallocate` alone leaves as holes (not asserted: tmpfs and others differ).
        let seekData: Int32 = 3  // SEEK_DATA (Linux); Glibc's module leaves out the _GNU_SOURCE names.
        for offset in [4096, 4 << 20, (8 << 20) - 4096] {
            #expect(lseek(fd, off_t(offset), seekData) == off_t(offset), "offset \(offset) is not data")
        }
        var page = [UInt8](repeating: 1, count: 4096)
        #expect(pread(fd, &page, 4096, off_t(4 << 20)) == 4096 && page.allSatisfy { $0 == 0 })
        #expect(scratch.listing() == ["swap"])
    }

    @Test("format --force replaces an existing file; without it the file is left alone")
    func force() throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let path = scratch.file("swap")
        let old = Array("precious data".utf8)
        try DeviceTestSupport.write(old, to: path)

        let error = try #require(throws: SwapError.self) { try SwapFile.format(path: path, bytes: 4 << 20) }
        #expect(error.code == .fileExists)
        #expect(error.message.contains("`force: true`") && !error.message.contains("--force"))
        #expect(error.message(for: .commandLine).contains("pass --force"))
        #expect(DeviceTestSupport.contents(path) == old)
        #expect(scratch.listing() == ["swap"])

        try SwapFile.format(path: path, bytes: 4 << 20, force: true)
        #expect(try SwapFile.inspect(path: path).pageCount == 1024)
        #expect(scratch.listing() == ["swap"])
    }

    struct BadInput: Sendable, CustomTestStringConvertible {
        let name: String
        let code: SwapError.Code
        /// The path to format, relative to the scratch directory ("" is the directory itself).
        let target: String
        let bytes: Int64
        var label = ""
        var force = false
        var testDescription: String { name }
    }

    @Test(
        "bad input fails with its code and changes nothing on disk",
        arguments: [
            BadInput(name: "too small", code: .tooSmall, target: "swap", bytes: 12 << 10),
            BadInput(name: "one page short of a cluster", code: .tooSmall, target: "swap", bytes: 512 * 4096 + 4095),
            BadInput(name: "negative size", code: .tooSmall, target: "swap", bytes: -1),
            BadInput(name: "label over 16 bytes", code: .invalidArgument, target: "swap", bytes: 4 << 20, label: "seventeen-bytes!!"),
            BadInput(name: "path is a directory", code: .isDirectory, target: "", bytes: 4 << 20, force: true),
            BadInput(name: "path is a subdirectory", code: .isDirectory, target: "sub", bytes: 4 << 20, force: true),
            BadInput(name: "file exists", code: .fileExists, target: "existing", bytes: 4 << 20),
            BadInput(name: "directory missing", code: .noSuchFile, target: "missing/swap", bytes: 4 << 20),
            BadInput(name: "over 16 TiB", code: .invalidArgument, target: "swap", bytes: 1 << 45),
        ])
    func badInput(_ input: BadInput) throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        try FileManager.default.createDirectory(atPath: scratch.file("sub"), withIntermediateDirectories: false)
        let existing = DeviceTestSupport.pattern(page: 1)
        try DeviceTestSupport.write(existing, to: scratch.file("existing"))
        let listing = scratch.listing()

        let path = input.target.isEmpty ? scratch.path : scratch.file(input.target)
        let error = try #require(throws: SwapError.self) {
            try SwapFile.format(path: path, bytes: input.bytes, label: input.label, force: input.force)
        }
        #expect(error.code == input.code, "\(error)")
        #expect(!error.message.isEmpty)
        #expect(scratch.listing() == listing)
        #expect(DeviceTestSupport.contents(scratch.file("existing")) == existing)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: scratch.file("sub"))) ?? ["?"]).isEmpty)
    }

    @Test("the too-small message says how much is needed")
    func tooSmallMessage() throws {
        let error = try #require(throws: SwapError.self) { try SwapFile.format(path: "/x", bytes: 12 << 10) }
        #expect(
            error.message
                == "swap file /x would be 12 KiB; it needs at least one cluster (2 MiB) after the header; ask for 2101248 bytes or more")
        #expect(
            error.message(for: .commandLine)
                == "swap file /x would be 12 KiB; it needs at least one cluster (2 MiB) after the header; use --size 2052K or more")
    }

    @Test("format --force will not replace a file another UserSwap device holds")
    func forceWhileOpen() throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let path = scratch.file("swap")
        try SwapFile.format(path: path, bytes: 4 << 20)
        let before = DeviceTestSupport.contents(path)
        let (_, backend) = try SwapFile.open(path: path)
        let error = try #require(throws: SwapError.self) { try SwapFile.format(path: path, bytes: 4 << 20, force: true) }
        #expect(error.code == .fileInUse)
        #expect(DeviceTestSupport.contents(path) == before)
        #expect(scratch.listing() == ["swap"])
        _ = backend
    }

    @Test("open reports missing files, directories, non-swap and truncated files by code")
    func openErrors() throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        #expect(throws: SwapError(.noSuchFile, "", errno: .noSuchFile)) { try SwapFile.open(path: scratch.file("none")) }
        let directory = try #require(throws: SwapError.self) { try SwapFile.open(path: scratch.path) }
        #expect(directory.code == .isDirectory)

        try DeviceTestSupport.write([], to: scratch.file("empty"))
        #expect(throws: SwapError(.notASwapFile, "")) { try SwapFile.open(path: scratch.file("empty")) }
        try DeviceTestSupport.write((0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 13) }, to: scratch.file("noise"))
        #expect(throws: SwapError(.notASwapFile, "")) { try SwapFile.open(path: scratch.file("noise")) }
        #expect(throws: SwapError(.notASwapFile, "")) { try SwapFile.inspect(path: scratch.file("noise")) }

        try SwapFile.format(path: scratch.file("cut"), bytes: 4 << 20)
        #expect(truncate(scratch.file("cut"), 3 << 20) == 0)
        let cut = try #require(throws: SwapError.self) { try SwapFile.open(path: scratch.file("cut")) }
        #expect(cut.code == .tooSmall)
        #expect(cut.message.contains("truncated"))

        #expect(mkfifo(scratch.file("fifo"), 0o600) == 0)
        #expect(throws: SwapError(.invalidArgument, "")) { try SwapFile.open(path: scratch.file("fifo")) }
    }

    @Test(
        "a file made by util-linux mkswap opens with its UUID, label and size",
        .enabled(if: DeviceTestSupport.isExecutable("/usr/sbin/mkswap"), "mkswap (util-linux) is not installed"))
    func acceptsMkswap() throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let path = scratch.file("made-by-mkswap")
        try DeviceTestSupport.write([UInt8](repeating: 0, count: 8 << 20), to: path)
        let uuid = "0e1d2c3b-4a59-4687-a5b4-c3d2e1f00f1e"
        let made = try DeviceTestSupport.run("/usr/sbin/mkswap", ["-L", "lbl", "-U", uuid, path])
        try #require(made.status == 0, "mkswap failed: \(made.output)")

        let (header, backend) = try SwapFile.open(path: path)
        #expect(header.uuidString == uuid)
        #expect(header.label == "lbl")
        #expect(header.pageCount == 2048)
        #expect(header.badPages.isEmpty)
        #expect(backend.pageCount == 2048)
        try DeviceTestSupport.pattern(page: 9).withUnsafeBytes { try backend.write($0, atPage: 2047) }
    }

    @Test(
        "blkid recognises a file we format as swap with our UUID and label",
        .enabled(if: DeviceTestSupport.isExecutable("/usr/sbin/blkid"), "blkid (util-linux) is not installed"))
    func blkidReadsOurs() throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let path = scratch.file("swap")
        let header = try SwapFile.format(path: path, bytes: 4 << 20, label: "ours")
        let probe = try DeviceTestSupport.run("/usr/sbin/blkid", ["-p", "-o", "export", path])
        try #require(probe.status == 0, "blkid failed: \(probe.output)")
        #expect(probe.output.contains("TYPE=swap"), "\(probe.output)")
        #expect(probe.output.contains("UUID=\(header.uuidString)"), "\(probe.output)")
        #expect(probe.output.contains("LABEL=ours"), "\(probe.output)")
    }
}

/// Tests that need the kernel's swapon or a mount: root only, one at a time, and always undone.
@Suite("Swap files and the kernel", .serialized)
struct SwapFileKernelTests {
    /// Mounts a tmpfs with `options` on a new directory inside `scratch`; returns its path.
    /// Cancels the test (a skip, with the reason) where mounting is not permitted.
    private func mountTmpfs(in scratch: DeviceScratchDirectory, options: String) throws -> String {
        guard DeviceTestSupport.isRoot else { try Test.cancel("mounting a tmpfs needs root") }
        let point = scratch.file("mnt")
        try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: false)
        let result = try DeviceTestSupport.run("/usr/bin/mount", ["-t", "tmpfs", "-o", options, "tmpfs", point])
        guard result.status == 0 else { try Test.cancel("cannot mount a tmpfs here: \(result.output)") }
        return point
    }

    private func unmount(_ point: String) {
        let result = try? DeviceTestSupport.run("/usr/bin/umount", [point])
        #expect(result?.status == 0, "umount \(point): \(result?.output ?? "did not run")")
    }

    /// Whether swapon accepts a file `mkswap` makes in `scratch` (turned off again at once).
    private func swaponAccepts(mkswapFileIn scratch: DeviceScratchDirectory) throws -> Bool {
        guard DeviceTestSupport.isExecutable("/usr/sbin/mkswap") else { return false }
        let reference = scratch.file("reference")
        try DeviceTestSupport.write([UInt8](repeating: 0, count: 4 << 20), to: reference)
        guard try DeviceTestSupport.run("/usr/sbin/mkswap", [reference]).status == 0,
            try DeviceTestSupport.run("/usr/sbin/swapon", [reference]).status == 0
        else { return false }
        try DeviceTestSupport.run("/usr/sbin/swapoff", [reference])
        return true
    }

    /// Turns off swap files left on by an earlier run of these tests that crashed before its
    /// swapoff (their directory names carry the pid of a process that is gone).
    private func removeLeftoverSwap() {
        for path in SwapFile.kernelSwapPaths() where path.contains("/userswap-device-") {
            let parts = path.split(separator: "/").first { $0.hasPrefix("userswap-device-") }?.split(separator: "-")
            guard let pid = parts.flatMap({ $0.count > 2 ? Int32($0[2]) : nil }),
                kill(pid, 0) != 0, errno == ESRCH
            else { continue }
            _ = try? DeviceTestSupport.run("/usr/sbin/swapoff", [path])
            try? FileManager.default.removeItem(atPath: String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]))
        }
    }

    @Test("the kernel's swapon accepts a file we format, and while it swaps to it we keep off")
    func swapon() throws {
        guard DeviceTestSupport.isRoot else { try Test.cancel("swapon needs root") }
        guard DeviceTestSupport.isExecutable("/usr/sbin/swapon") else { try Test.cancel("swapon (util-linux) is not installed") }
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let path = scratch.file("swap")
        let header = try SwapFile.format(path: path, bytes: 16 << 20, label: "kernel-test")

        removeLeftoverSwap()
        let on = try DeviceTestSupport.run("/usr/sbin/swapon", [path])
        if on.status != 0 {
            // EPERM or EINVAL may be the sandbox or the file system rather than our header: if
            // swapon refuses a file mkswap made in the same place too, skip; otherwise it is us.
            if try !swaponAccepts(mkswapFileIn: scratch) {
                try Test.cancel("swapon does not work here (a sandbox, or a file system without swap support): \(on.output)")
            }
            Issue.record("swapon rejected a file we formatted but accepts one from mkswap: \(on.output)")
            return
        }
        defer {
            let off = try? DeviceTestSupport.run("/usr/sbin/swapoff", [path])
            #expect(off?.status == 0, "swapoff: \(off?.output ?? "did not run")")
        }
        #expect(SwapFile.kernelSwapPaths().contains(path), "\(SwapFile.kernelSwapPaths())")

        let before = DeviceTestSupport.contents(path)
        let opened = try #require(throws: SwapError.self) { try SwapFile.open(path: path) }
        #expect(opened.code == .fileInUse)
        #expect(opened.message.contains("swapoff"))
        let formatted = try #require(throws: SwapError.self) { try SwapFile.format(path: path, bytes: 4 << 20, force: true) }
        #expect(formatted.code == .fileInUse)
        #expect(scratch.listing() == ["swap"])
        let report = try SwapFile.inspect(path: path)
        #expect(report.inUseByKernel)
        #expect(report.text().contains("by the kernel"))

        // The failed format left the file alone (its data pages are the kernel's to change now).
        let now = DeviceTestSupport.contents(path)
        #expect(now?.count == before?.count)
        #expect(now?.prefix(4096) == before?.prefix(4096))
        #expect(report.uuid == header.uuidString && report.label == "kernel-test")
    }

    @Test("formatting into a full file system fails as disk-full and leaves the directory empty")
    func diskFull() throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let point = try mountTmpfs(in: scratch, options: "size=4m")
        defer { unmount(point) }
        let error = try #require(throws: SwapError.self) {
            try SwapFile.format(path: point + "/swap", bytes: 64 << 20)
        }
        #expect(error.code == .diskFull)
        #expect(error.message.contains("64 MiB") && error.message.contains("make the swap file smaller"), "\(error.message)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: point).isEmpty)
        // A size that fits still works there.
        try SwapFile.format(path: point + "/swap", bytes: 3 << 20)
        #expect(try FileManager.default.contentsOfDirectory(atPath: point) == ["swap"])
    }

    @Test("formatting into a directory we cannot write is permission-denied and changes nothing")
    func readOnlyDirectory() throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let point = try mountTmpfs(in: scratch, options: "ro,size=4m")
        defer { unmount(point) }
        let error = try #require(throws: SwapError.self) {
            try SwapFile.format(path: point + "/swap", bytes: 4 << 20)
        }
        #expect(error.code == .permissionDenied)
        #expect(error.message.contains(point), "\(error.message)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: point).isEmpty)
    }
}
