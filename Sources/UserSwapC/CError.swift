import CUserSwapAPI
import Glibc
import UserSwap

/// The C interface's error codes (`userswap_error` in include/userswap.h): a coarser set than
/// `SwapError.Code`, one per thing a C caller can do about it. The full message goes to the
/// calling thread's last error (`userswap_last_error`).
enum CError {
    /// The C code of an engine error.
    static func code(_ error: SwapError) -> userswap_error {
        switch error.code {
        case .notASwapFile, .wrongPageSize, .unsupportedVersion, .tooSmall, .badPageListOutOfRange:
            USERSWAP_EFORMAT
        case .fileInUse, .fileChanged, .fileExists: USERSWAP_EBUSY
        case .symbolicLink, .notOwner, .unsafePermissions, .permissionDenied: USERSWAP_EACCES
        case .noSuchFile: USERSWAP_ENOENT
        case .diskFull, .swapFull: USERSWAP_ENOSPC
        // The C interface has no async calls: `.cancelled` never reaches it.
        case .invalidArgument, .outOfRange, .isDirectory, .cancelled: USERSWAP_EINVAL
        case .ioError, .deviceGone, .noEntry, .countOverflow: USERSWAP_EIO
        case .outOfMemory, .pinLimit: USERSWAP_ENOMEM
        case .unsupported: USERSWAP_ENOTSUP
        }
    }

    /// Static texts for `userswap_strerror`, indexed by code; never freed.
    // Unsafe: written once at initialization, then only read.
    nonisolated(unsafe) static let names: [UnsafePointer<CChar>] =
        ([
            "success", "invalid argument", "out of memory: no frame of the budget can be freed",
            "no space left on the swap devices", "swap device I/O error", "no such file or directory",
            "permission denied", "swap file in use", "not a usable swap file",
            "not supported by this kernel", "bad value in the environment",
        ] as [String]).map { UnsafePointer(strdup($0)!) }

    // Unsafe: written once at initialization, then only read.
    nonisolated(unsafe) static let unknown = UnsafePointer(strdup("unknown error")!)

    /// Runs one C call: returns USERSWAP_OK, or records the error as the thread's last error and
    /// returns its code.
    static func call(_ body: () throws(SwapError) -> Void) -> Int32 {
        do {
            try body()
            return Int32(USERSWAP_OK.rawValue)
        } catch {
            LastError.set(error.description(for: .c))
            return Int32(code(error).rawValue)
        }
    }

    /// An error of the C interface itself (a bad argument, an environment value).
    static func fail(_ code: userswap_error, _ message: String) -> Int32 {
        LastError.set(message)
        return Int32(code.rawValue)
    }
}

/// The calling thread's last error message (as `dlerror`): a C string per thread, in a pthread
/// key whose destructor frees it when the thread ends.
enum LastError {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let made = pthread_key_create(&key) { free($0) }
        require(made == 0, "pthread_key_create: \(made)")
        return key
    }()

    // Unsafe: written once at initialization, then only read.
    nonisolated(unsafe) static let empty = UnsafePointer(strdup("")!)

    static func set(_ message: String) {
        free(pthread_getspecific(key))
        pthread_setspecific(key, strdup(message))
    }

    static var message: UnsafePointer<CChar> {
        guard let text = pthread_getspecific(key) else { return empty }
        return UnsafePointer(text.assumingMemoryBound(to: CChar.self))
    }
}
