import Foundation
import Glibc
import Synchronization
import Testing

@testable import UserSwap

/// `format` never replaces a file by surprise and never leaves its temporary file behind: the
/// new file is unnamed until it takes its name (O_TMPFILE) or, staged under a hidden name,
/// takes it with RENAME_NOREPLACE.
@Suite("Swap files: format replaces only with force, atomically", .serialized)
struct SwapFileFormatTests {
    /// Runs `body` with `hook` installed between the new file's completion and its naming.
    static func withBeforeInstall<T>(_ hook: @escaping @Sendable (String) -> Void, _ body: () throws -> T) rethrows -> T {
        SwapFile.beforeInstall.withLock { $0 = hook }
        defer { SwapFile.beforeInstall.withLock { $0 = nil } }
        return try body()
    }

    /// The names in `directory`, sorted.
    static func listing(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    @Test(
        "without force, a file that appears after the check survives, and nothing else is left",
        arguments: [SwapFile.Staging.automatic, .named])
    func raceWithoutForce(staging: SwapFile.Staging) throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let path = scratch.file("swap")
        let theirs = Array("someone else's file, created after the check".utf8)
        let error = try Self.withBeforeInstall({ target in
            guard target == path else { return }
            try? DeviceTestSupport.write(theirs, to: path)
        }) {
            try #require(throws: SwapError.self) {
                try SwapFile.format(path: path, bytes: 4 << 20, label: "", force: false, writeOut: false, staging: staging)
            }
        }
        #expect(error.code == .fileExists, "\(error)")
        #expect(
            error.message.contains("left as it is") && error.message.contains("force: true")
                && error.message(for: .commandLine).contains("--force"), "\(error)")
        #expect(DeviceTestSupport.contents(path) == theirs, "the file that appeared was replaced")
        #expect(scratch.listing() == ["swap"], "a temporary file was left behind")
        #expect(StagedSwapFile.registered.isEmpty)
    }

    @Test(
        "with force, a file that appears after the check is replaced in one step by a whole swap file",
        arguments: [SwapFile.Staging.automatic, .named])
    func raceWithForce(staging: SwapFile.Staging) throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let path = scratch.file("swap")
        let header = try Self.withBeforeInstall({ target in
            guard target == path else { return }
            try? DeviceTestSupport.write([1, 2, 3], to: path)
        }) {
            try SwapFile.format(path: path, bytes: 4 << 20, label: "new", force: true, writeOut: false, staging: staging)
        }
        #expect(try SwapFile.inspect(path: path).uuid == header.uuidString)
        #expect(try DeviceTestSupport.status(path).st_mode & 0o777 == 0o600)
        #expect(scratch.listing() == ["swap"])
        #expect(StagedSwapFile.registered.isEmpty)
    }

    @Test("the new file has no name while it is written where the file system allows O_TMPFILE")
    func unnamedWhileWritten() throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let probe = open(scratch.path, O_RDWR | Syscalls.temporaryFileFlag, 0o600)
        try #require(probe >= 0, "this file system has no O_TMPFILE (errno \(errno)): the named staging applies, tested apart")
        close(probe)
        let path = scratch.file("swap")
        let seen = Locked<[String]?>(nil)
        let directory = scratch.path
        _ = try Self.withBeforeInstall({ target in
            guard target == path else { return }
            seen.set(Self.listing(directory))
        }) {
            try SwapFile.format(path: path, bytes: 4 << 20)
        }
        #expect(seen.get() == [], "a name existed while the file was written: \(seen.get() ?? [])")
        #expect(scratch.listing() == ["swap"])
    }

    @Test("a named temporary file is registered while it exists, and removeStagedFiles removes it")
    func namedStagingIsRemovable() throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let path = scratch.file("swap")
        let seen = Locked<(listing: [String], registered: Set<String>, removed: Int)?>(nil)
        let directory = scratch.path
        let error = try Self.withBeforeInstall({ target in
            guard target == path else { return }
            let listing = Self.listing(directory)
            let registered = StagedSwapFile.registered
            // What the CLI's signal watcher does on SIGINT, SIGTERM or SIGHUP.
            seen.set((listing, registered, SwapFile.removeStagedFiles()))
        }) {
            try #require(throws: SwapError.self) {
                try SwapFile.format(path: path, bytes: 4 << 20, label: "", force: false, writeOut: false, staging: .named)
            }
        }
        let state = try #require(seen.get())
        #expect(state.listing.count == 1 && state.listing[0].hasPrefix(".swap.userswap-"), "\(state.listing)")
        #expect(state.registered == [scratch.file(state.listing[0])], "\(state.registered)")
        #expect(state.removed == 1)
        #expect(error.code == .noSuchFile, "\(error)")
        #expect(scratch.listing() == [], "the removed temporary file came back, or the target was made")
    }

    @Test("a symbolic link at the path is left alone without force, and with force the link is replaced, never its target")
    func symbolicLinkAtPath() throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        let target = scratch.file("target")
        let precious = Array("precious".utf8)
        try DeviceTestSupport.write(precious, to: target)
        let link = scratch.file("swap")
        #expect(symlink(target, link) == 0)
        let error = try #require(throws: SwapError.self) { try SwapFile.format(path: link, bytes: 4 << 20) }
        #expect(
            error.code == .fileExists && error.message.contains("symbolic link") && error.message.contains("force: true")
                && error.message(for: .commandLine).contains("--force"), "\(error)")
        #expect(DeviceTestSupport.contents(target) == precious)

        // A dangling link is still a name taken: refused too.
        let dangling = scratch.file("dangling")
        #expect(symlink(scratch.file("nowhere"), dangling) == 0)
        #expect(throws: SwapError(.fileExists, "")) { try SwapFile.format(path: dangling, bytes: 4 << 20) }
        #expect(!FileManager.default.fileExists(atPath: scratch.file("nowhere")))

        try SwapFile.format(path: link, bytes: 4 << 20, force: true)
        var st = stat()
        #expect(lstat(link, &st) == 0 && st.st_mode & S_IFMT == S_IFREG, "the link was not replaced by a file")
        #expect(DeviceTestSupport.contents(target) == precious, "the link's target was written")
        #expect(scratch.listing() == ["dangling", "swap", "target"])
    }

    @Test(
        "a failed format leaves nothing, staged named or not",
        arguments: [SwapFile.Staging.automatic, .named])
    func failureLeavesNothing(staging: SwapFile.Staging) throws {
        let scratch = try DeviceScratchDirectory()
        defer { withExtendedLifetime(scratch) {} }
        // 16 TiB of blocks do not fit: fallocate fails after the file exists.
        let error = try #require(throws: SwapError.self) {
            try SwapFile.format(
                path: scratch.file("swap"), bytes: (16 << 40) - 4096, label: "", force: false,
                writeOut: false, staging: staging)
        }
        #expect(error.code == .diskFull, "\(error)")
        #expect(scratch.listing() == [])
        #expect(StagedSwapFile.registered.isEmpty)
    }
}

/// A value a hook sets and the test reads.
final class Locked<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func set(_ newValue: Value) { value.withLock { $0 = newValue } }
    func get() -> Value { value.withLock { $0 } }
}
