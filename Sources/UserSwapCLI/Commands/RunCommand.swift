import Foundation
import UserSwap

/// `userswap run`: until the real workload lands, a demonstration that the format and inspect
/// paths work on this machine: a 64 MiB swap file in a fresh temporary folder, its report, and
/// the folder removed again (also when something fails).
enum RunCommand {
    static let demoBytes: Int64 = 64 << 20

    static func run(console: Console) throws {
        try ScratchDirectory.with(prefix: "userswap-run") { folder in
            let path = folder + "/swap0"
            console.line("formatting a \(ByteSize.format(demoBytes)) swap file at \(path)")
            _ = try SwapFile.format(path: path, bytes: demoBytes, label: "userswap-run")
            console.line(try SwapFile.inspect(path: path).text())
        }
    }
}

/// A fresh folder under the system's temporary directory (or under `parent`), removed when the
/// body returns or throws.
public enum ScratchDirectory {
    public static func with<T>(
        prefix: String, in parent: String? = nil, _ body: (_ path: String) throws -> T
    ) throws -> T {
        let base = parent ?? FileManager.default.temporaryDirectory.path
        let path = "\(base)/\(prefix)-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try body(path)
    }
}
