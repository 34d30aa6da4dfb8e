import Foundation
import Testing

@testable import UserSwap

/// Errors say what to do in the caller's terms: a Swift program is told the call or setting, the
/// `userswap` command its options, a C program its functions.
@Suite("Error remedies")
struct SwapErrorRemedyTests {
    static let remedies: [SwapError.Remedy] = [
        .makeSwapFile(path: "/x"), .reformat(path: "/x", bytes: 3 << 20), .replaceExisting, .smallerSwapFile,
        .largerSwapFile(atLeast: 2_101_248), .moreMemoryOrSwap,
    ]

    @Test("each remedy in each audience's words: the library's names no option or command, the CLI's no Swift call, C's neither")
    func vocabularies() {
        for remedy in Self.remedies {
            let library = remedy.text(for: .library), cli = remedy.text(for: .commandLine), c = remedy.text(for: .c)
            #expect(!library.contains("--") && !library.contains("userswap ") && !library.contains("userswap_"), "\(library)")
            #expect(!cli.contains("SwapFile") && !cli.contains("SwapSpace") && !cli.contains("userswap_"), "\(cli)")
            #expect(!c.contains("--") && !c.contains("SwapFile") && !c.contains("SwapSpace") && !c.contains("userswap format"), "\(c)")
        }
        #expect(
            SwapError.Remedy.reformat(path: "/x", bytes: 3 << 20).text(for: .commandLine)
                == "reformat it with `userswap format /x --size 3M --force`")
        #expect(
            SwapError.Remedy.reformat(path: "/x", bytes: 3 << 20).text(for: .library)
                == "reformat it with `SwapFile.format(path: \"/x\", bytes: 3145728, force: true)` (everything in it is lost)")
    }

    @Test("library calls fail with messages in the library's terms, and the command line's description of the same error names its options")
    func libraryErrors() throws {
        let folder = FileManager.default.temporaryDirectory.path + "/userswap-remedy-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/swap"
        try SwapFile.format(path: path, bytes: 4 << 20)
        var errors: [SwapError] = []
        errors.append(try #require(throws: SwapError.self) { try SwapFile.format(path: path, bytes: 4 << 20) })
        errors.append(try #require(throws: SwapError.self) { try SwapFile.open(path: folder + "/none") })
        errors.append(try #require(throws: SwapError.self) { try SwapFile.format(path: folder + "/small", bytes: 64 << 10) })
        #expect(
            FileManager.default.createFile(
                atPath: folder + "/data", contents: Data(repeating: 7, count: 3 << 20), attributes: [.posixPermissions: 0o600]))
        errors.append(try #require(throws: SwapError.self) { try SwapFile.open(path: folder + "/data") })
        // The budget full of pins: the engine's own out-of-memory error.
        let space = try SwapSpace(.init(memory: 2 * SwapPage.size, devices: [.file(path: path)]))
        let region = try space.makeRegion(bytes: 4 * SwapPage.size)
        let a = try region.pin(0)
        let b = try region.pin(1)
        errors.append(try #require(throws: SwapError.self) { _ = try region.pin(2) })
        _ = consume a
        _ = consume b
        #expect(errors.map(\.code) == [.fileExists, .noSuchFile, .tooSmall, .notASwapFile, .outOfMemory])
        for error in errors {
            #expect(error.remedy != nil, "\(error)")
            #expect(
                !error.message.contains("--") && !error.message.contains("userswap "),
                "a library error names no command-line option: \(error.message)")
            let cli = error.message(for: .commandLine)
            #expect(cli.contains("--") && !cli.contains("SwapFile.") && !cli.contains("SwapSpace."), "\(cli)")
            #expect(
                error.description(for: .c).contains("userswap_") || error.remedy == .smallerSwapFile || error.code == .tooSmall
                    || error.code == .fileExists, "\(error.description(for: .c))")
        }
        #expect(
            errors[4].message.contains("SwapSpace.Configuration.memory") && errors[4].message(for: .commandLine).contains("raise --memory"))
    }

    @Test("an error wrapped with more context keeps its remedy")
    func context() {
        let error = SwapError(.fileExists, "/x already exists", remedy: .replaceExisting).adding(context: "--swap ")
        #expect(error.remedy == .replaceExisting)
        #expect(
            error.message(for: .commandLine)
                == "--swap /x already exists; pass --force to replace it (everything in it is lost), or give another path")
    }
}
