import UserSwap

/// The process's memory as `top` and `ps` show it, from one read of /proc/self/status: the
/// resident set (`VmRSS`, top's RES) split as the kernel counts it into anonymous memory
/// (`RssAnon`), file pages (`RssFile`: the binary, its libraries) and shared memory
/// (`RssShmem`, top's SHR beside RssFile), and its high-water mark (`VmHWM`).
///
/// What a user sees is not the space's budget: the runtime, the harness, the engine's metadata
/// and the mapped binary are resident too, and a transparent region's frames live in shared
/// memory mapped twice (its window and the engine's view), which RSS counts once per mapping
/// that maps a page (the engine's view maps a page only while the engine uses it: see
/// docs/PERFORMANCE.md, "Memory a user sees"). Reports carry both this and the frames'
/// high-water mark, so the difference can be read.
public struct ProcessMemory: Sendable, Equatable {
    /// `VmHWM`: the most the resident set has been since the process started, or since
    /// `ResidentMemory.resetPeak()`.
    public var peakBytes: Int64
    /// `VmRSS`: resident now; `anonBytes + fileBytes + shmemBytes`.
    public var rssBytes: Int64
    /// `RssAnon`, `RssFile`, `RssShmem`.
    public var anonBytes: Int64
    public var fileBytes: Int64
    public var shmemBytes: Int64

    public init(peakBytes: Int64, rssBytes: Int64, anonBytes: Int64, fileBytes: Int64, shmemBytes: Int64) {
        self.peakBytes = peakBytes
        self.rssBytes = rssBytes
        self.anonBytes = anonBytes
        self.fileBytes = fileBytes
        self.shmemBytes = shmemBytes
    }

    /// Now; nil when /proc/self/status cannot be read.
    public static func now() -> ProcessMemory? {
        guard let text = ProcFile.text("/proc/self/status") else { return nil }
        return parse(status: text)
    }

    /// The fields of a /proc/PID/status text; nil when `VmRSS` or `VmHWM` is missing. The split
    /// fields appeared in Linux 4.5: without them the split reads 0.
    public static func parse(status text: String) -> ProcessMemory? {
        func bytes(_ key: String) -> Int64? {
            ProcFiles.field(key, inText: text).flatMap(ProcFiles.kilobytes(fromValue:)).map { $0 * 1024 }
        }
        guard let rss = bytes("VmRSS"), let peak = bytes("VmHWM") else { return nil }
        return ProcessMemory(
            peakBytes: peak, rssBytes: rss, anonBytes: bytes("RssAnon") ?? 0, fileBytes: bytes("RssFile") ?? 0,
            shmemBytes: bytes("RssShmem") ?? 0)
    }

    /// The resident set's split: `{"rss": …, "anon": …, "file": …, "shmem": …}`, bytes.
    public var splitJSON: JSONValue {
        [
            "rss": JSONValue(rssBytes), "anon": JSONValue(anonBytes), "file": JSONValue(fileBytes),
            "shmem": JSONValue(shmemBytes),
        ]
    }
}

extension BenchReport {
    /// Writes `peak_rss_bytes` (VmHWM: the process as `top` sees it at its largest) and
    /// `rss_bytes` (the split of the resident set into anon, file and shmem) unless the scenario
    /// wrote them already. `sampledPeak`, when the run sampled the process while it ran (the
    /// workloads do, ten times a second), is the sample with the largest resident set, whose
    /// split is the one that explains the peak; otherwise the split is the one at the end.
    public mutating func addProcessMemory(sampledPeak: ProcessMemory? = nil, now: ProcessMemory? = ProcessMemory.now()) {
        guard extras["peak_rss_bytes"] == nil, let now else { return }
        extras["peak_rss_bytes"] = JSONValue(now.peakBytes)
        var split = (sampledPeak ?? now).splitJSON
        if case .object(var fields) = split {
            fields["when"] = .string(sampledPeak == nil ? "end of the run" : "the sample with the largest resident set (10 per second)")
            split = .object(fields)
        }
        extras["rss_bytes"] = split
    }
}
