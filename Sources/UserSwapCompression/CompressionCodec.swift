import CLZ4
import CZstd
import Synchronization
import UserSwap

/// The compressor a `CompressedTier` uses (kernel: zswap's `compressor` parameter, whose default
/// on most distributions is lzo or lz4; zram's `comp_algorithm`).
///
/// - `lz4`: LZ4's fast mode (`LZ4_compress_default`), a few GB/s per core; the default, as for
///   zram on most distributions.
/// - `zstd(level:)`: Zstandard (`ZSTD_compressCCtx`) at `level` (1…19; 1 is the fastest and what
///   zswap uses): better ratios, several times slower to compress.
public enum CompressionCodec: Sendable, Equatable, CustomStringConvertible {
    /// LZ4's fast mode.
    case lz4
    /// Zstandard at `level` (1…19).
    case zstd(level: Int32)

    /// Zstandard at level 1, the fast end.
    public static var zstd: CompressionCodec { .zstd(level: 1) }

    public var description: String {
        switch self {
        case .lz4: "lz4"
        case .zstd(let level): "zstd-\(level)"
        }
    }

    /// Parses `lz4`, `zstd` or `zstd-N` (as `description` prints them); nil for anything else.
    public init?(_ text: String) {
        if text == "lz4" {
            self = .lz4
            return
        }
        if text == "zstd" {
            self = .zstd
            return
        }
        guard text.hasPrefix("zstd-"), let level = Int32(text.dropFirst(5)), (1...19).contains(level) else { return nil }
        self = .zstd(level: level)
    }
}

/// Compresses and decompresses single pages with one codec. Thread-safe: LZ4's one-shot calls
/// keep their state on the caller's stack; Zstandard's contexts (a few hundred KiB each, too
/// costly to create per page) come from a small free list, one per concurrent caller.
final class _PageCodec: Sendable {
    let codec: CompressionCodec
    /// Idle Zstandard compression contexts; a caller pops one (or creates one) and pushes it
    /// back. Each context is used by one thread at a time.
    private let compressionContexts = Mutex<[ZstdContext]>([])
    /// Idle Zstandard decompression contexts, the same way.
    private let decompressionContexts = Mutex<[ZstdContext]>([])

    /// A Zstandard context (`ZSTD_CCtx *` or `ZSTD_DCtx *`) parked in a free list.
    struct ZstdContext {
        let pointer: OpaquePointer
    }

    init(_ codec: CompressionCodec) {
        if case .zstd(let level) = codec {
            require((1...19).contains(level), "zstd level \(level) is outside 1…19")
        }
        self.codec = codec
    }

    deinit {
        // No caller can hold a context any more: every call returned it before we could go away.
        for context in compressionContexts.withLock({ $0 }) { ZSTD_freeCCtx(context.pointer) }
        for context in decompressionContexts.withLock({ $0 }) { ZSTD_freeDCtx(context.pointer) }
    }

    /// Compresses the page `source` (4 KiB) into `destination` and returns the compressed length,
    /// or nil if it does not fit in `destination.count` bytes (the caller's reject threshold):
    /// both libraries stop early when the output outgrows its room, so an incompressible page
    /// costs less than a full compression.
    func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int? {
        assert(source.count == SwapPage.size)
        guard let src = source.baseAddress, let dst = destination.baseAddress, destination.count > 0 else { return nil }
        switch codec {
        case .lz4:
            // Returns 0 when the output would not fit in `destination.count` bytes.
            let n = LZ4_compress_default(
                src.assumingMemoryBound(to: CChar.self), dst.assumingMemoryBound(to: CChar.self),
                Int32(source.count), Int32(destination.count))
            return n > 0 ? Int(n) : nil
        case .zstd(let level):
            let context = takeContext(compressionContexts) { ZSTD_createCCtx() }
            defer { compressionContexts.withLock { $0.append(context) } }
            let n = ZSTD_compressCCtx(context.pointer, dst, destination.count, src, source.count, level)
            // An error here is "destination too small" (the page did not compress enough).
            return ZSTD_isError(n) != 0 ? nil : n
        }
    }

    /// Decompresses `source` into the page `destination` (4 KiB). Returns false if the bytes do
    /// not decode to exactly one page, which for bytes this process compressed itself means
    /// memory corruption: callers trap.
    func decompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Bool {
        assert(destination.count == SwapPage.size)
        guard let src = source.baseAddress, let dst = destination.baseAddress else { return false }
        switch codec {
        case .lz4:
            let n = LZ4_decompress_safe(
                src.assumingMemoryBound(to: CChar.self), dst.assumingMemoryBound(to: CChar.self),
                Int32(source.count), Int32(destination.count))
            return n == Int32(destination.count)
        case .zstd:
            let context = takeContext(decompressionContexts) { ZSTD_createDCtx() }
            defer { decompressionContexts.withLock { $0.append(context) } }
            let n = ZSTD_decompressDCtx(context.pointer, dst, destination.count, src, source.count)
            return ZSTD_isError(n) == 0 && n == destination.count
        }
    }

    /// An idle context from `list`, or a new one from `make` (outside the lock: creating one
    /// allocates).
    private func takeContext(_ list: borrowing Mutex<[ZstdContext]>, make: () -> OpaquePointer?) -> ZstdContext {
        if let context = list.withLock({ $0.popLast() }) { return context }
        guard let pointer = make() else {
            trap("Zstandard could not allocate a context: out of memory")
        }
        return ZstdContext(pointer: pointer)
    }
}

// A context is used by one thread at a time: taken from its free list under the list's lock,
// used, and put back under it.
extension _PageCodec.ZstdContext: @unchecked Sendable {}
