/// The first page of a swap file: Linux's `union swap_header` (include/linux/swap.h) in the v1
/// layout `mkswap` writes, so that a file formatted by UserSwap can be handed to `swapon` and a
/// file made by `mkswap` can be opened by UserSwap.
///
/// Layout of the 4096-byte page (little-endian, as on x86-64 and arm64):
///
///     0     bootbits[1024]        zero (room for a boot sector / disk label)
///     1024  version: u32          1
///     1028  last_page: u32        index of the last page (page count - 1)
///     1032  nr_badpages: u32
///     1036  sws_uuid[16]
///     1052  sws_volume[16]        label, NUL padded
///     1068  padding[117]: u32
///     1536  badpages[]: u32       indexes of pages never to use
///     4086  magic "SWAPSPACE2"    the last 10 bytes of the page
public struct SwapHeader: Equatable, Sendable {
    /// The only on-disk version Linux has written since 2.2 (`SWAPSPACE2`).
    public static let version: UInt32 = 1
    /// Bytes of the header page; swap files made for larger pages are rejected.
    public static let size = SwapPage.size
    /// Fewest pages a usable swap file has: the header plus one whole cluster, the unit the
    /// allocator hands out (the kernel's SWAPFILE_CLUSTER is 512 pages with 4 KiB pages).
    public static let minimumPageCount = 1 + clusterPages
    /// The most bad pages the list has room for: it runs from byte 1536 to the magic.
    public static let maxBadPages = (size - Offset.badPages - magic.count) / 4
    /// The most pages a header can describe (`last_page` is a u32).
    public static let maxPageCount = Int(UInt32.max) + 1
    /// Longest label `sws_volume` holds, in UTF-8 bytes.
    public static let maxLabelBytes = 16

    /// Pages per cluster, used only for size checks and reports here (the Cluster layer owns the
    /// allocator's constant).
    static let clusterPages = 512

    static let magic: [UInt8] = Array("SWAPSPACE2".utf8)
    /// The v0 magic of Linux before 2.2: a bitmap of good pages, which nothing supports any more.
    static let oldMagic: [UInt8] = Array("SWAP-SPACE".utf8)

    enum Offset {
        static let version = 1024
        static let lastPage = 1028
        static let badPageCount = 1032
        static let uuid = 1036
        static let label = 1052
        static let badPages = 1536
    }

    /// Index of the last page (`last_page`): the file holds `lastPage + 1` pages, header included.
    public let lastPage: UInt32
    /// Pages the kernel (and UserSwap) never use, each in `1...lastPage`.
    public let badPages: [UInt32]
    /// The 16 bytes of `sws_uuid`.
    public let uuid: [UInt8]
    /// The volume label (`sws_volume`), at most 16 bytes of UTF-8.
    public let label: String

    /// Pages in the file, header included.
    public var pageCount: Int { Int(lastPage) + 1 }

    /// Pages that can hold swapped data: all but the header and the bad pages.
    public var usablePageCount: Int { pageCount - 1 - badPages.count }

    /// The UUID as `blkid` and `swapon --show=UUID` print it: 8-4-4-4-12 lowercase hex.
    public var uuidString: String { Self.format(uuid: uuid) }

    /// A header for a new swap file of `pageCount` pages. A nil `uuid` gets a random version-4
    /// UUID, as `mkswap` does.
    ///
    /// Precondition: the fields fit the format (a 16-byte UUID, a label of at most 16 bytes,
    /// `pageCount` in `1...maxPageCount`, a bad-page list the kernel accepts). Input from a user
    /// goes through `validate(pageCount:label:badPages:)` first, which also asks for the
    /// header and one whole cluster, and says what is wrong.
    public init(pageCount: Int, label: String = "", badPages: [UInt32] = [], uuid: [UInt8]? = nil) {
        require(
            (1...Self.maxPageCount).contains(pageCount), "a swap header describes 1...\(Self.maxPageCount) pages, not \(pageCount)")
        require(label.utf8.count <= Self.maxLabelBytes, "label \"\(label)\" is longer than \(Self.maxLabelBytes) bytes")
        require(uuid == nil || uuid!.count == 16, "a UUID is 16 bytes")
        let lastPage = UInt32(pageCount - 1)
        do throws(SwapError) {
            try Self.checkBadPages(badPages, count: badPages.count, lastPage: lastPage, path: "a new swap header")
        } catch {
            trap(error.message)
        }
        self.init(lastPage: lastPage, badPages: badPages, uuid: uuid ?? Self.randomUUID(), label: label)
    }

