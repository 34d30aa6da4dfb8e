import CUserSwapURing
import Glibc

/// An io_uring (through liburing's wrappers in `CUserSwapURing`), owned by one engine. The
/// submission side is not thread-safe (liburing's is not): its owner serializes `prepare…` and
/// `submit` under a lock. The completion side (`wait`) may run on another thread at the same
/// time: the two queues are independent.
final class IORing {
    // Sound: created in init, destroyed only in deinit, when no thread uses the ring any more.
    private let ring: OpaquePointer

    /// Sets up a ring of `entries` submission entries; throws what the kernel answered
    /// (ENOSYS: no io_uring; EPERM: disabled by sysctl or seccomp; ENOMEM).
    init(entries: Int) throws(Errno) {
        var out: OpaquePointer?
        let e = cus_ring_create(UInt32(entries), &out)
        guard e == 0, let out else { throw Errno(rawValue: -e) }
        ring = out
    }

    deinit { cus_ring_destroy(ring) }

    /// Queues a readv or writev of `count` iovecs at byte `offset` of `fd`, tagged `tag`.
    /// False when the submission queue is full. The iovecs must stay put until completion.
    func prepare(write: Bool, fd: Int32, vectors: UnsafePointer<iovec>, count: Int, offset: Int64, tag: UInt64) -> Bool {
        cus_ring_prep_rw(ring, write ? 1 : 0, fd, vectors, UInt32(count), offset, tag) == 0
    }

    /// Queues a no-op tagged `tag`.
    func prepareNop(tag: UInt64) -> Bool {
        cus_ring_prep_nop(ring, tag) == 0
    }

    /// Hands the queued entries to the kernel; returns how many it took.
    func submit() throws(Errno) -> Int {
        try Int(Syscalls.negatedErrno { cus_ring_submit(ring) })
    }

    /// Waits for one completion: its tag and result (bytes moved, or -errno).
    func wait() throws(Errno) -> (tag: UInt64, result: Int32) {
        var tag: UInt64 = 0
        var result: Int32 = 0
        _ = try Syscalls.negatedErrno { cus_ring_wait(ring, &tag, &result) }
        return (tag, result)
    }

    /// One completion if one is ready.
    func poll() -> (tag: UInt64, result: Int32)? {
        var tag: UInt64 = 0
        var result: Int32 = 0
        return cus_ring_peek(ring, &tag, &result) == 0 ? (tag, result) : nil
    }
}

// Submission is serialized by the owner's lock; completion is one thread's (see the type).
extension IORing: @unchecked Sendable {}
