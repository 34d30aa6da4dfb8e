import Foundation
import Glibc
import UserSwap

/// The machine a report was measured on: the `machine` object of the JSON contract (`cores`,
/// `memory_bytes`, `kernel`, `date`), plus the CPU model and the disk under the results folder
/// when they can be read.
///
/// A few direct libc calls (`sysconf`, `uname`) live here rather than in the engine's
/// `Syscalls`: they cannot fail in a way the engine handles, and the engine's wrappers are
/// internal to it.
public struct MachineInfo: Sendable, Equatable, Encodable {
    /// Online CPUs (`sysconf(_SC_NPROCESSORS_ONLN)`).
    public var cores: Int
    /// `MemTotal` from /proc/meminfo.
    public var memoryBytes: Int64
    /// The kernel release (`uname -r`).
    public var kernel: String
    /// When the report was made, ISO-8601 in UTC: `2026-11-27T02:00:00Z`.
    public var date: String
    /// `model name` from /proc/cpuinfo.
    public var cpu: String?
    /// The file system holding the results (and usually the swap files).
    public var disk: DiskInfo?

    public init(cores: Int, memoryBytes: Int64, kernel: String, date: String, cpu: String? = nil, disk: DiskInfo? = nil) {
        self.cores = cores
        self.memoryBytes = memoryBytes
        self.kernel = kernel
        self.date = date
        self.cpu = cpu
        self.disk = disk
    }

    enum CodingKeys: String, CodingKey {
        case cores, kernel, date, cpu, disk
        case memoryBytes = "memory_bytes"
    }

    /// Reads this machine now. `directory`: whose file system to describe (default: the working
    /// directory).
    public static func current(directory: String? = nil, now: Date = Date()) -> MachineInfo {
        MachineInfo(
            cores: max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))),
            memoryBytes: (ProcFiles.kilobytes("MemTotal", in: "/proc/meminfo") ?? 0) * 1024,
            kernel: kernelRelease(),
            date: isoDate(now),
            cpu: ProcFiles.field("model name", in: "/proc/cpuinfo"),
            disk: DiskInfo.holding(directory ?? FileManager.default.currentDirectoryPath)
        )
    }

    /// `uname -r`.
    static func kernelRelease() -> String {
        var names = utsname()
        guard uname(&names) == 0 else { return "unknown" }
        return withUnsafeBytes(of: &names.release) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    /// ISO-8601, UTC, whole seconds: `2026-11-27T02:00:00Z`.
    public static func isoDate(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}

/// The mounted file system that holds a folder, from /proc/mounts.
public struct DiskInfo: Sendable, Equatable, Encodable {
    /// `/dev/nvme0n1p1`, `overlay`, `tmpfs`.
    public var device: String
    public var mountPoint: String
    /// `ext4`, `xfs`, `tmpfs`.
    public var fileSystem: String

    enum CodingKeys: String, CodingKey {
        case device
        case mountPoint = "mount_point"
        case fileSystem = "file_system"
    }

    /// The mount with the longest mount point that is a prefix of `path` (resolved through
    /// symbolic links; a folder that does not exist yet is looked up by its nearest existing
    /// parent). `nil` when /proc/mounts cannot be read.
    public static func holding(_ path: String) -> DiskInfo? {
        guard let mounts = ProcFile.text("/proc/mounts") else { return nil }
        var url = URL(fileURLWithPath: path).standardizedFileURL
        while !FileManager.default.fileExists(atPath: url.path), url.path != "/" {
            url.deleteLastPathComponent()
        }
        let resolved = url.resolvingSymlinksInPath().path
        var best: DiskInfo?
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3 else { continue }
            // /proc/mounts escapes spaces and tabs in paths as octal (\040).
            let mountPoint = String(fields[1]).replacingOccurrences(of: "\\040", with: " ")
                .replacingOccurrences(of: "\\011", with: "\t")
            let inside = mountPoint == "/" || resolved == mountPoint || resolved.hasPrefix(mountPoint + "/")
            // Later lines shadow earlier ones at the same mount point: `>=`.
            if inside, mountPoint.count >= (best?.mountPoint.count ?? -1) {
                best = DiskInfo(device: String(fields[0]), mountPoint: mountPoint, fileSystem: String(fields[2]))
            }
        }
        return best
    }
}

/// Reading `key: value` files under /proc.
enum ProcFiles {
    /// The text after `key:` on the first line that starts with it, trimmed.
    static func field(_ key: String, in path: String) -> String? {
        guard let text = ProcFile.text(path) else { return nil }
        return field(key, inText: text)
    }

    static func field(_ key: String, inText text: String) -> String? {
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            let rest = line.dropFirst(key.count).drop(while: { $0 == " " || $0 == "\t" })
            guard rest.first == ":" else { continue }
            return rest.dropFirst().trimmingWhitespace()
        }
        return nil
    }

    /// A `Key:   1234 kB` field as a number of kilobytes.
    static func kilobytes(_ key: String, in path: String) -> Int64? {
        field(key, in: path).flatMap { kilobytes(fromValue: $0) }
    }

    static func kilobytes(fromValue value: String) -> Int64? {
        value.split(separator: " ").first.flatMap { Int64($0) }
    }
}
