#include "cus_uring.h"

#include <errno.h>
#include <stdlib.h>
#include <liburing.h>

struct cus_ring { struct io_uring ring; };

int cus_ring_create(unsigned entries, cus_ring **out) {
    cus_ring *r = calloc(1, sizeof *r);
    if (!r) return -ENOMEM;
    int e = io_uring_queue_init(entries, &r->ring, 0);
    if (e < 0) { free(r); return e; }
    *out = r;
    return 0;
}

void cus_ring_destroy(cus_ring *r) {
    io_uring_queue_exit(&r->ring);
    free(r);
}

int cus_ring_prep_rw(cus_ring *r, int write, int fd, const struct iovec *iov, unsigned count,
                     int64_t offset, uint64_t user_data) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) return -EBUSY;
    if (write) io_uring_prep_writev(sqe, fd, iov, count, (__u64)offset);
    else io_uring_prep_readv(sqe, fd, iov, count, (__u64)offset);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int cus_ring_prep_nop(cus_ring *r, uint64_t user_data) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) return -EBUSY;
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int cus_ring_submit(cus_ring *r) { return io_uring_submit(&r->ring); }

int cus_ring_wait(cus_ring *r, uint64_t *user_data, int32_t *result) {
    struct io_uring_cqe *cqe = NULL;
    int e = io_uring_wait_cqe(&r->ring, &cqe);
    if (e < 0) return e;
    *user_data = io_uring_cqe_get_data64(cqe);
    *result = cqe->res;
    io_uring_cqe_seen(&r->ring, cqe);
    return 0;
}

int cus_ring_peek(cus_ring *r, uint64_t *user_data, int32_t *result) {
    struct io_uring_cqe *cqe = NULL;
    int e = io_uring_peek_cqe(&r->ring, &cqe);
    if (e < 0) return e;
    *user_data = io_uring_cqe_get_data64(cqe);
    *result = cqe->res;
    io_uring_cqe_seen(&r->ring, cqe);
    return 0;
}