    /// Checks fields for a new swap file given by a user (a size, a label) and says what to change:
    /// `.tooSmall` for fewer than a header and one cluster of pages, `.invalidArgument` for a
    /// label over 16 bytes or more pages than a header describes, `.badPageListOutOfRange`.
    public static func validate(pageCount: Int, label: String = "", badPages: [UInt32] = []) throws(SwapError) {
        guard pageCount >= minimumPageCount else {
            throw SwapError(
                .tooSmall,
                "a swap file of \(pageCount) pages (\(describe(bytes: Int64(max(0, pageCount)) * Int64(size)))) is too small; it needs at least one cluster (2 MiB) after the header: \(minimumPageCount) pages"
            )
        }
        guard pageCount <= maxPageCount else {
            throw SwapError(
                .invalidArgument,
                "a swap file of \(pageCount) pages is too large; a swap header describes at most \(maxPageCount) pages (16 TiB)")
        }
        guard label.utf8.count <= maxLabelBytes else {
            throw SwapError(
                .invalidArgument,
                "label \"\(label)\" is \(label.utf8.count) bytes; a swap label holds at most \(maxLabelBytes) bytes of UTF-8")
        }
        try checkBadPages(badPages, count: badPages.count, lastPage: UInt32(pageCount - 1), path: "the new swap file")
    }

    /// Memberwise, for `decode`, which has already validated every field.
    private init(lastPage: UInt32, badPages: [UInt32], uuid: [UInt8], label: String) {
        self.lastPage = lastPage
        self.badPages = badPages
        self.uuid = uuid
        self.label = label
    }

    /// The 4096 bytes of the header page, ready to write at offset 0.
    public func encoded() -> [UInt8] {
        var page = [UInt8](repeating: 0, count: Self.size)
        page.withUnsafeMutableBytes { out in
            out.storeBytes(of: Self.version.littleEndian, toByteOffset: Offset.version, as: UInt32.self)
            out.storeBytes(of: lastPage.littleEndian, toByteOffset: Offset.lastPage, as: UInt32.self)
            out.storeBytes(of: UInt32(badPages.count).littleEndian, toByteOffset: Offset.badPageCount, as: UInt32.self)
            for (i, byte) in uuid.enumerated() { out[Offset.uuid + i] = byte }
            for (i, byte) in label.utf8.enumerated() { out[Offset.label + i] = byte }
            for (i, bad) in badPages.enumerated() {
                out.storeBytes(of: bad.littleEndian, toByteOffset: Offset.badPages + 4 * i, as: UInt32.self)
            }
            for (i, byte) in Self.magic.enumerated() { out[Self.size - Self.magic.count + i] = byte }
        }
        return page
    }

    /// The remedy that formats the file at `path` (now `fileBytes`) anew, at its own size when
    /// that is large enough for a swap file, so that it works as given.
    static func reformat(_ path: String, fileBytes: Int64) -> SwapError.Remedy {
        .reformat(path: path, bytes: max(fileBytes, Int64(minimumPageCount * size)) / 1024 * 1024)
    }

    /// Reads and validates the header at the start of the file at `path`, whose size is
    /// `fileBytes`. `page` is the start of the file: its first 4096 bytes at least (unless the
    /// file is smaller, which is `.notASwapFile`), and up to 64 KiB so that a header written for a larger page size is recognised
    /// and named (the magic then sits at the end of an 8, 16 or 64 KiB page).
    ///
    /// The checks are the kernel's (`read_swap_header` in mm/swapfile.c), plus one it leaves to
    /// `swapon`'s size check: the file must really hold every page the header claims.
    public static func decode(
        _ page: UnsafeRawBufferPointer, path: String, fileBytes: Int64
    ) throws(SwapError) -> SwapHeader {
        guard fileBytes >= Int64(size) else {
            throw SwapError(
                .notASwapFile,
                "\(path) is \(describe(bytes: fileBytes)), smaller than one 4 KiB header page: it is not a swap file",
                remedy: reformat(path, fileBytes: fileBytes))
        }
        require(page.count >= size, "decode needs the file's whole first page, not \(page.count) bytes")
        guard hasMagic(magic, in: page, pageSize: size) else {
            if hasMagic(oldMagic, in: page, pageSize: size) {
                throw SwapError(
                    .unsupportedVersion,
                    "\(path) is a version 0 (SWAP-SPACE) swap file from before Linux 2.2",
                    remedy: reformat(path, fileBytes: fileBytes))
            }
            for other in [8192, 16384, 65536] where hasMagic(magic, in: page, pageSize: other) {
                throw SwapError(
                    .wrongPageSize,
                    "\(path) was formatted for \(other / 1024) KiB pages; UserSwap uses 4 KiB pages",
                    remedy: reformat(path, fileBytes: fileBytes))
            }
            throw SwapError(
                .notASwapFile,
                "\(path) is not a swap file (no SWAPSPACE2 signature at the end of its first page)",
                remedy: reformat(path, fileBytes: fileBytes))
        }

        let version = UInt32(littleEndian: page.loadUnaligned(fromByteOffset: Offset.version, as: UInt32.self))
        guard version == Self.version else {
            let swapped = version.byteSwapped == Self.version ? " (it was written on a big-endian machine)" : ""
            throw SwapError(
                .unsupportedVersion,
                "\(path) has swap header version \(version)\(swapped); only version 1 is supported",
                remedy: reformat(path, fileBytes: fileBytes))
        }

        let lastPage = UInt32(littleEndian: page.loadUnaligned(fromByteOffset: Offset.lastPage, as: UInt32.self))
        let pageCount = Int64(lastPage) + 1
        let headerBytes = pageCount * Int64(size)
        guard pageCount >= Int64(minimumPageCount) else {
            throw SwapError(
                .tooSmall,
                "swap file \(path) is \(describe(bytes: headerBytes)); it needs at least one cluster (2 MiB) after the header",
                remedy: reformat(path, fileBytes: fileBytes))
        }
        guard headerBytes <= fileBytes else {
            throw SwapError(
                .tooSmall,
                "swap file \(path) is truncated: its header describes \(pageCount) pages (\(describe(bytes: headerBytes))) but the file holds only \(describe(bytes: fileBytes))",
                remedy: reformat(path, fileBytes: fileBytes))
        }

        let badCount = Int(UInt32(littleEndian: page.loadUnaligned(fromByteOffset: Offset.badPageCount, as: UInt32.self)))
        let listed = min(badCount, maxBadPages)
        var badPages: [UInt32] = []
        badPages.reserveCapacity(listed)
        for i in 0..<listed {
            badPages.append(UInt32(littleEndian: page.loadUnaligned(fromByteOffset: Offset.badPages + 4 * i, as: UInt32.self)))
        }
        try checkBadPages(badPages, count: badCount, lastPage: lastPage, path: path)

        let uuid = Array(page[Offset.uuid..<Offset.uuid + 16])
        let labelBytes = page[Offset.label..<Offset.label + maxLabelBytes].prefix { $0 != 0 }
        let label = String(decoding: labelBytes, as: UTF8.self)
        return SwapHeader(lastPage: lastPage, badPages: badPages, uuid: uuid, label: label)
    }

