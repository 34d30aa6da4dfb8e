#define _GNU_SOURCE
#include "cuserswap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/userfaultfd.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <ucontext.h>
#include <sys/epoll.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
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
        /* Relaxed: only a unique number is needed; it orders nothing */
        thread_slot_plus_one = __atomic_fetch_add(&next_thread_slot, 1, __ATOMIC_RELAXED) + 1;
    return thread_slot_plus_one - 1;
}

int32_t cus_gettid(void) { return (int32_t)syscall(SYS_gettid); }

static __thread uint64_t thread_held_locks[65];

uint64_t *cus_thread_held_locks(void) { return thread_held_locks; }

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

int cus_renameat2(int from_dir, const char *from, int to_dir, const char *to, unsigned int flags) {
    return renameat2(from_dir, from, to_dir, to, flags) < 0 ? -errno : 0;
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
int cus_malloc_set_arena_max(int arenas) { return mallopt(M_ARENA_MAX, arenas); }
int cus_O_DIRECT(void) { return O_DIRECT; }
int cus_O_TMPFILE(void) { return O_TMPFILE; }
int cus_RENAME_NOREPLACE(void) { return RENAME_NOREPLACE; }
int cus_MADV_DONTNEED(void) { return MADV_DONTNEED; }
int cus_MADV_REMOVE(void) { return MADV_REMOVE; }

int cus_madvise(void *address, size_t length, int advice) {
    return madvise(address, length, advice) < 0 ? -errno : 0;
}

#ifndef PIDFD_SELF
#define PIDFD_SELF -10000     // the calling thread (its memory is the process's); older headers lack it
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif

ssize_t cus_process_madvise_self(const struct iovec *ranges, size_t count, int advice) {
    long r = syscall(SYS_process_madvise, PIDFD_SELF, ranges, count, advice, 0u);
    return r < 0 ? -errno : r;
}

#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)     // Linux 6.5; older headers lack it
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

int cus_uffd_open(int user_mode_only, int *via_device) {
    int flags = O_CLOEXEC | O_NONBLOCK | (user_mode_only ? UFFD_USER_MODE_ONLY : 0);
    *via_device = 0;
    int fd = (int)syscall(SYS_userfaultfd, flags);
    if (fd >= 0) return fd;
    int first = errno;
    *via_device = 1;
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0) return -(errno == ENOENT ? first : errno);
    fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
    int e = errno;
    close(dev);
    return fd < 0 ? -e : fd;
}

int cus_uffd_api(int fd, uint64_t features, uint64_t *granted, uint64_t *ioctls) {
    struct uffdio_api api = { .api = UFFD_API, .features = features };
    if (ioctl(fd, UFFDIO_API, &api) < 0) return -errno;
    *granted = api.features;
    *ioctls = api.ioctls;
    return 0;
}

int cus_uffd_register(int fd, uint64_t start, uint64_t len, uint64_t mode, uint64_t *ioctls) {
    struct uffdio_register r = { .range = { .start = start, .len = len }, .mode = mode };
    if (ioctl(fd, UFFDIO_REGISTER, &r) < 0) return -errno;
    *ioctls = r.ioctls;
    return 0;
}

int cus_uffd_unregister(int fd, uint64_t start, uint64_t len) {
    struct uffdio_range r = { .start = start, .len = len };
    return ioctl(fd, UFFDIO_UNREGISTER, &r) < 0 ? -errno : 0;
}

int cus_uffd_continue(int fd, uint64_t start, uint64_t len, int mode) {
    struct uffdio_continue c = { .range = { .start = start, .len = len },
                                 .mode = ((mode & 1) ? UFFDIO_CONTINUE_MODE_WP : 0) |
                                         ((mode & 2) ? UFFDIO_CONTINUE_MODE_DONTWAKE : 0) };
    return ioctl(fd, UFFDIO_CONTINUE, &c) < 0 ? -errno : 0;
}

int cus_uffd_writeprotect(int fd, uint64_t start, uint64_t len, int mode) {
    struct uffdio_writeprotect w = { .range = { .start = start, .len = len },
                                     .mode = ((mode & 1) ? UFFDIO_WRITEPROTECT_MODE_WP : 0) |
                                             ((mode & 2) ? UFFDIO_WRITEPROTECT_MODE_DONTWAKE : 0) };
    return ioctl(fd, UFFDIO_WRITEPROTECT, &w) < 0 ? -errno : 0;
}

int cus_uffd_wake(int fd, uint64_t start, uint64_t len) {
    struct uffdio_range r = { .start = start, .len = len };
    return ioctl(fd, UFFDIO_WAKE, &r) < 0 ? -errno : 0;
}

