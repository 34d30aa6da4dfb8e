import Foundation
import UserSwap

/// What the process holds in RAM, from /proc/self/status: the `peak_resident_bytes` of a report
/// is measured here, never taken from the configuration.
public enum ResidentMemory {
    /// The high-water mark of the resident set (`VmHWM`) in bytes; 0 if it cannot be read.
    public static func peakBytes() -> Int64 {
        (readStatus().flatMap { ProcFiles.field("VmHWM", inText: $0) }.flatMap(ProcFiles.kilobytes(fromValue:)) ?? 0) * 1024
    }

    /// The resident set now (`VmRSS`) in bytes; 0 if it cannot be read.
    public static func currentBytes() -> Int64 {
        (readStatus().flatMap { ProcFiles.field("VmRSS", inText: $0) }.flatMap(ProcFiles.kilobytes(fromValue:)) ?? 0) * 1024
    }

    /// Resets the high-water mark to the current resident set (writing 5 to
    /// /proc/self/clear_refs, Linux 4.0+), so that the next `peakBytes()` describes only what
    /// ran since. The bench command does this before each run of a scenario. Returns whether it
    /// worked; when it did not, `peakBytes()` covers the whole process.
    @discardableResult
    public static func resetPeak() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        do {
            try handle.write(contentsOf: Data("5".utf8))
            return true
        } catch {
            return false
        }
    }

    private static func readStatus() -> String? {
        ProcFile.text("/proc/self/status")
    }
}
