import Glibc

/// What `userswap inspect` tells about a swap file: its header, its size and allocation on disk,
/// and whether the kernel is using it. Encodable for `--json`; `text()` for people.
public struct SwapFileReport: Sendable, Encodable, Equatable {
    /// The path the report is about.
    public let path: String
    /// Header version (always 1: other versions do not decode).
    public let version: Int
    /// The page size the header was written for (4096).
    public let pageSize: Int
    /// Pages the header describes, header included.
    public let pageCount: Int
    /// Pages that can hold data: all but the header and the bad pages.
    public let usablePages: Int
    /// Allocation clusters (512 pages each, the last one possibly partial).
    public let clusters: Int
    /// The file's size (`st_size`); at least `pageCount * pageSize`.
    public let bytes: Int64
    /// Bytes the file system has allocated to it (`st_blocks * 512`).
    public let allocatedBytes: Int64
    /// Whether the file has holes (fewer bytes allocated than its size), as after a discard;
    /// the kernel's `swapon` refuses such a file.
    public let hasHoles: Bool
    /// The header's UUID, as `mkswap` prints it.
    public let uuid: String
    /// The header's label (empty when none).
    public let label: String
    /// Pages the header marks unusable, by index.
    public let badPages: [UInt32]
    /// Whether the kernel is swapping to it (it is in /proc/swaps).
    public let inUseByKernel: Bool
}

extension SwapFile {
    /// Reads and describes the swap file at `path`. Only reads: it takes no lock, so it works on
    /// a file a UserSwap device or the kernel is using. Throws the errors of `open` for a file
    /// that is not a valid swap file.
    public static func inspect(path: String) throws(SwapError) -> SwapFileReport {
        let descriptor: FileDescriptor
        do throws(Errno) {
            descriptor = FileDescriptor(adopting: try Syscalls.open(path, flags: O_RDONLY))
        } catch {
            throw SwapError.file(path, error, doing: "open")
        }
        let status: stat
        do throws(Errno) { status = try Syscalls.fstat(descriptor.rawValue) } catch {
            throw SwapError.file(path, error, doing: "examine")
        }
        if status.st_mode & S_IFMT == S_IFDIR {
            throw SwapError(.isDirectory, "\(path) is a directory; give the path of a swap file inside it")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw SwapError(.invalidArgument, "\(path) is not a regular file; UserSwap swap files are regular files")
        }
        let header = try readHeader(descriptor, path: path)
        let size = Int64(status.st_size)
        let allocated = Int64(status.st_blocks) * 512
        // Not SEEK_HOLE: ext4 and xfs report fallocated (unwritten) extents as holes there, yet
        // swapon accepts them. Fewer allocated bytes than the size is what swapon refuses
        // (`iomap_swapfile_activate` meets a hole). A file system's own metadata blocks could
        // mask a single small hole; a discarded cluster (2 MiB) always shows.
        let hasHoles = allocated < size
        return SwapFileReport(
            path: path,
            version: Int(SwapHeader.version),
            pageSize: SwapPage.size,
            pageCount: header.pageCount,
            usablePages: header.usablePageCount,
            clusters: (header.pageCount + SwapHeader.clusterPages - 1) / SwapHeader.clusterPages,
            bytes: size,
            allocatedBytes: allocated,
            hasHoles: hasHoles,
            uuid: header.uuidString,
            label: header.label,
            badPages: header.badPages,
            inUseByKernel: isKernelSwap(status)
        )
    }
}

extension SwapFileReport {
    /// A readable multi-line report, one `name  value` line per fact, ending in a newline. The
    /// label and the path are printed with their control characters and other non-printables
    /// escaped (`PrintableText`): the label is whoever wrote the file's choice.
    public func text() -> String {
        let swapBytes = Int64(pageCount) * Int64(pageSize)
        let path = PrintableText.escaped(self.path)
        var lines: [(String, String)] = [
            ("swap file", path),
            ("version", "\(version) (SWAPSPACE2), \(pageSize / 1024) KiB pages"),
            ("size", "\(SwapHeader.describe(bytes: swapBytes)): \(pageCount) pages in \(clusters) cluster\(clusters == 1 ? "" : "s")"),
            ("usable", "\(usablePages) pages (\(SwapHeader.describe(bytes: Int64(usablePages) * Int64(pageSize))))"),
        ]
        if bytes != swapBytes {
            lines.append(("file size", "\(SwapHeader.describe(bytes: bytes)) (the bytes past the last page are unused)"))
        }
        let holes = hasHoles ? "has holes: `swapon` will refuse it; reformat to use it as kernel swap" : "no holes"
        lines.append(("on disk", "\(SwapHeader.describe(bytes: allocatedBytes)) allocated, \(holes)"))
        lines.append(("uuid", uuid))
        lines.append(("label", label.isEmpty ? "(none)" : PrintableText.escaped(label)))
        if badPages.isEmpty {
            lines.append(("bad pages", "none"))
        } else {
            let shown = badPages.prefix(16).map(String.init).joined(separator: ", ")
            let more = badPages.count > 16 ? ", … (\(badPages.count - 16) more)" : ""
            lines.append(("bad pages", "\(badPages.count): \(shown)\(more)"))
        }
        lines.append(
            ("in use", inUseByKernel ? "yes, by the kernel (swapon); `swapoff \(path)` before using it here" : "not by the kernel"))
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { name, value in
            name + String(repeating: " ", count: width - name.count + 2) + value
        }.joined(separator: "\n") + "\n"
    }
}
