import Foundation

/// Whole files under /proc and /sys. Their size reads as 0, and Foundation's
/// `String(contentsOfFile:)` then keeps only what its first read returns: one 4 KiB page of a
/// seq_file such as /proc/net/unix or /proc/vmstat, so lines past it would be silently missing.
package enum ProcFile {
    /// The file's text, read to its end; nil if it cannot be opened or read.
    package static func text(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        do {
            return String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
        } catch {
            return nil
        }
    }
}
