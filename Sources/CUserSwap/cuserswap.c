#define _GNU_SOURCE
#include "cuserswap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int cus_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tsp = &ts;
    }
    long r = syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, tsp, NULL, 0);
    return r < 0 ? -errno : 0;
}

int cus_futex_wake(uint32_t *word, int count) {
    long r = syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
    return r < 0 ? -errno : (int)r;
}

static uint32_t next_thread_slot = 0;
static __thread uint32_t thread_slot_plus_one = 0;

uint32_t cus_thread_slot(void) {
    if (thread_slot_plus_one == 0)
        thread_slot_plus_one = __atomic_fetch_add(&next_thread_slot, 1, __ATOMIC_RELAXED) + 1;
    return thread_slot_plus_one - 1;
}

int32_t cus_gettid(void) { return (int32_t)syscall(SYS_gettid); }

int cus_open(const char *path, int flags, uint32_t mode) {
    int r = open(path, flags, (mode_t)mode);
    return r < 0 ? -errno : r;
}

int cus_fallocate(int fd, int mode, int64_t offset, int64_t length) {
    return fallocate(fd, mode, offset, length) < 0 ? -errno : 0;
}

int cus_punch_hole(int fd, int64_t offset, int64_t length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) < 0 ? -errno : 0;
}

int cus_flock_exclusive_nonblocking(int fd) {
    return flock(fd, LOCK_EX | LOCK_NB) < 0 ? -errno : 0;
}

int cus_fcntl_getfl(int fd) {
    int r = fcntl(fd, F_GETFL);
    return r < 0 ? -errno : r;
}

int cus_ioctl_ptr(int fd, unsigned long request, void *arg) {
    int r = ioctl(fd, request, arg);
    return r < 0 ? -errno : r;
}

int cus_memfd_create(const char *name) {
    int r = memfd_create(name, MFD_CLOEXEC);
    return r < 0 ? -errno : r;
}

int cus_MAP_NORESERVE(void) { return MAP_NORESERVE; }
int cus_O_DIRECT(void) { return O_DIRECT; }
int cus_MADV_DONTNEED(void) { return MADV_DONTNEED; }
int cus_MADV_REMOVE(void) { return MADV_REMOVE; }

void cus_line_buffer_stdout(void) { setvbuf(stdout, NULL, _IOLBF, 0); }
int cus_stdout_is_tty(void) { return isatty(STDOUT_FILENO); }
int cus_stderr_is_tty(void) { return isatty(STDERR_FILENO); }

uint64_t cus_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
