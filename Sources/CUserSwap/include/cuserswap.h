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
/// The calling thread's record of the locks it holds, for the debug-build lock-order check
/// (Sources/UserSwap/Support/LockOrder.swift, which gives the words their meaning): 65 words of
/// C thread-local storage, zero at thread start, which Swift cannot declare.
uint64_t *_Nonnull cus_thread_held_locks(void);

// MARK: files

/// open(2) with a mode (variadic in libc). Returns the fd or -errno.
int cus_open(const char *_Nonnull path, int flags, uint32_t mode);
/// fallocate(2). Returns 0 or -errno.
int cus_fallocate(int fd, int mode, int64_t offset, int64_t length);
/// Punches a hole (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE). Returns 0 or -errno.
int cus_punch_hole(int fd, int64_t offset, int64_t length);
/// flock(2) with LOCK_EX | LOCK_NB. Returns 0 or -errno (-EWOULDBLOCK when held elsewhere).
int cus_flock_exclusive_nonblocking(int fd);
/// renameat2(2) (glibc declares it only with _GNU_SOURCE); `flags` 1 is RENAME_NOREPLACE.
/// Returns 0 or -errno (-EEXIST: `to` exists; -EINVAL: the file system cannot honour `flags`).
int cus_renameat2(int from_dir, const char *_Nonnull from, int to_dir, const char *_Nonnull to, unsigned int flags);
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
int cus_O_TMPFILE(void);
int cus_RENAME_NOREPLACE(void);
int cus_MADV_DONTNEED(void);
int cus_MADV_REMOVE(void);
/// madvise(2) without errno: 0 or -errno (for a signal handler, where Swift must not read errno
/// after another call may have changed it).
int cus_madvise(void *_Nonnull address, size_t length, int advice);
/// process_madvise(2) on the calling process's memory (`PIDFD_SELF`): `advice` over `count`
/// ranges in one call. Returns the bytes advised (fewer than asked when a range failed) or -errno
/// (-EINVAL, -EBADF, -ENOSYS, -EPERM on kernels that do not accept it).
ssize_t cus_process_madvise_self(const struct iovec *_Nonnull ranges, size_t count, int advice);
/// mallopt(M_ARENA_MAX, arenas) (`malloc.h` is not in Swift's Glibc module). 1 on success, 0 on
/// failure, as mallopt.
int cus_malloc_set_arena_max(int arenas);

// MARK: userfaultfd

