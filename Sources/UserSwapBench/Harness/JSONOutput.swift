import Foundation
import UserSwap

/// Writes `--json` output: pretty-printed with sorted keys (so files diff well between runs),
/// to stdout or to a file in an existing folder (the commands check it before they start:
/// `PathCheck.writableFile`). A file is replaced atomically, so a crashed run never leaves half
/// a report where the plot script would read it.
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
            do {
                try data.write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                // What Foundation says is a paragraph of NSError text; the check up front says
                // it in words, and here the cause is what changed since.
                try PathCheck.writableFile(path, named: "--json")
                throw SwapError(.ioError, "--json \(path): the report could not be written (\((error as NSError).localizedDescription))")
            }
        }
    }
}
