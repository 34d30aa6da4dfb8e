import Foundation
import Glibc
import UserSwap
import UserSwapBench

/// `userswap run`: the main job. A workload (Zipf by default) on 1 GiB of swappable data in a
/// 256 MiB RAM budget, swapping to an unnamed file in the temporary folder; a live progress line
/// while it runs, then the report (throughput, per-access latency, swap traffic, reclaim,
/// memory) and a verification of every page the workload touched. Exits 1 if any page is wrong.
enum RunCommand {
    static func run(_ options: RunOptions, console: Console) throws {
        let configuration = options.configuration
        let problems = configuration.problems()
        guard problems.isEmpty else { throw WorkloadError(problems.joined(separator: "; ")) }
        try checkPaths(options)
        #if DEBUG
        console.errorLine("userswap run: a debug build: expect 10–100× fewer operations per second than `swift build -c release`")
        #endif
        if configuration.memoryBytes >= configuration.dataBytes {
            console.errorLine(
                "userswap run: note: --memory \(ByteSize.format(configuration.memoryBytes)) holds all \(ByteSize.format(configuration.dataBytes)) of --data, so nothing will be swapped; give --data above --memory to exercise swap"
            )
        }
        // With --json on stdout, the report goes to stderr so that stdout is only JSON.
        let toStderr = options.json == .stdout
        let say = { (text: String) in toStderr ? console.errorLine(text) : console.line(text) }
        let swapBytes = configuration.swapBytes
        let outcome: WorkloadOutcome = try withSwap(options.swap, bytes: swapBytes, directory: options.directory) { device, location in
            let sealing =
                options.swap == .memory
                ? ""
                : options.encryption
                    ? ", pages sealed (XChaCha20-Poly1305, a random key in memory only)" : ", pages in clear (--no-encryption)"
            say(header(configuration, swap: location + sealing, mode: options.mode))
            return try WorkloadSession.run(
                configuration, device: device, encryption: options.encryption ? .randomKey : .none,
                console: console,
                showsProgress: options.showsProgress, label: "run",
                transparent: options.mode == .transparent)
        }
        let rss = ResidentMemory.peakBytes()
        say(outcome.summary)
        say(outcome.text(processPeakRSS: rss))
        if let destination = options.json {
            var directory: String?
            if case .file(let path) = destination { directory = URL(fileURLWithPath: path).deletingLastPathComponent().path }
            let measured = outcome.measured
            var report = BenchReport(
                scenario: "run", mode: options.mode, swapProtocol: configuration.swapProtocol,
                threads: measured.threads, ops: measured.ops, seconds: measured.seconds, latency: measured.latency,
                peakResidentBytes: rss, machine: MachineInfo.current(directory: directory),
                extras: ["latency_cdf": measured.histogram.cdf])
            outcome.fill(&report)
            // Whether the swap file held the pages sealed (`--no-encryption`: in clear).
            report.extras["encryption"] = .string(options.encryption && options.swap != .memory ? "randomKey" : "none")
            try JSONOutput.write(report, to: destination, console: console)
            if case .file(let path) = destination { say("wrote \(path)") }
        }
        guard outcome.verified else {
            throw WorkloadError("the data did not verify (see the report above)")
        }
    }

    /// Every path the run will write, checked before it starts (the swap file's folder and its
    /// room, the JSON report's folder), so that a bad one fails in the first second with a
    /// message that names the option to change, not after the run.
    static func checkPaths(_ options: RunOptions) throws(SwapError) {
        if case .file(let path) = options.json { try PathCheck.writableFile(path, named: "--json") }
        let bytes = options.configuration.swapBytes
        let folder: String
        let named: String
        switch options.swap {
        case .memory:
            return
        case .temporaryFile:
            folder = options.directory ?? SwapFile.temporaryDirectory
            named = options.directory != nil ? "--dir" : getenv("TMPDIR") != nil ? "TMPDIR" : "the temporary folder"
            try PathCheck.writableFolder(folder, named: named)
        case .file(let path):
            var st = stat()
            guard stat(path, &st) != 0 else { return }  // An existing file: opening it checks it.
            try PathCheck.writableFile(path, named: "--swap")
            let slash = path.lastIndex(of: "/")
            folder = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
            named = "--swap's folder"
        }
        if let free = PathCheck.freeBytes(folder), free < bytes {
            throw SwapError(
                .diskFull,
                "run needs a \(ByteSize.format(bytes)) swap file (twice --data, and a page) and \(named) \(folder) has \(ByteSize.format(free)) free; give a smaller --data, or \(options.swap == .temporaryFile ? "--dir" : "--swap") on a file system with room"
            )
        }
    }

    /// The lines before the progress: what runs, on what.
    static func header(_ c: WorkloadConfiguration, swap: String, mode: BenchMode = .explicit) -> String {
        let ratio = Double(c.dataBytes) / Double(c.memoryBytes)
        var limit = ""
        if c.kind.isOpen {
            switch c.limit {
            case .seconds(let s): limit = ", \(LatencySummary.trimmed(s)) s of accesses"
            case .operations(let n): limit = ", \(n) accesses"
            case .operationsPerThread(let counts): limit = ", \(counts.reduce(0, +)) accesses"
            }
        }
        return """
            userswap run: \(c.kind.rawValue), \(ByteSize.format(c.dataBytes)) of data in a \(ByteSize.format(c.memoryBytes)) RAM budget (\(LatencySummary.trimmed(ratio))×), \(c.threads == 1 ? "1 thread" : "\(c.threads) threads")\(limit)
              \(mode == .transparent ? "transparent region (plain loads and stores, faults served by \(c.transparentFaults == .faultingThread ? "the faulting thread" : "handler threads")), " : "")\(c.swapProtocol.rawValue) protocol, reclaim policy \(c.reclaimPolicy.benchName), seed \(c.seed)
              swap: \(swap)
            """
    }

    /// Runs `body` with the swap device `swap` names, described in words. The default swap file
    /// has no name (`.temporary`): nothing of it is left on disk when the run ends, however it
    /// ends.
    static func withSwap<T>(
        _ swap: RunOptions.Swap, bytes: Int64, directory: String? = nil,
        _ body: (SwapSpace.DeviceConfiguration, String) throws -> T
    ) throws -> T {
        switch swap {
        case .temporaryFile:
            let folder = directory ?? SwapFile.temporaryDirectory
            return try body(
                .temporary(size: bytes, directory: folder),
                "a \(ByteSize.format(bytes)) file in \(folder) with no name (nothing is left on disk, even if the run is killed)")
        case .file(let path):
            let exists = FileManager.default.fileExists(atPath: path)
            return try body(
                .file(path: path, size: bytes),
                exists ? "\(path) (existing swap file, kept)" : "\(path) (a new \(ByteSize.format(bytes)) file, kept)")
        case .memory:
            return try body(.memory(bytes: Int(bytes)), "\(ByteSize.format(bytes)) of process memory")
        }
    }
}
