// The C shim: only what Swift cannot import (variadic syscalls, ioctl/fcntl, macros, futex,
// thread-local storage). Every symbol is prefixed `cus_`; every function returns 0 / a value on
// success and -errno on failure, so Swift never reads errno after the fact. No logic lives here.
#ifndef CUSERSWAP_H
#define CUSERSWAP_H

#include <sys/ioctl.h>          // before <linux/userfaultfd.h>, which expands _IOWR
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: futex

/// Sleeps while `*word == expected`. `timeout_ns < 0` waits forever. Returns 0 or -errno
/// (-EAGAIN: the word changed before sleeping; -ETIMEDOUT; -EINTR).
int cus_futex_wait(uint32_t *_Nonnull word, uint32_t expected, int64_t timeout_ns);
/// Wakes up to `count` threads sleeping on `word`. Returns the number woken or -errno.
int cus_futex_wake(uint32_t *_Nonnull word, int count);

// MARK: threads

/// A small dense number for the calling thread (0, 1, 2, ... in order of first call), kept in a
/// C thread-local so that sharded structures can pick a shard without a syscall.
uint32_t cus_thread_slot(void);
/// The kernel's id of the calling thread.
int32_t cus_gettid(void);

// MARK: files

/// open(2) with a mode (variadic in libc). Returns the fd or -errno.
int cus_open(const char *_Nonnull path, int flags, uint32_t mode);
/// fallocate(2). Returns 0 or -errno.
int cus_fallocate(int fd, int mode, int64_t offset, int64_t length);
/// Punches a hole (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE). Returns 0 or -errno.
int cus_punch_hole(int fd, int64_t offset, int64_t length);
/// flock(2) with LOCK_EX | LOCK_NB. Returns 0 or -errno (-EWOULDBLOCK when held elsewhere).
int cus_flock_exclusive_nonblocking(int fd);
/// fcntl(fd, F_GETFL). Returns the flags or -errno.
int cus_fcntl_getfl(int fd);
/// ioctl(fd, request, arg). Returns the result or -errno.
int cus_ioctl_ptr(int fd, unsigned long request, void *_Nullable arg);

// MARK: memory

/// memfd_create(2) with MFD_CLOEXEC. Returns the fd or -errno.
int cus_memfd_create(const char *_Nonnull name);
/// Constants that do not import as Swift values.
int cus_MAP_NORESERVE(void);
int cus_O_DIRECT(void);
int cus_MADV_DONTNEED(void);
int cus_MADV_REMOVE(void);

// MARK: stdio

/// Line-buffers stdout so that progress reaches a pipe while a run is going (Swift 6 cannot touch
/// the C global `stdout`).
void cus_line_buffer_stdout(void);
/// isatty(STDOUT_FILENO / STDERR_FILENO).
int cus_stdout_is_tty(void);
int cus_stderr_is_tty(void);

// MARK: time

/// CLOCK_MONOTONIC in nanoseconds.
uint64_t cus_monotonic_ns(void);

#ifdef __cplusplus
}
#endif
#endif