int cus_uffd_read_faults(int fd, cus_uffd_fault *out, int max) {
    struct uffd_msg msgs[64];
    if (max > 64) max = 64;
    ssize_t n = read(fd, msgs, sizeof(struct uffd_msg) * (size_t)max);
    if (n < 0) return -errno;
    int faults = 0;
    for (ssize_t i = 0; i < n / (ssize_t)sizeof(struct uffd_msg); i++) {
        if (msgs[i].event != UFFD_EVENT_PAGEFAULT) continue;
        out[faults].address = msgs[i].arg.pagefault.address;
        out[faults].flags = msgs[i].arg.pagefault.flags;
        out[faults].thread = (int32_t)msgs[i].arg.pagefault.feat.ptid;
        faults++;
    }
    return faults;
}

uint64_t cus_UFFD_FEATURE_MISSING_SHMEM(void) { return UFFD_FEATURE_MISSING_SHMEM; }
uint64_t cus_UFFD_FEATURE_MINOR_SHMEM(void) { return UFFD_FEATURE_MINOR_SHMEM; }
uint64_t cus_UFFD_FEATURE_WP_SHMEM(void) { return UFFD_FEATURE_WP_HUGETLBFS_SHMEM; }
uint64_t cus_UFFD_FEATURE_THREAD_ID(void) { return UFFD_FEATURE_THREAD_ID; }
uint64_t cus_UFFD_FEATURE_SIGBUS(void) { return UFFD_FEATURE_SIGBUS; }
uint64_t cus_UFFD_PAGEFAULT_FLAG_WRITE(void) { return UFFD_PAGEFAULT_FLAG_WRITE; }
uint64_t cus_UFFD_PAGEFAULT_FLAG_WP(void) { return UFFD_PAGEFAULT_FLAG_WP; }
uint64_t cus_UFFD_PAGEFAULT_FLAG_MINOR(void) { return UFFD_PAGEFAULT_FLAG_MINOR; }

int cus_eventfd(void) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int cus_epoll_pair(int exclusive, int shared) {
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) return -errno;
    struct epoll_event a = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data = { .fd = exclusive } };
    struct epoll_event b = { .events = EPOLLIN, .data = { .fd = shared } };
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, exclusive, &a) < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, shared, &b) < 0) {
        int e = errno;
        close(epfd);
        return -e;
    }
    return epfd;
}

int cus_epoll_remove(int epfd, int fd) {
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) < 0 ? -errno : 0;
}

int cus_epoll_wait_pair(int epfd, int exclusive, int timeout_ms) {
    struct epoll_event events[2];
    int n = epoll_wait(epfd, events, 2, timeout_ms);
    if (n < 0) return -errno;
    int mask = 0;
    for (int i = 0; i < n; i++) mask |= events[i].data.fd == exclusive ? 1 : 2;
    return mask;
}

int cus_tgkill(int32_t tid, int signal) {
    return syscall(SYS_tgkill, getpid(), tid, signal) < 0 ? -errno : 0;
}

static __thread sigjmp_buf *cus_probe_jump;
static _Atomic(cus_fault_resolver) cus_resolver;
static _Atomic(cus_crash_hook) cus_crash;
static struct sigaction cus_previous_bus;
static pthread_once_t cus_bus_once = PTHREAD_ONCE_INIT;

/// The process's SIGBUS handler: a fault on a transparent region in faulting-thread mode is
/// resolved here, on the thread that took it, and the access is re-executed on return. Any
/// other SIGBUS goes to an armed probe, or to the handler installed before this one (the
/// default action when there was none).
static void cus_bus_dispatch(int signal, siginfo_t *info, void *context) {
    int saved = errno;
    cus_fault_resolver resolver = atomic_load_explicit(&cus_resolver, memory_order_acquire);
    if (resolver && info && info->si_code > 0) {
        int write = -1;
#if defined(__x86_64__)
        // The page-fault error code: bit 1 is set for a write.
        write = (((ucontext_t *)context)->uc_mcontext.gregs[REG_ERR] & 2) ? 1 : 0;
#endif
        if (resolver(info->si_addr, write)) {
            errno = saved;
            return;
        }
    }
    if (cus_probe_jump) siglongjmp(*cus_probe_jump, signal);
    // Fatal from here on: see `cus_crash_dispatch`. With the regions unregistered the process
    // must not go on (it would read zeros where its pages are swapped out), so when the
    // handler before ours returns, the default action follows.
    cus_crash_hook crash = atomic_load_explicit(&cus_crash, memory_order_acquire);
    if (crash) crash();
    if (cus_previous_bus.sa_flags & SA_SIGINFO) {
        if (cus_previous_bus.sa_sigaction) cus_previous_bus.sa_sigaction(signal, info, context);
        if (!crash) return;
    } else if (cus_previous_bus.sa_handler != SIG_DFL && cus_previous_bus.sa_handler != SIG_IGN) {
        cus_previous_bus.sa_handler(signal);
        if (!crash) return;
    }
    // What the kernel would have done: a fault re-executes into the default action, a
    // signal sent by a thread is raised again with it.
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigaction(SIGBUS, &fallback, NULL);
    if (crash || (info && info->si_code <= 0)) raise(SIGBUS);
}

