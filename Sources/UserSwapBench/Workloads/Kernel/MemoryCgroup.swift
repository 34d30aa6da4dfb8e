import Foundation
import UserSwap

/// The memory cgroup a process runs in, v1 or v2: what limits the RAM of a `--mode kernel`
/// run, and where the kernel counts its swap traffic, its peak and its usage.
///
/// `bench/kernel-compare` makes the cgroup (v1: `memory.limit_in_bytes`, swap not limited; v2:
/// `memory.max`, `memory.swap.max = max`) and starts the benchmark inside it; the benchmark only
/// reads it. Parsing is pure (`locate`, `limit`, `stat`), so tests need no cgroup.
public struct MemoryCgroup: Sendable, Equatable {
    public enum Version: Int, Sendable, Equatable {
        case v1 = 1
        case v2 = 2
    }

    public let version: Version
    /// Its path in the hierarchy, from /proc/self/cgroup: `/userswap-compare-123`.
    public let path: String
    /// Its folder: the hierarchy's mount point followed by `path`.
    public let directory: String

    public init(version: Version, path: String, directory: String) {
        self.version = version
        self.path = path
        self.directory = directory
    }

    /// The cgroups that may hold this process's memory controller, from the text of
    /// /proc/self/cgroup and /proc/mounts: the v1 hierarchy with the `memory` controller first,
    /// then the v2 (unified) one. On a hybrid machine the v2 hierarchy exists without the memory
    /// controller; `current()` keeps the first candidate whose limit file exists.
    public static func candidates(procSelfCgroup: String, mounts: String) -> [MemoryCgroup] {
        var v1Mount: String?
        var v2Mount: String?
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 4 else { continue }
            let mountPoint = String(fields[1]).replacingOccurrences(of: "\\040", with: " ")
            if fields[2] == "cgroup", fields[3].split(separator: ",").contains("memory"), v1Mount == nil {
                v1Mount = mountPoint
            } else if fields[2] == "cgroup2", v2Mount == nil {
                v2Mount = mountPoint
            }
        }
        var v1: MemoryCgroup?
        var v2: MemoryCgroup?
        for line in procSelfCgroup.split(separator: "\n") {
            // hierarchy-ID:controller-list:path; the path may itself hold colons.
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let path = String(parts[2])
            if parts[0] == "0" && parts[1].isEmpty {
                if let v2Mount { v2 = MemoryCgroup(version: .v2, path: path, directory: join(v2Mount, path)) }
            } else if parts[1].split(separator: ",").contains("memory"), let v1Mount {
                v1 = MemoryCgroup(version: .v1, path: path, directory: join(v1Mount, path))
            }
        }
        return [v1, v2].compactMap { $0 }
    }

    /// The memory cgroup of this process, or nil when there is none with a memory controller.
    public static func current() -> MemoryCgroup? {
        guard let cgroups = ProcFile.text("/proc/self/cgroup"),
            let mounts = ProcFile.text("/proc/mounts")
        else { return nil }
        return candidates(procSelfCgroup: cgroups, mounts: mounts).first { cgroup in
            FileManager.default.fileExists(atPath: cgroup.directory + "/" + cgroup.files.limit)
        }
    }

    /// The names of the files this version keeps its numbers in.
    public var files: (limit: String, usage: String, peak: String) {
        switch version {
        case .v1: ("memory.limit_in_bytes", "memory.usage_in_bytes", "memory.max_usage_in_bytes")
        case .v2: ("memory.max", "memory.current", "memory.peak")
        }
    }

    /// The RAM limit in bytes; nil when unlimited or unreadable.
    public var limitBytes: Int64? { read(files.limit).flatMap(Self.limit) }

    /// The memory charged to the cgroup now (anonymous memory, page cache, kernel memory).
    public var usageBytes: Int64? { read(files.usage).flatMap(Self.limit) }

    /// The most ever charged to it (v2: `memory.peak`, Linux 5.19+).
    public var peakBytes: Int64? { read(files.peak).flatMap(Self.limit) }

    /// How much swap the cgroup may use; nil when not limited. v1 limits memory plus swap
    /// together (`memory.memsw.limit_in_bytes`): the swap left is that minus the RAM limit.
    public var swapLimitBytes: Int64? {
        switch version {
        case .v1:
            guard let both = read("memory.memsw.limit_in_bytes").flatMap(Self.limit) else { return nil }
            return both - (limitBytes ?? 0)
        case .v2:
            return read("memory.swap.max").flatMap(Self.limit)
        }
    }

    /// `memory.stat` as numbers.
    public func stat() -> [String: Int64] {
        read("memory.stat").map(Self.stat) ?? [:]
    }

    /// `memory.swappiness` (v1 only; v2 follows the global `vm.swappiness`).
    public var swappiness: Int? {
        version == .v1 ? read("memory.swappiness").flatMap { Int($0.trimmingWhitespace()) } : nil
    }

    private func read(_ file: String) -> String? {
        ProcFile.text(directory + "/" + file)
    }

    /// A limit file's value: a number of bytes, or nil for "max" (v2) or the huge page-rounded
    /// `LONG_MAX` a v1 cgroup reports when unlimited.
    public static func limit(_ text: String) -> Int64? {
        let trimmed = text.trimmingWhitespace()
        guard trimmed != "max", let value = Int64(trimmed), value < 1 << 62 else { return nil }
        return value
    }

    /// `key value` lines (memory.stat, /proc/vmstat) as a dictionary.
    public static func stat(_ text: String) -> [String: Int64] {
        var values: [String: Int64] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, let value = Int64(fields[1]) { values[String(fields[0])] = value }
        }
        return values
    }

    private static func join(_ mount: String, _ path: String) -> String {
        path == "/" ? mount : mount + path
    }
}
