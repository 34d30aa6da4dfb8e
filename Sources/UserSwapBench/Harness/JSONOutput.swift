import Foundation

/// Writes `--json` output: pretty-printed with sorted keys (so files diff well between runs),
/// to stdout or to a file whose parent folders are created. A file is replaced atomically, so a
/// crashed run never leaves half a report where the plot script would read it.
public enum JSONOutput {
    /// The encoder every JSON output uses.
    public static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(value)
        data.append(UInt8(ascii: "\n"))
        return data
    }

    public static func write(_ value: some Encodable, to destination: JSONDestination, console: Console) throws {
        let data = try encode(value)
        switch destination {
        case .stdout:
            console.writeOutput(String(decoding: data, as: UTF8.self))
        case .file(let path):
            let url = URL(fileURLWithPath: path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url, options: .atomic)
        }
    }
}
