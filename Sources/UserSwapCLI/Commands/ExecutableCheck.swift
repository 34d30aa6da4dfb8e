import Foundation

/// What `userswap exec` learns of a program before running it: whether an `LD_PRELOAD` library
/// can serve its heap. A statically linked program (no `PT_INTERP`) never loads one; a Go
/// program or the JVM allocates with its own collector from `mmap`, not through malloc. Scripts
/// are judged by their interpreter (`#!`).
enum ExecutableCheck {
    /// Why a program cannot run under `userswap exec`.
    enum Refusal: Equatable, CustomStringConvertible {
        case notFound(String)
        case notExecutable(String)
        case notELF(String)
        case staticallyLinked(String)
        case ownAllocator(String, runtime: String)

        var description: String {
            switch self {
            case .notFound(let name): "\(name): command not found (not a path and not in PATH)"
            case .notExecutable(let path): "\(path) is not an executable file"
            case .notELF(let path): "\(path) is neither an ELF program nor a script with #!; userswap exec runs Linux programs"
            case .staticallyLinked(let path):
                "\(path) is statically linked: it loads no libraries, so userswap exec cannot give it a heap (link it dynamically)"
            case .ownAllocator(let path, let runtime):
                "\(path) is a \(runtime) program: its runtime allocates its heap itself (not through malloc), so userswap exec cannot serve it"
            }
        }
    }

    /// The full path of `command` as execvp would find it: as given when it has a slash, else
    /// the first executable of that name in `path` (the PATH variable).
    static func resolve(_ command: String, path: String?) -> String? {
        if command.contains("/") { return command }
        let folders = (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":", omittingEmptySubsequences: false)
        for folder in folders {
            let candidate = (folder.isEmpty ? "." : String(folder)) + "/" + command
            if access(candidate, X_OK) == 0, !isDirectory(candidate) { return candidate }
        }
        return nil
    }

    /// The interpreter line of a script that starts other programs: a shell, or `env`, which
    /// runs the program it names (nil for an ELF program, or a script whose interpreter is the
    /// program that gets the heap, such as `#!/usr/bin/python3`).
    static func scriptInterpreter(_ path: String) -> String? {
        let head = prefix(of: path)
        guard head.starts(with: Array("#!".utf8)) else { return nil }
        let line = String(decoding: head.dropFirst(2).prefix { $0 != 0x0A }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        let program = line.split(separator: " ").first.map { String($0.split(separator: "/").last ?? "") } ?? ""
        return ["sh", "bash", "dash", "zsh", "ksh", "env"].contains(program) ? line : nil
    }

    /// Checks the program at `path` (and the interpreters of scripts, up to four deep).
    static func check(_ path: String) -> Refusal? {
        var current = path
        for _ in 0..<4 {
            guard access(current, X_OK) == 0, !isDirectory(current) else {
                return access(current, F_OK) == 0 ? .notExecutable(current) : .notFound(current)
            }
            let head = prefix(of: current)
            if head.starts(with: Array("#!".utf8)) {
                let line = head.dropFirst(2).prefix { $0 != 0x0A }
                let words = String(decoding: line, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard let interpreter = words.first else { return .notELF(current) }
                current = String(interpreter)
                continue
            }
            guard head.starts(with: [0x7F, 0x45, 0x4C, 0x46]) else { return .notELF(current) }
            guard let file = try? Data(contentsOf: URL(fileURLWithPath: current), options: .alwaysMapped) else {
                return .notExecutable(current)
            }
            guard let elf = ELFFile(file) else { return .notELF(current) }
            return elf.refusal(path: current)
        }
        return .notELF(path)
    }

    /// The first 256 bytes of a file (fewer when it is shorter or cannot be read).
    private static func prefix(of path: String) -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return Data() }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 256)
        let count = read(fd, &bytes, bytes.count)
        return Data(bytes.prefix(max(count, 0)))
    }

    private static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }
}

/// The few facts of a 64-bit little-endian ELF file that `ExecutableCheck` needs.
struct ELFFile {
    let data: Data

    init?(_ data: Data) {
        // ELFCLASS64, ELFDATA2LSB.
        guard data.count >= 64, data[data.startIndex + 4] == 2, data[data.startIndex + 5] == 1 else { return nil }
        self.data = data
    }

    func integer<T: FixedWidthInteger>(_ offset: Int, as: T.Type) -> T {
        guard offset >= 0, offset + MemoryLayout<T>.size <= data.count else { return 0 }
        var value: T = 0
        for i in 0..<MemoryLayout<T>.size {
            value |= T(data[data.startIndex + offset + i]) << (8 * i)
        }
        return value
    }

    /// Whether a program header is `PT_INTERP` (the dynamic loader, which runs LD_PRELOAD).
    var hasInterpreter: Bool {
        let offset = Int(integer(0x20, as: UInt64.self))
        let size = Int(integer(0x36, as: UInt16.self))
        let count = Int(integer(0x38, as: UInt16.self))
        return (0..<count).contains { integer(offset + $0 * size, as: UInt32.self) == 3 }
    }

    /// The names of the sections, and the bytes of `.dynstr` (the names of needed libraries).
    var sections: (names: [String], dynamicStrings: Data) {
        let offset = Int(integer(0x28, as: UInt64.self))
        let size = Int(integer(0x3A, as: UInt16.self))
        let count = Int(integer(0x3C, as: UInt16.self))
        let namesIndex = Int(integer(0x3E, as: UInt16.self))
        guard offset > 0, size >= 64, count > 0, namesIndex < count else { return ([], Data()) }
        func header(_ index: Int) -> (name: Int, offset: Int, size: Int) {
            let at = offset + index * size
            return (Int(integer(at, as: UInt32.self)), Int(integer(at + 0x18, as: UInt64.self)), Int(integer(at + 0x20, as: UInt64.self)))
        }
        let table = header(namesIndex)
        var names: [String] = []
        var dynamicStrings = Data()
        for index in 0..<count {
            let section = header(index)
            let start = table.offset + section.name
            guard start >= 0, start < data.count else { continue }
            let bytes = data[(data.startIndex + start)...].prefix { $0 != 0 }
            let name = String(decoding: bytes, as: UTF8.self)
            names.append(name)
            if name == ".dynstr", section.offset >= 0, section.offset + section.size <= data.count {
                dynamicStrings = data.subdata(in: (data.startIndex + section.offset)..<(data.startIndex + section.offset + section.size))
            }
        }
        return (names, dynamicStrings)
    }

    func refusal(path: String) -> ExecutableCheck.Refusal? {
        let (names, dynamicStrings) = sections
        if names.contains(".go.buildinfo") || names.contains(".note.go.buildid") { return .ownAllocator(path, runtime: "Go") }
        guard hasInterpreter else { return .staticallyLinked(path) }
        for library in ["libjli.so", "libjvm.so"] where dynamicStrings.range(of: Data(library.utf8)) != nil {
            return .ownAllocator(path, runtime: "Java (JVM)")
        }
        return nil
    }
}
