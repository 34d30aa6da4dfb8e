import CUserSwap
import Glibc

/// A userfaultfd (`userfaultfd(2)`): the kernel reports faults on registered ranges as messages
/// on it, and the faulting thread sleeps until the range is resolved through its ioctls.
///
/// Opened non-blocking: a blocking descriptor reports readable to `poll` and may then block in
/// `read` when another reader took the message. Every ioctl outcome that a fault handler meets
/// in normal operation (already mapped, mapping changing) is a result, not an error.
final class UserFaultFD: Sendable {
    let descriptor: FileDescriptor
    /// Faults from kernel code (a `read(2)` into the range) are ours too; false when only user
    /// mode faults could be asked for (an unprivileged process without the sysctl).
    let handlesKernelFaults: Bool
    /// The features the kernel granted.
    let features: UInt64

    static let featureMissingShmem = cus_UFFD_FEATURE_MISSING_SHMEM()
    static let featureMinorShmem = cus_UFFD_FEATURE_MINOR_SHMEM()
    static let featureWriteProtectShmem = cus_UFFD_FEATURE_WP_SHMEM()
    static let featureThreadID = cus_UFFD_FEATURE_THREAD_ID()
    static let featureSignal = cus_UFFD_FEATURE_SIGBUS()
    static let flagWrite = cus_UFFD_PAGEFAULT_FLAG_WRITE()
    static let flagWriteProtect = cus_UFFD_PAGEFAULT_FLAG_WP()
    static let flagMinor = cus_UFFD_PAGEFAULT_FLAG_MINOR()

    /// Register modes (UFFDIO_REGISTER_MODE_*).
    struct Modes: OptionSet {
        let rawValue: UInt64
        static let missing = Modes(rawValue: 1)
        static let writeProtect = Modes(rawValue: 2)
        static let minor = Modes(rawValue: 4)
    }

    /// Opens one and performs the API handshake, asking for shared-memory missing and minor
    /// faults (required) and write protection and thread ids (used when granted).
    ///
    /// With `signals`, faults are not queued: the faulting thread gets SIGBUS
    /// (`UFFD_FEATURE_SIGBUS`, required then). Kernel code cannot take a signal for its fault,
    /// so such a descriptor is opened for user-mode faults only, which needs no privilege.
    init(signals: Bool = false) throws(Failure) {
        var viaDevice: Int32 = 0
        var fd = cus_uffd_open(signals ? 1 : 0, &viaDevice)
        var kernelFaults = !signals
        if !signals && (fd == -EPERM || fd == -EACCES) {
            // Unprivileged: user-mode faults only are allowed without the sysctl.
            fd = cus_uffd_open(1, &viaDevice)
            kernelFaults = false
        }
        guard fd >= 0 else {
            let e = Errno(rawValue: -fd)
            switch e {
            case .notPermitted, .permissionDenied: throw Failure(.notPermitted, errno: e)
            default: throw Failure(.unavailable, errno: e)
            }
        }
        let owned = FileDescriptor(adopting: fd)
        handlesKernelFaults = kernelFaults
        let required = Self.featureMissingShmem | Self.featureMinorShmem | (signals ? Self.featureSignal : 0)
        let wanted = required | Self.featureWriteProtectShmem | (signals ? 0 : Self.featureThreadID)
        var granted: UInt64 = 0
        var ioctls: UInt64 = 0
        var r = cus_uffd_api(fd, wanted, &granted, &ioctls)
        if r == -EINVAL {
            // An older kernel refuses unknown features as a whole: ask for the required ones.
            // (The first handshake attempt consumed this descriptor's API state only on success.)
            r = cus_uffd_api(fd, required, &granted, &ioctls)
        }
        guard r == 0 else {
            throw Failure(.handshakeFailed, errno: Errno(rawValue: -r))
        }
        guard granted & required == required else {
            throw Failure(.featuresMissing)
        }
        features = granted
        descriptor = owned
    }

    var fd: Int32 { descriptor.rawValue }

    /// Whether write-protect faults on shared memory are available (dirty tracking without a
    /// copy of every page read back in).
    var supportsWriteProtect: Bool { features & Self.featureWriteProtectShmem != 0 }

    func register(_ range: UnsafeMutableRawBufferPointer, modes: Modes) throws(Failure) {
        var ioctls: UInt64 = 0
        let r = cus_uffd_register(fd, UInt64(UInt(bitPattern: range.baseAddress)), UInt64(range.count), modes.rawValue, &ioctls)
        guard r == 0 else {
            throw Failure(.registerFailed(bytes: range.count), errno: Errno(rawValue: -r))
        }
    }

    func unregister(_ range: UnsafeMutableRawBufferPointer) {
        _ = cus_uffd_unregister(fd, UInt64(UInt(bitPattern: range.baseAddress)), UInt64(range.count))
    }

    /// What a resolving ioctl did.
    enum Resolution: Equatable {
        case resolved
        /// The page was already mapped (another handler resolved it).
        case alreadyMapped
        /// The mapping is changing (the range is being unmapped): try again or give up.
        case retry
        case failed(Errno)
    }

    /// Maps the page of the shared file at `address` (already in the page cache) and wakes the
    /// threads waiting on it; `writeProtect` maps it read-only under uffd-wp.
    /// With `wake: false` the threads sleep on until `wake(_:length:)`.
    func resolveMinor(at address: UnsafeMutableRawPointer, length: Int, writeProtect: Bool, wake: Bool = true) -> Resolution {
        Self.resolution(cus_uffd_continue(fd, UInt64(UInt(bitPattern: address)), UInt64(length), (writeProtect ? 1 : 0) | (wake ? 0 : 2)))
    }

    /// Sets or clears uffd write protection; clearing wakes the waiting writers unless `wake`
    /// is false.
    func writeProtect(_ address: UnsafeMutableRawPointer, length: Int, _ protect: Bool, wake: Bool = true) -> Resolution {
        Self.resolution(cus_uffd_writeprotect(fd, UInt64(UInt(bitPattern: address)), UInt64(length), (protect ? 1 : 0) | (wake ? 0 : 2)))
    }

    func wake(_ address: UnsafeMutableRawPointer, length: Int) {
        _ = cus_uffd_wake(fd, UInt64(UInt(bitPattern: address)), UInt64(length))
    }

    /// Reads pending faults into `buffer`; 0 when none is pending.
    func readFaults(into buffer: UnsafeMutablePointer<cus_uffd_fault>, max: Int) throws(Failure) -> Int {
        let r = cus_uffd_read_faults(fd, buffer, Int32(max))
        if r >= 0 { return Int(r) }
        if r == -EAGAIN || r == -EINTR { return 0 }
        throw Failure(.readFailed, errno: Errno(rawValue: -r))
    }

    private static func resolution(_ r: Int32) -> Resolution {
        switch r {
        case 0: .resolved
        case -EEXIST: .alreadyMapped
        case -EAGAIN, -EINTR: .retry
        default: .failed(Errno(rawValue: -r))
        }
    }
}
