import CSodium
import Glibc

/// An XChaCha20-Poly1305 key: 32 random bytes made by libsodium, held only in this
/// process's memory, in a `sodium_malloc` block — locked in RAM (`mlock`, so it never reaches a
/// swap device itself), between guard pages, and read-only once made. `deinit` wipes and frees
/// it (`sodium_free`).
///
/// `sodium_malloc` ignores a failed `mlock` (RLIMIT_MEMLOCK spent, no CAP_IPC_LOCK): the key is
/// then locked again here and a failure kept in `lockFailure`, which a space reports in its
/// `warnings` rather than ignore. The key still works; the system may swap its page out.
///
/// A class, so that the tiers of one space share one key (`SwapSpace.Encryption.randomKey`);
/// the last tier to go wipes it. The one place the key's raw pointer lives.
final class _PageKey {
    /// Start of the key; valid, 32 bytes, read-only, until `deinit`.
    let bytes: UnsafePointer<UInt8>

    static let byteCount = Int(crypto_aead_xchacha20poly1305_ietf_KEYBYTES)

    /// Why the key could not be locked in RAM, if it could not.
    let lockFailure: SwapError?

    /// A fresh random key. Throws if libsodium cannot start (it found no source of randomness)
    /// or cannot allocate the guarded block.
    init() throws(SwapError) {
        try Self.initializeSodium()
        guard let block = sodium_malloc(Self.byteCount) else {
            throw SwapError(
                .outOfMemory, "cannot allocate the locked memory for a page key (sodium_malloc of \(Self.byteCount) bytes failed)")
        }
        // Locked before the key is made, so that it is never in a page the system may swap.
        // Locking pages sodium_malloc already locked costs nothing more against the limit.
        if mlock(block, Self.byteCount) == 0 {
            lockFailure = nil
        } else {
            let code = errno
            lockFailure = SwapError(
                .permissionDenied,
                "the space's page key could not be locked in RAM (mlock: \(String(cString: strerror(code)))): the system may write it to its own swap; raise the locked-memory limit (ulimit -l, LimitMEMLOCK= in systemd) or give the process CAP_IPC_LOCK",
                errno: Errno(rawValue: code))
        }
        let key = block.assumingMemoryBound(to: UInt8.self)
        crypto_aead_xchacha20poly1305_ietf_keygen(key)
        // Read-only from now on: a stray write through another pointer faults instead of
        // silently changing the key (which would make every page unreadable).
        _ = sodium_mprotect_readonly(block)
        bytes = UnsafePointer(key)
    }

    deinit {
        // Wipes the key, unlocks and unmaps the block.
        sodium_free(UnsafeMutableRawPointer(mutating: bytes))
    }

    /// `sodium_init`: thread-safe and idempotent (1 = already done). Fails only without a
    /// source of randomness.
    static func initializeSodium() throws(SwapError) {
        guard sodium_init() >= 0 else {
            throw SwapError(
                .ioError, "libsodium could not start (sodium_init failed: no source of randomness?); encrypted swap is unavailable")
        }
    }

    /// `count` random bytes from libsodium (the system's CSPRNG).
    static func randomBytes(_ count: Int) throws(SwapError) -> [UInt8] {
        try initializeSodium()
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, count) }
        return bytes
    }
}

// The key is written once, in `init`, before the value can be shared, and only read afterwards
// (the block is even read-only in hardware).
extension _PageKey: @unchecked Sendable {}
