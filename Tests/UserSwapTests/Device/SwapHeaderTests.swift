import Testing

@testable import UserSwap

@Suite("Swap header (mkswap v1 layout)")
struct SwapHeaderTests {
    /// Decodes `page` as the header of a file big enough for any header.
    private func decode(_ page: [UInt8], fileBytes: Int64 = 1 << 46) throws(SwapError) -> SwapHeader {
        try page.withUnsafeBytes { buffer in
            Result { () throws(SwapError) in
                try SwapHeader.decode(buffer, path: "/x", fileBytes: fileBytes)
            }
        }.get()
    }

    /// A valid encoded header with some field patched.
    private func patched(_ body: (inout [UInt8]) -> Void) throws -> [UInt8] {
        var page = SwapHeader(pageCount: 1024).encoded()
        body(&page)
        return page
    }

    private func store(_ value: UInt32, at offset: Int, in page: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes in
            for (i, byte) in bytes.enumerated() { page[offset + i] = byte }
        }
    }

    struct Limits: Sendable, CustomTestStringConvertible {
        let pageCount: Int
        let badPageCount: Int
        let label: String
        var testDescription: String { "\(pageCount) pages, \(badPageCount) bad, label \"\(label)\"" }
    }

    @Test(
        "encoding then decoding gives back every field, at the limits of each",
        arguments: [
            Limits(pageCount: SwapHeader.minimumPageCount, badPageCount: 0, label: ""),
            Limits(pageCount: SwapHeader.minimumPageCount, badPageCount: SwapHeader.maxBadPages, label: "sixteen-bytes-ok"),
            Limits(pageCount: SwapHeader.maxPageCount, badPageCount: SwapHeader.maxBadPages, label: "ünïcødé-16by"),
            Limits(pageCount: SwapHeader.maxPageCount, badPageCount: 1, label: "a"),
            Limits(pageCount: 262_144, badPageCount: 3, label: "swap"),
        ])
    func roundTrip(_ limits: Limits) throws {
        #expect(limits.label.utf8.count <= 16)
        // Spread the bad pages from the first page after the header to the very last.
        let last = UInt32(limits.pageCount - 1)
        let bad: [UInt32] = (0..<limits.badPageCount).map { i in
            limits.badPageCount == 1 ? last : 1 + UInt32(Double(i) / Double(limits.badPageCount - 1) * Double(last - 1))
        }
        let header = SwapHeader(pageCount: limits.pageCount, label: limits.label, badPages: bad)
        let page = header.encoded()
        #expect(page.count == 4096)
        let decoded = try decode(page)
        #expect(decoded == header)
        #expect(decoded.pageCount == limits.pageCount)
        #expect(decoded.lastPage == last)
        #expect(decoded.badPages == bad)
        #expect(decoded.label == limits.label)
        #expect(decoded.uuid == header.uuid)
        #expect(decoded.usablePageCount == limits.pageCount - 1 - limits.badPageCount)
    }

    @Test("fields sit at the byte offsets of union swap_header")
    func layout() throws {
        let uuid: [UInt8] = Array(0x10...0x1F)
        let header = SwapHeader(pageCount: 0x1234, label: "lbl", badPages: [7, 9], uuid: uuid)
        let page = header.encoded()
        #expect(page[0..<1024].allSatisfy { $0 == 0 }, "bootbits are zero")
        #expect(Array(page[1024..<1028]) == [1, 0, 0, 0], "version 1, little-endian")
        #expect(Array(page[1028..<1032]) == [0x33, 0x12, 0, 0], "last_page = pages - 1")
        #expect(Array(page[1032..<1036]) == [2, 0, 0, 0], "nr_badpages")
        #expect(Array(page[1036..<1052]) == uuid)
        #expect(Array(page[1052..<1068]) == Array("lbl".utf8) + [UInt8](repeating: 0, count: 13))
        #expect(page[1068..<1536].allSatisfy { $0 == 0 }, "117 words of padding")
        #expect(Array(page[1536..<1544]) == [7, 0, 0, 0, 9, 0, 0, 0])
        #expect(Array(page[4086..<4096]) == Array("SWAPSPACE2".utf8))
        #expect(SwapHeader.maxBadPages == 637)
    }

    @Test("a new header gets a random version-4 UUID, printed 8-4-4-4-12 in lowercase")
    func randomUUID() throws {
        let a = SwapHeader(pageCount: 1024)
        let b = SwapHeader(pageCount: 1024)
        #expect(a.uuid != b.uuid)
        #expect(a.uuid.count == 16)
        #expect(a.uuid[6] >> 4 == 4, "version nibble")
        #expect(a.uuid[8] >> 6 == 0b10, "RFC variant")
        let text = a.uuidString
        #expect(text.split(separator: "-").map(\.count) == [8, 4, 4, 4, 12])
        #expect(text == text.lowercased())
        #expect(SwapHeader.parse(uuid: text) == a.uuid)
        let fixed = SwapHeader(pageCount: 1024, uuid: [0xAB, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0xFF])
        #expect(fixed.uuidString == "ab000102-0304-0506-0708-090a0b0c0dff")
    }

    @Test("validation rejects a long label, too few or too many pages and out-of-range bad pages")
    func validateRejects() throws {
        #expect(throws: SwapError(.invalidArgument, "")) { try SwapHeader.validate(pageCount: 1024, label: "seventeen-bytes!!") }
        #expect(throws: SwapError(.tooSmall, "")) { try SwapHeader.validate(pageCount: 512) }
        #expect(throws: SwapError(.invalidArgument, "")) { try SwapHeader.validate(pageCount: SwapHeader.maxPageCount + 1) }
        #expect(throws: SwapError(.badPageListOutOfRange, "")) { try SwapHeader.validate(pageCount: 1024, badPages: [0]) }
        #expect(throws: SwapError(.badPageListOutOfRange, "")) { try SwapHeader.validate(pageCount: 1024, badPages: [1024]) }
        let tooMany = (1...UInt32(SwapHeader.maxBadPages + 1)).map { $0 }
        #expect(throws: SwapError(.badPageListOutOfRange, "")) { try SwapHeader.validate(pageCount: 4096, badPages: tooMany) }
        try SwapHeader.validate(pageCount: 513, label: "sixteen-bytes-ok", badPages: [1, 512])
        try SwapHeader.validate(pageCount: 4096, badPages: Array(tooMany.dropLast()))
    }

    @Test("a label fills sws_volume up to its first NUL, or all 16 bytes")
    func labelBytes() throws {
        let page = try patched { page in
            for i in 0..<16 { page[1052 + i] = UInt8(ascii: "a") + UInt8(i) }
        }
        #expect(try decode(page).label == "abcdefghijklmnop")
        let short = try patched { page in
            page[1052] = UInt8(ascii: "x")
            page[1053] = 0
            page[1054] = UInt8(ascii: "y")
        }
        #expect(try decode(short).label == "x")
    }

    @Test("a page without the signature is not a swap file")
    func noMagic() throws {
        let error = try #require(throws: SwapError.self) { try decode([UInt8](repeating: 0, count: 4096)) }
        #expect(error.code == .notASwapFile)
        #expect(error.message.contains("/x"))
        let small = try #require(throws: SwapError.self) { try decode([UInt8](repeating: 0, count: 4096), fileBytes: 100) }
        #expect(small.code == .notASwapFile)
    }

    @Test("the version 0 SWAP-SPACE signature is an unsupported version")
    func versionZero() throws {
        let page = try patched { page in
            for (i, byte) in "SWAP-SPACE".utf8.enumerated() { page[4086 + i] = byte }
        }
        let error = try #require(throws: SwapError.self) { try decode(page) }
        #expect(error.code == .unsupportedVersion)
        #expect(error.message.contains("version 0"))
    }

    @Test("a header for larger pages names the page size it was made for", arguments: [8192, 16384, 65536])
    func wrongPageSize(pageSize: Int) throws {
        var file = [UInt8](repeating: 0, count: 65536)
        for (i, byte) in "SWAPSPACE2".utf8.enumerated() { file[pageSize - 10 + i] = byte }
        let error = try #require(throws: SwapError.self) { try decode(file) }
        #expect(error.code == .wrongPageSize)
        #expect(error.message.contains("\(pageSize / 1024) KiB pages"), "\(error.message)")
    }

    @Test("any version but 1 is unsupported, and a byte-swapped 1 says big-endian")
    func otherVersions() throws {
        let two = try patched { store(2, at: 1024, in: &$0) }
        #expect(throws: SwapError(.unsupportedVersion, "")) { try decode(two) }
        let swapped = try patched { store(UInt32(1).byteSwapped, at: 1024, in: &$0) }
        let error = try #require(throws: SwapError.self) { try decode(swapped) }
        #expect(error.code == .unsupportedVersion)
        #expect(error.message.contains("big-endian"))
    }

    @Test("fewer than a header and one cluster of pages is too small, with the size in KiB")
    func tooSmall() throws {
        let page = try patched { store(2, at: 1028, in: &$0) }
        let error = try #require(throws: SwapError.self) { try decode(page) }
        #expect(error.code == .tooSmall)
        #expect(
            error.message(for: .commandLine).hasPrefix(
                "swap file /x is 12 KiB; it needs at least one cluster (2 MiB) after the header; reformat it with `userswap format /x --size "
            ))
        #expect(error.message.contains("SwapFile.format(path: \"/x\", bytes: ") && !error.message.contains("--"), "\(error.message)")
        let smallest = try patched { store(512, at: 1028, in: &$0) }
        #expect(try decode(smallest).pageCount == 513)
    }

    @Test("a header describing more pages than the file holds means the file was truncated")
    func truncated() throws {
        let page = SwapHeader(pageCount: 1024).encoded()
        let error = try #require(throws: SwapError.self) { try decode(page, fileBytes: 1023 * 4096) }
        #expect(error.code == .tooSmall)
        #expect(error.message.contains("truncated"))
        #expect(try decode(page, fileBytes: 1024 * 4096).pageCount == 1024)
        #expect(try decode(page, fileBytes: 1025 * 4096 + 17).pageCount == 1024, "extra bytes at the end are fine")
    }

    @Test(
        "the bad-page list must fit and name pages after the header",
        arguments: [
            (count: UInt32(638), entry: UInt32(5)),
            (count: UInt32.max, entry: UInt32(5)),
            (count: UInt32(1), entry: UInt32(0)),
            (count: UInt32(1), entry: UInt32(1024)),
            (count: UInt32(1), entry: UInt32.max),
        ])
    func badPageList(count: UInt32, entry: UInt32) throws {
        let page = try patched { page in
            store(count, at: 1032, in: &page)
            store(entry, at: 1536, in: &page)
        }
        let error = try #require(throws: SwapError.self) { try decode(page) }
        #expect(error.code == .badPageListOutOfRange)
        let fine = try patched { page in
            store(1, at: 1032, in: &page)
            store(1023, at: 1536, in: &page)
        }
        #expect(try decode(fine).badPages == [1023])
    }

    @Test(
        "sizes in messages are exact where they can be copied into --size",
        arguments: [
            (100, "100 bytes"), (12288, "12 KiB"), (2_101_248, "2052 KiB"),
            (64 << 20, "64 MiB"), (1 << 40, "1 TiB"), (1_610_612_736 + 4096, "1.5 GiB"),
        ] as [(Int64, String)])
    func describeBytes(bytes: Int64, text: String) {
        #expect(SwapHeader.describe(bytes: bytes) == text)
    }
}
