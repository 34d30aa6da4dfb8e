import Foundation
import Glibc
import Testing

@testable import UserSwap

/// A fresh directory under the system's temporary directory, removed (with everything in it)
/// when the value goes away.
final class DeviceScratchDirectory {
    let path: String

    init(_ purpose: String = #function) throws {
        let name = "userswap-device-\(getpid())-\(UUID().uuidString.prefix(8))"
        path = FileManager.default.temporaryDirectory.appendingPathComponent(name).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// The path of `name` inside the directory.
    func file(_ name: String) -> String { path + "/" + name }

    /// The names in the directory, hidden ones included, sorted.
    func listing() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }
}

enum DeviceTestSupport {
    static var isRoot: Bool { geteuid() == 0 }

    /// The bytes of the file at `path`, or nil if it cannot be read.
    static func contents(_ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path).map { [UInt8]($0) }
    }

    /// Writes `bytes` to a new file at `path`, mode 0600 (`mode`): a swap file must be private
    /// to be opened at all.
    static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        guard chmod(path, mode) == 0 else { throw Errno(rawValue: errno) }
    }

    /// stat(2) of `path`, following links.
    static func status(_ path: String) throws -> stat {
        var st = stat()
        guard fstatat(AT_FDCWD, path, &st, 0) == 0 else { throw Errno(rawValue: errno) }
        return st
    }

    /// Runs `executable` with `arguments`; returns its exit status and what it wrote to
    /// stdout and stderr.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func isExecutable(_ path: String) -> Bool {
        FileManager.default.isExecutableFile(atPath: path)
    }

    /// A page of recognisable bytes for page `index` and `seed`: every byte differs between
    /// neighbouring pages, so a misplaced page cannot compare equal.
    static func pattern(page index: Int, seed: UInt8 = 0) -> [UInt8] {
        (0..<SwapPage.size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index &* 131 &+ Int(seed)) }
    }
}