static void cus_bus_install_once(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = cus_bus_dispatch;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_RESTART;
    sigaction(SIGBUS, &action, &cus_previous_bus);
}

void cus_sigbus_install(cus_fault_resolver resolver) {
    if (resolver) atomic_store_explicit(&cus_resolver, resolver, memory_order_release);
    pthread_once(&cus_bus_once, cus_bus_install_once);
}

/// The fatal signals besides SIGBUS (which `cus_bus_dispatch` takes), and the handlers found
/// before ours.
static const int cus_fatal_signals[] = { SIGSEGV, SIGABRT, SIGILL, SIGFPE, SIGTRAP };
static struct sigaction cus_previous_fatal[sizeof cus_fatal_signals / sizeof cus_fatal_signals[0]];
static pthread_once_t cus_crash_once = PTHREAD_ONCE_INIT;

/// A fatal signal: the hook runs first (what must not block whatever handles the crash next),
/// then the handler installed before this one, or the default action.
static void cus_crash_dispatch(int signal, siginfo_t *info, void *context) {
    int saved = errno;
    size_t i = 0;
    while (i < sizeof cus_fatal_signals / sizeof cus_fatal_signals[0] && cus_fatal_signals[i] != signal) i++;
    if (i == sizeof cus_fatal_signals / sizeof cus_fatal_signals[0]) return;
    struct sigaction *previous = &cus_previous_fatal[i];
    // A signal the process ignored (sent, not a fault) stays ignored: no crash.
    if (!(previous->sa_flags & SA_SIGINFO) && previous->sa_handler == SIG_IGN) return;
    cus_crash_hook crash = atomic_load_explicit(&cus_crash, memory_order_acquire);
    if (crash) crash();
    if (previous->sa_flags & SA_SIGINFO) {
        if (previous->sa_sigaction) previous->sa_sigaction(signal, info, context);
    } else if (previous->sa_handler != SIG_DFL) {
        previous->sa_handler(signal);
    }
    // Then the default action, whatever the handler before did: with the regions unregistered
    // the process must not go on (a handler that returns expects the fault to come again, and
    // a page swapped out would now read as zeros). Raised again, pending while this handler
    // runs (the signal is blocked here) and taken on return, also for a trap whose return
    // would go on past it.
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigaction(signal, &fallback, NULL);
    raise(signal);
    errno = saved;
}

static void cus_crash_install_once(void) {
    for (size_t i = 0; i < sizeof cus_fatal_signals / sizeof cus_fatal_signals[0]; i++) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_sigaction = cus_crash_dispatch;
        sigemptyset(&action.sa_mask);
        // On the alternate stack when there is one: a stack overflow is a SIGSEGV too.
        action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
        sigaction(cus_fatal_signals[i], &action, &cus_previous_fatal[i]);
    }
}

void cus_crash_install(cus_crash_hook hook) {
    atomic_store_explicit(&cus_crash, hook, memory_order_release);
    cus_sigbus_install(NULL);
    pthread_once(&cus_crash_once, cus_crash_install_once);
}

int cus_probe_load(const volatile uint64_t *address, uint64_t *value) {
    cus_sigbus_install(NULL);
    sigjmp_buf jump;
    cus_probe_jump = &jump;
    int signal = sigsetjmp(jump, 1);
    if (signal == 0) *value = *address;
    cus_probe_jump = NULL;
    return signal;
}

int cus_probe_store(volatile uint64_t *address, uint64_t value) {
    cus_sigbus_install(NULL);
    sigjmp_buf jump;
    cus_probe_jump = &jump;
    int signal = sigsetjmp(jump, 1);
    if (signal == 0) *address = value;
    cus_probe_jump = NULL;
    return signal;
}

void cus_line_buffer_stdout(void) { setvbuf(stdout, NULL, _IOLBF, 0); }
int cus_stdout_is_tty(void) { return isatty(STDOUT_FILENO); }
int cus_stderr_is_tty(void) { return isatty(STDERR_FILENO); }

uint64_t cus_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// MARK: ThreadSanitizer

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CUS_THREAD_SANITIZER 1
#endif
#endif

#ifdef CUS_THREAD_SANITIZER
// The sanitizer runtime's annotation interface (compiler-rt's tsan_interface_ann).
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);

void cus_tsan_acquire(const void *address) { __tsan_acquire((void *)address); }
void cus_tsan_release(const void *address) { __tsan_release((void *)address); }
#else
void cus_tsan_acquire(const void *address) { (void)address; }
void cus_tsan_release(const void *address) { (void)address; }
#endif