    /// The kernel's rule: at most `maxBadPages` entries, each naming a page after the header and
    /// no later than `last_page`.
    private static func checkBadPages(
        _ badPages: [UInt32], count: Int, lastPage: UInt32, path: String
    ) throws(SwapError) {
        guard count <= maxBadPages else {
            throw SwapError(.badPageListOutOfRange, "\(path) lists \(count) bad pages; the header has room for at most \(maxBadPages)")
        }
        for bad in badPages where bad == 0 || bad > lastPage {
            throw SwapError(
                .badPageListOutOfRange, "\(path) lists bad page \(bad), outside the pages 1...\(lastPage) after the header",
                remedy: .reformat(path: path, bytes: (Int64(lastPage) + 1) * Int64(size)))
        }
    }

    /// Whether `signature` ends the first `pageSize` bytes of `page`.
    private static func hasMagic(_ signature: [UInt8], in page: UnsafeRawBufferPointer, pageSize: Int) -> Bool {
        guard page.count >= pageSize else { return false }
        return page[(pageSize - signature.count)..<pageSize].elementsEqual(signature)
    }

    /// A random (version 4, RFC 9562) UUID, as `mkswap` gives a new swap file.
    static func randomUUID() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = (bytes[6] & 0x0F) | 0x40  // version 4
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // variant 10xx
        return bytes
    }

    /// `uuid` as 8-4-4-4-12 lowercase hex.
    static func format(uuid: [UInt8]) -> String {
        var text = ""
        for (i, byte) in uuid.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { text += "-" }
            if byte < 16 { text += "0" }
            text += String(byte, radix: 16)
        }
        return text
    }

    /// Parses 8-4-4-4-12 hex (either case) into 16 bytes; nil if it is not a UUID.
    public static func parse(uuid text: String) -> [UInt8]? {
        let hex = Array(text.utf8.filter { $0 != UInt8(ascii: "-") })
        guard hex.count == 32, text.utf8.count == 36 else { return nil }
        var bytes: [UInt8] = []
        for i in stride(from: 0, to: 32, by: 2) {
            guard let byte = UInt8(String(decoding: hex[i...i + 1], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}

extension SwapHeader {
    /// `bytes` for a message: exact in the largest binary unit that divides it ("12 KiB",
    /// "2052 KiB", "64 MiB") so users can copy the number into `--size`, else to one decimal
    /// ("1.5 GiB") when the exact form would be a long number.
    static func describe(bytes: Int64) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var unit = 0
        var whole = bytes
        while unit < units.count - 1, whole >= 1024, whole % 1024 == 0 {
            whole /= 1024
            unit += 1
        }
        if whole < 10240 || unit == units.count - 1 { return "\(whole) \(units[unit])" }
        var value = Double(bytes)
        unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) \(units[unit])"
    }
}