/// A userfaultfd, non-blocking and close-on-exec: the syscall first, then `/dev/userfaultfd`.
/// `user_mode_only` limits it to faults from user code (what an unprivileged process may ask
/// for). Returns the fd or -errno of the last attempt; `*via_device` tells which path succeeded.
int cus_uffd_open(int user_mode_only, int *_Nonnull via_device);
/// The UFFDIO_API handshake asking for `features`; returns 0 or -errno and the features and
/// ioctls the kernel grants.
int cus_uffd_api(int fd, uint64_t features, uint64_t *_Nonnull granted, uint64_t *_Nonnull ioctls);
/// Registers [start, start+len) for missing (1), write-protect (2) and minor (4) faults.
int cus_uffd_register(int fd, uint64_t start, uint64_t len, uint64_t mode, uint64_t *_Nonnull ioctls);
int cus_uffd_unregister(int fd, uint64_t start, uint64_t len);
/// Maps the page-cache pages of a range (minor-fault resolution); `write_protect` maps them
/// read-only under uffd-wp (`mode` bit 0); bit 1 leaves the faulting threads asleep (wake them
/// with `cus_uffd_wake`). Returns 0 or -errno (-EEXIST: already mapped).
int cus_uffd_continue(int fd, uint64_t start, uint64_t len, int mode);
/// Sets (`mode` bit 0) or clears write protection of a range; clearing wakes the faulters
/// unless `mode` bit 1 is set.
int cus_uffd_writeprotect(int fd, uint64_t start, uint64_t len, int mode);
/// Wakes the threads waiting on faults in a range.
int cus_uffd_wake(int fd, uint64_t start, uint64_t len);
/// One page fault as read from a userfaultfd.
typedef struct {
    uint64_t address;
    uint64_t flags;     // UFFD_PAGEFAULT_FLAG_*
    int32_t thread;     // the faulting thread's id (UFFD_FEATURE_THREAD_ID), 0 if unknown
} cus_uffd_fault;
/// Reads up to `max` pending messages; page faults go to `out` (other events are skipped).
/// Returns the number of faults, or -errno (-EAGAIN: nothing pending).
int cus_uffd_read_faults(int fd, cus_uffd_fault *_Nonnull out, int max);
/// Feature, mode and flag numbers the Swift side needs.
uint64_t cus_UFFD_FEATURE_MISSING_SHMEM(void);
uint64_t cus_UFFD_FEATURE_MINOR_SHMEM(void);
uint64_t cus_UFFD_FEATURE_WP_SHMEM(void);
uint64_t cus_UFFD_FEATURE_THREAD_ID(void);
uint64_t cus_UFFD_FEATURE_SIGBUS(void);
uint64_t cus_UFFD_PAGEFAULT_FLAG_WRITE(void);
uint64_t cus_UFFD_PAGEFAULT_FLAG_WP(void);
uint64_t cus_UFFD_PAGEFAULT_FLAG_MINOR(void);
/// eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC). Returns the fd or -errno.
int cus_eventfd(void);
/// An epoll instance watching `exclusive` with EPOLLEXCLUSIVE (an event wakes one of the
/// threads that each wait on their own instance: no thundering herd) and `shared` normally.
/// Returns the epoll fd or -errno.
int cus_epoll_pair(int exclusive, int shared);
/// Stops watching `fd`. Returns 0 or -errno.
int cus_epoll_remove(int epfd, int fd);
/// Waits for an event; returns a bit mask (1: `exclusive` readable, 2: `shared` readable), 0 on
/// timeout, or -errno.
int cus_epoll_wait_pair(int epfd, int exclusive, int timeout_ms);
/// Sends `signal` to thread `tid` of this process.
int cus_tgkill(int32_t tid, int signal);
/// Resolves a fault at `address` on the faulting thread, from its SIGBUS handler; `write` is 1
/// for a store, 0 for a load, -1 when the architecture does not say. Returns nonzero when the
/// access may be re-executed, 0 when the signal is not this resolver's (or cannot be resolved).
typedef int (*cus_fault_resolver)(void *_Nullable address, int write);
/// Installs the process's SIGBUS handler (once; the handler found before it gets the signals it
/// does not take) and sets `resolver` when it is not NULL. The handler runs with SA_NODEFER.
void cus_sigbus_install(cus_fault_resolver _Nullable resolver);
/// Runs when the process gets a fatal signal, in its handler: async-signal-safe code only.
typedef void (*cus_crash_hook)(void);
/// Installs (once) handlers of SIGSEGV, SIGABRT, SIGILL, SIGFPE and SIGTRAP that run `hook`,
/// then pass the signal to the handler found before them, then take the default action (a
/// signal the process ignored stays ignored, with no hook); a SIGBUS that the SIGBUS handler
/// (`cus_sigbus_install`, installed too) neither resolves nor gives to a probe runs `hook` as
/// well, and ends the same way. The last hook set is the one.
void cus_crash_install(cus_crash_hook _Nonnull hook);
/// Loads the 8 bytes at `address` into `*value`, returning 0, or SIGBUS if the load raised it
/// (a transparent page that could not be brought in) instead of dying. For tests and probes:
/// the signal reaches the probe of the thread that took it when no resolver takes it.
int cus_probe_load(const volatile uint64_t *_Nonnull address, uint64_t *_Nonnull value);
/// Stores `value` at `address`, returning 0, or SIGBUS if the store raised it (as
/// `cus_probe_load`).
int cus_probe_store(volatile uint64_t *_Nonnull address, uint64_t value);

// MARK: ThreadSanitizer

/// Tells ThreadSanitizer that the calling thread acquired / is releasing the lock at `address`
/// (`__tsan_acquire` / `__tsan_release`), so that it orders the accesses made under a lock it
/// does not intercept. No-ops unless this file is compiled with -fsanitize=thread.
void cus_tsan_acquire(const void *_Nonnull address);
void cus_tsan_release(const void *_Nonnull address);

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
