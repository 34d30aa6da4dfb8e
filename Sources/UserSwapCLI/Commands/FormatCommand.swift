import UserSwap
import UserSwapBench

/// `userswap format FILE --size SIZE [--label LABEL] [--force] [--write-out]`: `SwapFile.format`, then a
/// mkswap-like line saying what was written.
enum FormatCommand {
    static func run(_ options: FormatOptions, console: Console) throws(SwapError) {
        let header = try SwapFile.format(
            path: options.path, bytes: options.bytes, label: options.label, force: options.force,
            writeOut: options.writeOut)
        let bytes = Int64(header.pageCount) * Int64(SwapPage.size)
        console.line(
            "formatted \(options.path): swap space version \(SwapHeader.version), \(header.pageCount) pages of 4 KiB (\(ByteSize.format(bytes))), \(header.usablePageCount) usable"
        )
        console.line("\(header.label.isEmpty ? "no label" : "label \(header.label)"), UUID \(header.uuidString)")
    }
}
