// Thin wrappers over liburing, whose submission helpers are `static inline` and whose ring is a
// struct Swift would have to mirror: an opaque ring, one call per helper, every result 0 / a
// value or -errno. No logic lives here; the I/O engine (Swift) decides what to submit and when.
#ifndef CUS_URING_H
#define CUS_URING_H

#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/// An io_uring instance (liburing's `struct io_uring`), heap-allocated behind an opaque pointer.
typedef struct cus_ring cus_ring;

/// io_uring_queue_init with `entries` submission entries. Stores the ring in `*out` and returns
/// 0, or returns -errno (-ENOSYS: no io_uring in this kernel; -EPERM: disabled by
/// kernel.io_uring_disabled or a seccomp filter; -ENOMEM).
int cus_ring_create(unsigned entries, cus_ring *_Nullable *_Nonnull out);
/// io_uring_queue_exit and free. Requests still in flight are cancelled by the kernel.
void cus_ring_destroy(cus_ring *_Nonnull ring);
/// Queues a readv (write = 0) or writev (write = 1) of `count` iovecs at byte `offset` of `fd`,
/// tagged `user_data`. Returns 0, or -EBUSY when the submission queue is full.
int cus_ring_prep_rw(cus_ring *_Nonnull ring, int write, int fd, const struct iovec *_Nonnull iov,
                     unsigned count, int64_t offset, uint64_t user_data);
/// Queues a no-op tagged `user_data` (wakes the completion thread). 0 or -EBUSY.
int cus_ring_prep_nop(cus_ring *_Nonnull ring, uint64_t user_data);
/// io_uring_submit: the number of entries submitted, or -errno.
int cus_ring_submit(cus_ring *_Nonnull ring);
/// Waits for one completion (io_uring_wait_cqe), stores its tag and result and marks it seen.
/// Returns 0 or -errno (-EINTR).
int cus_ring_wait(cus_ring *_Nonnull ring, uint64_t *_Nonnull user_data, int32_t *_Nonnull result);
/// Takes one completion if there is one (io_uring_peek_cqe). 0, or -EAGAIN when none is ready.
int cus_ring_peek(cus_ring *_Nonnull ring, uint64_t *_Nonnull user_data, int32_t *_Nonnull result);

#ifdef __cplusplus
}
#endif
#endif
