import Foundation
import Glibc
import UserSwap

/// A fresh private folder (mkdtemp: mode 0700, a name nobody can guess or take first) under
/// the temporary folder (`$TMPDIR`, else /tmp) or under `parent`, removed when the body returns
/// or throws, and by `TerminationSignals` if SIGINT, SIGTERM or SIGHUP ends the process first.
public enum ScratchDirectory {
    public static func with<T>(
        prefix: String, in parent: String? = nil, _ body: (_ path: String) throws -> T
    ) throws -> T {
        let base = parent ?? SwapFile.temporaryDirectory
        var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil }
        guard made else {
            let reason = String(cString: strerror(errno))
            throw SwapError(
                .permissionDenied, "cannot make a private folder in \(base): \(reason); give a folder you can write (--dir, or TMPDIR)")
        }
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try TerminationSignals.withCleanup({ try? FileManager.default.removeItem(atPath: path) }) {
            try body(path)
        }
    }
}
