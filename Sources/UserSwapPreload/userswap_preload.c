/*
 * libuserswap-preload.so: the LD_PRELOAD library of `userswap exec` (docs/EXEC.md).
 *
 * Before `main` (a constructor), it makes a space from the environment
 * (`userswap_space_from_env`: USERSWAP_MEMORY, USERSWAP_SWAP_DIR, USERSWAP_SWAP_SIZE, ...),
 * maps one transparent region the size of the budget and its swap, and gives that region to
 * mimalloc as its only arena (`mi_manage_os_memory`, with `mi_option_limit_os_alloc`): the
 * program's malloc family is mimalloc's, and its memory is UserSwap's. Large private anonymous
 * `mmap` calls of the program (the arenas of CPython's small-object allocator) come from the
 * same heap. With USERSWAP_EXEC_GROUP_MEMORY or USERSWAP_EXEC_GROUP_SWAP (`--group-limit`), the
 * region is charged to a memory group with those limits. The heap is no larger than what its
 * pages can occupy (budget and swap, or the group's limits), so a full heap is an ENOMEM from
 * malloc, not a fault that finds no room.
 *
 * Who allocates where. The engine (the Swift runtime, Foundation, Dispatch inside
 * libuserswap.so) calls malloc too, and must never get heap memory: a fault handler thread that
 * faults on the region it serves would wait for itself. So:
 * - before the heap exists (the dynamic loader, the engine's own initializers, the constructor
 *   itself) every call goes to glibc's allocator (`__libc_malloc`, ...);
 * - a thread-local depth marks the engine: set around every call into libuserswap, and in
 *   every thread created while it is set (`pthread_create` is wrapped), so the engine's
 *   threads (fault handlers, reclaim, I/O) always use glibc's allocator;
 * - `free`, `realloc` and `malloc_usable_size` choose by address: a pointer inside the region
 *   is mimalloc's, any other glibc's, whoever calls.
 * mimalloc is loaded with dlopen(RTLD_LOCAL): Debian's build exports malloc, __libc_malloc
 * and operator new, which must not take the place of glibc's for the engine.
 *
 * fork. The region is a shared memfd mapping whose pages the parent's engine moves; a forked
 * child has no engine threads and would share the parent's memory. The child (fork's child
 * handler) therefore takes its new allocations from glibc, ignores frees of heap memory, and
 * cannot touch the heap at all (PROT_NONE): a touch stops it with a message naming the cause.
 * fork followed by exec, vfork and posix_spawn (which share the parent's memory until exec)
 * work.
 *
 * At exit (a destructor) it writes a summary on stderr and, with USERSWAP_EXEC_REPORT, a JSON
 * report (docs/BENCH-JSON.md's keys).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <mimalloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <userswap.h>

#define EXPORT __attribute__((visibility("default")))

/* glibc's allocator, for the engine and for everything before the heap exists. */
extern void *__libc_malloc(size_t size);
extern void __libc_free(void *pointer);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

/* The exit status of a forked child that touched the heap, and of a failed start. */
#define EXIT_FORKED_HEAP 70
#define EXIT_START_FAILED 125

/* mimalloc's segments and arena blocks are 32 MiB, aligned to their size. */
#define HEAP_ALIGNMENT ((uintptr_t)32 << 20)
/* Private anonymous mmap calls of at least this size come from the heap. */
#define MMAP_FROM_HEAP_MIN ((size_t)128 << 10)

enum heap_state { HEAP_BOOT, HEAP_READY, HEAP_CHILD };

static _Atomic int state = HEAP_BOOT;
/* The region given to mimalloc; written once before `state` becomes HEAP_READY. */
static uintptr_t heap_low, heap_high;
static uintptr_t region_low, region_high;
static userswap_space *space;
/* With USERSWAP_EXEC_GROUP_MEMORY or USERSWAP_EXEC_GROUP_SWAP (`--group-limit`): the group the
 * heap is charged to, and its limits (USERSWAP_UNLIMITED for none). */
static userswap_group *group;
static uint64_t group_memory_limit = USERSWAP_UNLIMITED, group_swap_limit = USERSWAP_UNLIMITED;

/* > 0 on engine threads and while this library calls the engine. */
static __thread int engine_depth __attribute__((tls_model("initial-exec")));
/* > 0 while this thread is inside mimalloc (whose own mmap calls go to the kernel). */
static __thread int in_mimalloc __attribute__((tls_model("initial-exec")));

static struct {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
    void *(*malloc_aligned)(size_t, size_t);
    void *(*zalloc_aligned)(size_t, size_t);
    size_t (*usable_size)(const void *);
    bool (*manage_os_memory)(void *, size_t, bool, bool, bool, int);
    void (*option_set)(mi_option_t, long);
} mi;

static int (*real_pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);
static size_t (*real_malloc_usable_size)(void *);

/* What the report says. */
static struct timespec started;
static _Atomic int heap_full_reported;
/* Engine threads, for their CPU time in the report. */
#define ENGINE_THREADS_MAX 256
static clockid_t engine_clocks[ENGINE_THREADS_MAX];
static _Atomic int engine_thread_count;

/* ---- Helpers ------------------------------------------------------------------------------ */

static inline bool in_heap(const void *pointer) {
    uintptr_t address = (uintptr_t)pointer;
    return address >= heap_low && address < heap_high;
}

static inline bool in_region(const void *pointer) {
    uintptr_t address = (uintptr_t)pointer;
    return address >= region_low && address < region_high;
}

/* Whether this call takes its memory from the heap: a program thread, once it exists. */
static inline bool use_heap(void) {
    return atomic_load_explicit(&state, memory_order_acquire) == HEAP_READY && engine_depth == 0 && in_mimalloc == 0;
}

/* Writes `text` to stderr without allocating (safe in a signal handler and in a fork child). */
static void say(const char *text) {
    size_t length = strlen(text);
    while (length > 0) {
        ssize_t written = write(2, text, length);
        if (written <= 0) {
            if (written < 0 && errno == EINTR) continue;
            return;
        }
        text += written;
        length -= (size_t)written;
    }
}

static void say_number(const char *before, unsigned long value, const char *after) {
    char digits[24];
    int at = (int)sizeof digits;
    digits[--at] = 0;
    do {
        digits[--at] = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0 && at > 0);
    say(before);
    say(digits + at);
    say(after);
}

/* A forked child touched (or asked about) its parent's heap: it stops here. */
__attribute__((noreturn)) static void stop_forked_child(void) {
    say_number("userswap exec: process ", (unsigned long)getpid(), "");
    say_number(", forked by process ", (unsigned long)getppid(),
               ", used the heap after fork() without exec(): the heap is swappable memory that only its "
               "parent's engine serves, so a forked child may not use it (run the child program with exec, "
               "or use posix_spawn, vfork, or multiprocessing's \"spawn\" start method); stopped\n");
    _exit(EXIT_FORKED_HEAP);
}

static void heap_full(size_t size) {
    /* A request larger than the whole heap is the program's to handle (sort -S 1G asks, then
     * halves its buffer): said nothing. */
    if (size < heap_high - heap_low && atomic_exchange(&heap_full_reported, 1) == 0) {
        say_number("userswap exec: the heap is full (a request of ", (unsigned long)size, " bytes failed; ");
        if (group != NULL) {
            say_number("", (unsigned long)((heap_high - heap_low) >> 20),
                       " MiB: what the program's group limits (--group-limit) leave): malloc fails with ENOMEM; "
                       "raise --group-limit\n");
        } else {
            say_number("", (unsigned long)((heap_high - heap_low) >> 20),
                       " MiB of budget and swap): give more swap with --swap-size\n");
        }
    }
    errno = ENOMEM;
}

/* ---- The malloc family -------------------------------------------------------------------- */

EXPORT void *malloc(size_t size) {
    if (!use_heap()) return __libc_malloc(size);
    in_mimalloc++;
    void *pointer = mi.malloc(size);
    in_mimalloc--;
    if (pointer == NULL) heap_full(size);
    return pointer;
}

EXPORT void *calloc(size_t count, size_t size) {
    if (!use_heap()) return __libc_calloc(count, size);
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    in_mimalloc++;
    void *pointer = mi.calloc(count, size);
    in_mimalloc--;
    if (pointer == NULL) heap_full(bytes);
    return pointer;
}

EXPORT void free(void *pointer) {
    if (pointer == NULL) return;
    if (!in_heap(pointer)) {
        __libc_free(pointer);
        return;
    }
    /* A forked child cannot touch the heap: its blocks stay the parent's. */
    /* Relaxed: HEAP_CHILD is stored by the child's only thread, this one */
    if (atomic_load_explicit(&state, memory_order_relaxed) == HEAP_CHILD) return;
    in_mimalloc++;
    mi.free(pointer);
    in_mimalloc--;
}

static size_t libc_usable_size(void *pointer) {
    return real_malloc_usable_size != NULL ? real_malloc_usable_size(pointer) : 0;
}

EXPORT void *realloc(void *pointer, size_t size) {
    if (pointer == NULL) return malloc(size);
    if (in_heap(pointer)) {
        /* Relaxed: as in free */
        if (atomic_load_explicit(&state, memory_order_relaxed) == HEAP_CHILD) stop_forked_child();
        in_mimalloc++;
        void *moved = mi.realloc(pointer, size);
        in_mimalloc--;
        if (moved == NULL && size > 0) heap_full(size);
        return moved;
    }
    if (!use_heap()) return __libc_realloc(pointer, size);
    /* A block glibc gave before the heap existed: it moves into the heap. */
    if (size == 0) {
        __libc_free(pointer);
        return NULL;
    }
    void *moved = malloc(size);
    if (moved == NULL) return NULL;
    size_t old = libc_usable_size(pointer);
    memcpy(moved, pointer, old < size ? old : size);
    __libc_free(pointer);
    return moved;
}

EXPORT void *reallocarray(void *pointer, size_t count, size_t size) {
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(pointer, bytes);
}

static void *aligned(size_t alignment, size_t size) {
    if (!use_heap()) return __libc_memalign(alignment, size);
    in_mimalloc++;
    void *pointer = mi.malloc_aligned(size, alignment);
    in_mimalloc--;
    if (pointer == NULL) heap_full(size);
    return pointer;
}

EXPORT int posix_memalign(void **result, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    void *pointer = aligned(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *result = pointer;
    return 0;
}

EXPORT void *aligned_alloc(size_t alignment, size_t size) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    return aligned(alignment, size);
}

EXPORT void *memalign(size_t alignment, size_t size) {
    if (alignment & (alignment - 1)) {
        /* glibc rounds a non-power of two up. */
        size_t power = 1;
        while (power < alignment) power <<= 1;
        alignment = power;
    }
    return aligned(alignment < sizeof(void *) ? sizeof(void *) : alignment, size);
}

EXPORT void *valloc(size_t size) { return aligned(4096, size); }

EXPORT void *pvalloc(size_t size) { return aligned(4096, (size + 4095) & ~(size_t)4095); }

EXPORT size_t malloc_usable_size(void *pointer) {
    if (pointer == NULL) return 0;
    if (!in_heap(pointer)) return libc_usable_size(pointer);
    /* Relaxed: as in free */
    if (atomic_load_explicit(&state, memory_order_relaxed) == HEAP_CHILD) stop_forked_child();
    return mi.usable_size(pointer);
}

/* ---- Large anonymous mmap ----------------------------------------------------------------- */

/* A program's own large private anonymous read-write mapping comes from the heap: zeroed and
 * page aligned, as mmap's. Anything else (files, shared, fixed, other protections, the engine's
 * and mimalloc's own) goes to the kernel. */
EXPORT void *mmap(void *address, size_t length, int protection, int flags, int fd, off_t offset) {
    if (real_mmap == NULL) real_mmap = (void *(*)(void *, size_t, int, int, int, off_t))dlsym(RTLD_NEXT, "mmap");
    if (address == NULL && length >= MMAP_FROM_HEAP_MIN && protection == (PROT_READ | PROT_WRITE) &&
        (flags & ~MAP_NORESERVE) == (MAP_PRIVATE | MAP_ANONYMOUS) && use_heap()) {
        size_t rounded = (length + 4095) & ~(size_t)4095;
        in_mimalloc++;
        void *pointer = mi.zalloc_aligned(rounded, 4096);
        in_mimalloc--;
        if (pointer != NULL) return pointer;
        heap_full(rounded);
        return MAP_FAILED;
    }
    return real_mmap(address, length, protection, flags, fd, offset);
}

/* The name programs built with _FILE_OFFSET_BITS=64 call (CPython among them). */
EXPORT void *mmap64(void *address, size_t length, int protection, int flags, int fd, off_t offset) {
    return mmap(address, length, protection, flags, fd, offset);
}

EXPORT int munmap(void *address, size_t length) {
    if (real_munmap == NULL) real_munmap = (int (*)(void *, size_t))dlsym(RTLD_NEXT, "munmap");
    if (address != NULL && in_region(address) && engine_depth == 0 && in_mimalloc == 0) {
        /* Only a whole block the mmap above gave: the region itself must stay mapped. */
        /* Relaxed: as in free */
        if (atomic_load_explicit(&state, memory_order_relaxed) == HEAP_CHILD) return 0;
        if (!in_heap(address) || ((uintptr_t)address & 4095) != 0 || mi.usable_size(address) < length) {
            errno = EINVAL;
            return -1;
        }
        in_mimalloc++;
        mi.free(address);
        in_mimalloc--;
        return 0;
    }
    return real_munmap(address, length);
}

/* ---- System calls into the heap, without privilege ------------------------------------------
 *
 * An unprivileged process (no vm.unprivileged_userfaultfd=1, no access to /dev/userfaultfd) gets
 * a userfaultfd for faults of user code only: a read(2) into a heap page that is not mapped
 * fails with EFAULT instead of waiting for the page. Then the calls that move bytes between a
 * descriptor and memory touch their buffer's heap pages from user code first (a store for
 * reads, a load for writes), in chunks small against the budget, and try again if reclaim took a
 * page back in between. glibc's own calls (stdio's buffers) are not covered. */

static bool touch_for_syscalls;
/* Bytes a call moves at once when it has to touch first. */
#define TOUCH_CHUNK ((size_t)1 << 20)
#define TOUCH_ATTEMPTS 16

static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_readv)(int, const struct iovec *, int);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);

static void resolve_io(void) {
    *(void **)&real_read = dlsym(RTLD_NEXT, "read");
    *(void **)&real_write = dlsym(RTLD_NEXT, "write");
    *(void **)&real_pread = dlsym(RTLD_NEXT, "pread64");
    *(void **)&real_pwrite = dlsym(RTLD_NEXT, "pwrite64");
    *(void **)&real_readv = dlsym(RTLD_NEXT, "readv");
    *(void **)&real_writev = dlsym(RTLD_NEXT, "writev");
    *(void **)&real_recvfrom = dlsym(RTLD_NEXT, "recvfrom");
    *(void **)&real_sendto = dlsym(RTLD_NEXT, "sendto");
}

/* Whether [buffer, buffer + length) reaches into the heap, so that a call must touch it. */
static inline bool needs_touch(const void *buffer, size_t length) {
    uintptr_t start = (uintptr_t)buffer;
    return touch_for_syscalls && length > 0 && start < heap_high && start + length > heap_low &&
           /* Relaxed: a heap address reaches a thread only through malloc, whose ready() acquires */
           atomic_load_explicit(&state, memory_order_relaxed) == HEAP_READY;
}

/* Maps the heap pages of the range from user code: for writing (`store`, an atomic or of 0 that
 * changes no byte another thread writes) or for reading. */
static void touch(const void *buffer, size_t length, bool store) {
    uintptr_t start = (uintptr_t)buffer, end = start + length;
    if (start < heap_low) start = heap_low;
    if (end > heap_high) end = heap_high;
    for (uintptr_t page = start & ~(uintptr_t)4095; page < end; page += 4096) {
        uintptr_t at = page < start ? start : page;
        /* Relaxed: only makes the page writable; it orders nothing */
        if (store) __atomic_fetch_or((unsigned char *)at, 0, __ATOMIC_RELAXED);
        else (void)*(volatile const unsigned char *)at;
    }
}

/* One chunk of a read or write: touched, then tried until it does not fail with EFAULT. */
#define TOUCHED_CALL(result, buffer, length, store, call)                               \
    do {                                                                                \
        for (int attempt = 0;; attempt++) {                                             \
            touch(buffer, length, store);                                               \
            result = call;                                                              \
            if (result >= 0 || errno != EFAULT || attempt == TOUCH_ATTEMPTS) break;     \
        }                                                                               \
    } while (0)

static bool is_regular_file(int fd) {
    struct stat info;
    return fstat(fd, &info) == 0 && S_ISREG(info.st_mode);
}

/* A read or write of `length` bytes in chunks: on a regular file all of it (as one call would
 * move), elsewhere the first chunk (a short count, as a pipe or socket may give). `offset` < 0:
 * at the file position. */
static ssize_t chunked(int fd, void *buffer, size_t length, off_t offset, bool reading) {
    bool whole = length > TOUCH_CHUNK && is_regular_file(fd);
    size_t done = 0;
    while (done < length) {
        size_t part = length - done < TOUCH_CHUNK ? length - done : TOUCH_CHUNK;
        char *at = (char *)buffer + done;
        ssize_t moved;
        if (reading) {
            if (offset < 0) TOUCHED_CALL(moved, at, part, true, real_read(fd, at, part));
            else TOUCHED_CALL(moved, at, part, true, real_pread(fd, at, part, offset + (off_t)done));
        } else {
            if (offset < 0) TOUCHED_CALL(moved, at, part, false, real_write(fd, at, part));
            else TOUCHED_CALL(moved, at, part, false, real_pwrite(fd, at, part, offset + (off_t)done));
        }
        if (moved < 0) return done > 0 ? (ssize_t)done : -1;
        done += (size_t)moved;
        if ((size_t)moved < part || !whole) break;
    }
    return (ssize_t)done;
}

EXPORT ssize_t read(int fd, void *buffer, size_t length) {
    if (real_read == NULL) resolve_io();
    if (!needs_touch(buffer, length)) return real_read(fd, buffer, length);
    return chunked(fd, buffer, length, -1, true);
}

EXPORT ssize_t __read_chk(int fd, void *buffer, size_t length, size_t size) {
    if (length > size) abort();
    return read(fd, buffer, length);
}

EXPORT ssize_t write(int fd, const void *buffer, size_t length) {
    if (real_write == NULL) resolve_io();
    if (!needs_touch(buffer, length)) return real_write(fd, buffer, length);
    return chunked(fd, (void *)buffer, length, -1, false);
}

EXPORT ssize_t pread64(int fd, void *buffer, size_t length, off_t offset) {
    if (real_pread == NULL) resolve_io();
    if (!needs_touch(buffer, length) || offset < 0) return real_pread(fd, buffer, length, offset);
    return chunked(fd, buffer, length, offset, true);
}

EXPORT ssize_t pread(int fd, void *buffer, size_t length, off_t offset) { return pread64(fd, buffer, length, offset); }

EXPORT ssize_t __pread64_chk(int fd, void *buffer, size_t length, off_t offset, size_t size) {
    if (length > size) abort();
    return pread64(fd, buffer, length, offset);
}

EXPORT ssize_t __pread_chk(int fd, void *buffer, size_t length, off_t offset, size_t size) {
    return __pread64_chk(fd, buffer, length, offset, size);
}

EXPORT ssize_t pwrite64(int fd, const void *buffer, size_t length, off_t offset) {
    if (real_pwrite == NULL) resolve_io();
    if (!needs_touch(buffer, length) || offset < 0) return real_pwrite(fd, buffer, length, offset);
    return chunked(fd, (void *)buffer, length, offset, false);
}

EXPORT ssize_t pwrite(int fd, const void *buffer, size_t length, off_t offset) { return pwrite64(fd, buffer, length, offset); }

static ssize_t vectored(int fd, const struct iovec *vector, int count, bool reading) {
    bool any = false;
    for (int i = 0; i < count && !any; i++) any = needs_touch(vector[i].iov_base, vector[i].iov_len);
    if (!any) return reading ? real_readv(fd, vector, count) : real_writev(fd, vector, count);
    ssize_t result;
    for (int attempt = 0;; attempt++) {
        for (int i = 0; i < count; i++) touch(vector[i].iov_base, vector[i].iov_len, reading);
        result = reading ? real_readv(fd, vector, count) : real_writev(fd, vector, count);
        if (result >= 0 || errno != EFAULT || attempt == TOUCH_ATTEMPTS) return result;
    }
}

EXPORT ssize_t readv(int fd, const struct iovec *vector, int count) {
    if (real_readv == NULL) resolve_io();
    return vectored(fd, vector, count, true);
}

EXPORT ssize_t writev(int fd, const struct iovec *vector, int count) {
    if (real_writev == NULL) resolve_io();
    return vectored(fd, vector, count, false);
}

EXPORT ssize_t recvfrom(int fd, void *buffer, size_t length, int flags, struct sockaddr *address, socklen_t *size) {
    if (real_recvfrom == NULL) resolve_io();
    if (!needs_touch(buffer, length)) return real_recvfrom(fd, buffer, length, flags, address, size);
    ssize_t result;
    size_t part = length < TOUCH_CHUNK ? length : TOUCH_CHUNK;
    TOUCHED_CALL(result, buffer, part, true, real_recvfrom(fd, buffer, part, flags, address, size));
    return result;
}

EXPORT ssize_t recv(int fd, void *buffer, size_t length, int flags) { return recvfrom(fd, buffer, length, flags, NULL, NULL); }

EXPORT ssize_t sendto(int fd, const void *buffer, size_t length, int flags, const struct sockaddr *address, socklen_t size) {
    if (real_sendto == NULL) resolve_io();
    if (!needs_touch(buffer, length)) return real_sendto(fd, buffer, length, flags, address, size);
    ssize_t result;
    size_t part = length < TOUCH_CHUNK ? length : TOUCH_CHUNK;
    TOUCHED_CALL(result, buffer, part, false, real_sendto(fd, buffer, part, flags, address, size));
    return result;
}

EXPORT ssize_t send(int fd, const void *buffer, size_t length, int flags) { return sendto(fd, buffer, length, flags, NULL, 0); }

/* Whether this process may have faults of kernel code served by a userfaultfd (as the engine
 * asks for: the system call, else /dev/userfaultfd). */
static bool kernel_faults_allowed(void) {
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) fd = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (fd < 0) return false;
    close(fd);
    return true;
}

/* MADV_DONTNEED and MADV_REMOVE on anonymous memory make its pages read as zeroes; in the heap
 * (a shared mapping) the kernel would only unmap them and keep their bytes, so the program's
 * own calls on whole heap pages free them through the engine instead (MADV_FREE, which allows
 * either, too). The engine's own calls go to the kernel. */
EXPORT int madvise(void *address, size_t length, int advice) {
    static int (*real_madvise)(void *, size_t, int);
    if (real_madvise == NULL) *(void **)&real_madvise = dlsym(RTLD_NEXT, "madvise");
    if ((advice == MADV_DONTNEED || advice == MADV_REMOVE || advice == MADV_FREE) && engine_depth == 0 &&
        /* Relaxed: as in needs_touch: a heap address came through malloc, which acquired */
        in_mimalloc == 0 && length > 0 && in_heap(address) && atomic_load_explicit(&state, memory_order_relaxed) == HEAP_READY) {
        uintptr_t start = (uintptr_t)address, end = start + ((length + 4095) & ~(size_t)4095);
        if ((start & 4095) != 0 || end > heap_high) {
            errno = EINVAL;
            return -1;
        }
        engine_depth++;
        int result = userswap_discard(space, address, end - start);
        engine_depth--;
        if (result != USERSWAP_OK) {
            errno = EINVAL;
            return -1;
        }
        return 0;
    }
    return real_madvise(address, length, advice);
}

/* ---- Engine threads ----------------------------------------------------------------------- */

struct engine_start {
    void *(*start)(void *);
    void *argument;
};

static void *engine_thread(void *pointer) {
    struct engine_start start = *(struct engine_start *)pointer;
    __libc_free(pointer);
    engine_depth = 1;
    int index = atomic_fetch_add(&engine_thread_count, 1);
    if (index < ENGINE_THREADS_MAX && pthread_getcpuclockid(pthread_self(), &engine_clocks[index]) != 0)
        engine_clocks[index] = 0;
    return start.start(start.argument);
}

/* A thread made by the engine (or by one of its threads) is the engine's: it allocates from
 * glibc for its whole life. */
EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attributes, void *(*start)(void *), void *argument) {
    if (real_pthread_create == NULL)
        real_pthread_create =
            (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))dlsym(RTLD_NEXT, "pthread_create");
    if (engine_depth == 0) return real_pthread_create(thread, attributes, start, argument);
    struct engine_start *box = __libc_malloc(sizeof *box);
    if (box == NULL) return EAGAIN;
    box->start = start;
    box->argument = argument;
    int result = real_pthread_create(thread, attributes, engine_thread, box);
    if (result != 0) __libc_free(box);
    return result;
}

/* ---- fork --------------------------------------------------------------------------------- */

static struct sigaction previous_segv;

static void forked_child_segv(int signal, siginfo_t *info, void *context) {
    (void)context;
    if (in_region(info->si_addr)) stop_forked_child();
    /* Not ours: the handler from before takes the same fault again. */
    sigaction(signal, &previous_segv, NULL);
}

static void after_fork_in_child(void) {
    /* Relaxed: the forking thread saw its own process's state */
    if (atomic_load_explicit(&state, memory_order_relaxed) != HEAP_READY) return;
    atomic_store_explicit(&state, HEAP_CHILD, memory_order_release);
    mprotect((void *)region_low, region_high - region_low, PROT_NONE);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = forked_child_segv;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &previous_segv);
}

/* ---- Start and exit ----------------------------------------------------------------------- */

__attribute__((noreturn)) static void start_failed(const char *what, const char *detail) {
    say("userswap exec: ");
    say(what);
    if (detail != NULL && *detail) {
        say(": ");
        say(detail);
    }
    say("\n");
    _exit(EXIT_START_FAILED);
}

/* Removes this library and the variables of `userswap exec` from the environment, so that
 * the programs this one runs start as they would without it. */
static void leave_environment(void) {
    const char *preload = getenv("LD_PRELOAD");
    if (preload != NULL) {
        Dl_info info;
        char kept[4096];
        size_t used = 0;
        const char *mine = dladdr((void *)leave_environment, &info) ? info.dli_fname : "";
        const char *cursor = preload;
        while (*cursor) {
            size_t length = strcspn(cursor, ": ");
            if (length > 0 && !(strlen(mine) == length && strncmp(cursor, mine, length) == 0) &&
                used + length + 2 < sizeof kept) {
                if (used > 0) kept[used++] = ':';
                memcpy(kept + used, cursor, length);
                used += length;
            }
            cursor += length;
            while (*cursor == ':' || *cursor == ' ') cursor++;
        }
        kept[used] = 0;
        if (used > 0) setenv("LD_PRELOAD", kept, 1);
        else unsetenv("LD_PRELOAD");
    }
    static const char *const names[] = {
        "USERSWAP_MEMORY", "USERSWAP_SWAP_DIR", "USERSWAP_SWAP_SIZE", "USERSWAP_SWAP_FILE", "USERSWAP_REDIS_URL",
        "USERSWAP_ENCRYPTION", "USERSWAP_EXEC_REPORT", "USERSWAP_EXEC_QUIET", "USERSWAP_EXEC_COMMAND",
        "USERSWAP_EXEC_GROUP_MEMORY", "USERSWAP_EXEC_GROUP_SWAP",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unsetenv(names[i]);
}

static char *report_path;
static char *command_name;
static bool quiet;

static char *copy_string(const char *text) {
    if (text == NULL) return NULL;
    size_t length = strlen(text) + 1;
    char *copy = __libc_malloc(length);
    if (copy != NULL) memcpy(copy, text, length);
    return copy;
}

static void load_mimalloc(void) {
    void *library = dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) start_failed("cannot load mimalloc (Debian's libmimalloc2.0)", dlerror());
#define MI_SYMBOL(field, name)                                          \
    do {                                                                \
        *(void **)&mi.field = dlsym(library, name);                     \
        if (mi.field == NULL) start_failed("mimalloc lacks " name, ""); \
    } while (0)
    MI_SYMBOL(malloc, "mi_malloc");
    MI_SYMBOL(calloc, "mi_calloc");
    MI_SYMBOL(realloc, "mi_realloc");
    MI_SYMBOL(free, "mi_free");
    MI_SYMBOL(malloc_aligned, "mi_malloc_aligned");
    MI_SYMBOL(zalloc_aligned, "mi_zalloc_aligned");
    MI_SYMBOL(usable_size, "mi_usable_size");
    MI_SYMBOL(manage_os_memory, "mi_manage_os_memory");
    MI_SYMBOL(option_set, "mi_option_set");
#undef MI_SYMBOL
}

/* A group limit from the environment, in bytes as `userswap exec` writes it; unset: none. */
static uint64_t limit_from_env(const char *name) {
    const char *text = getenv(name);
    if (text == NULL || *text == 0) return USERSWAP_UNLIMITED;
    char *end;
    errno = 0;
    unsigned long long bytes = strtoull(text, &end, 10);
    if (errno != 0 || *end != 0 || *text < '0' || *text > '9') start_failed(name, "is not a number of bytes");
    return (uint64_t)bytes;
}

static uint64_t smaller(uint64_t a, uint64_t b) { return a < b ? a : b; }

__attribute__((constructor)) static void preload_start(void) {
    engine_depth++;
    clock_gettime(CLOCK_MONOTONIC, &started);
    real_malloc_usable_size = (size_t (*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
    /* glibc's allocator now serves the engine alone: a fixed trim threshold (which also stops
     * the mmap threshold from growing to 32 MiB) returns its freed I/O buffers to the kernel,
     * instead of keeping megabytes of them outside the budget. */
    mallopt(M_TRIM_THRESHOLD, 128 << 10);
    report_path = copy_string(getenv("USERSWAP_EXEC_REPORT"));
    command_name = copy_string(getenv("USERSWAP_EXEC_COMMAND"));
    const char *quiet_value = getenv("USERSWAP_EXEC_QUIET");
    quiet = quiet_value != NULL && strcmp(quiet_value, "1") == 0;

    group_memory_limit = limit_from_env("USERSWAP_EXEC_GROUP_MEMORY");
    group_swap_limit = limit_from_env("USERSWAP_EXEC_GROUP_SWAP");

    if (userswap_space_from_env(&space) != USERSWAP_OK) start_failed("cannot make the space", userswap_last_error());
    userswap_stats stats = {.size = sizeof stats};
    userswap_stats_get(space, &stats);
    /* The heap holds what its pages can occupy: the budget (or the group's memory limit under
     * it) and the swap (or the group's swap limit under it), in whole blocks of mimalloc's
     * arena, rounded down, so that a program that fills it gets ENOMEM from malloc rather than
     * a fault that finds no room (SIGBUS). Less than one block is rounded up: then a program
     * that fills the heap can outgrow its swap. */
    uint64_t capacity = smaller(stats.memory, group_memory_limit) + smaller(stats.swap_total, group_swap_limit);
    size_t heap_bytes = (size_t)capacity & ~(HEAP_ALIGNMENT - 1);
    if (heap_bytes == 0) heap_bytes = HEAP_ALIGNMENT;
    if (group_memory_limit != USERSWAP_UNLIMITED || group_swap_limit != USERSWAP_UNLIMITED) {
        if (userswap_group_create(space, "exec", group_memory_limit, group_swap_limit, NULL, &group) != USERSWAP_OK)
            start_failed("cannot make the program's memory group", userswap_last_error());
    }
    void *base;
    if (userswap_map_group(space, group, heap_bytes + HEAP_ALIGNMENT, 0, &base) != USERSWAP_OK)
        start_failed("cannot map the heap", userswap_last_error());
    region_low = (uintptr_t)base;
    region_high = region_low + heap_bytes + HEAP_ALIGNMENT;
    uintptr_t low = (region_low + HEAP_ALIGNMENT - 1) & ~(HEAP_ALIGNMENT - 1);

    load_mimalloc();
    /* Only the region: no memory from the OS for blocks. The arena is committed (mimalloc never
     * decommits or resets it: it would map over the region) and zero. */
    mi.option_set(mi_option_limit_os_alloc, 1);
    if (!mi.manage_os_memory((void *)low, heap_bytes, true, false, true, -1))
        start_failed("mimalloc refused the heap's memory", "");
    heap_low = low;
    heap_high = low + heap_bytes;

    resolve_io();
    touch_for_syscalls = !kernel_faults_allowed();
    if (pthread_atfork(NULL, NULL, after_fork_in_child) != 0) start_failed("pthread_atfork failed", "");
    leave_environment();
    atomic_store_explicit(&state, HEAP_READY, memory_order_release);
    engine_depth--;
}

/* ---- The report --------------------------------------------------------------------------- */

static unsigned long status_kib(const char *name) {
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char text[8192];
    ssize_t length = read(fd, text, sizeof text - 1);
    close(fd);
    if (length <= 0) return 0;
    text[length] = 0;
    size_t name_length = strlen(name);
    for (char *line = text; line != NULL && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, name, name_length) == 0 && line[name_length] == ':') return strtoul(line + name_length + 1, NULL, 10);
    }
    return 0;
}

/* Pss (each page counted once, though the budget's pages are mapped twice) and its anonymous
 * and shared-memory part, in KiB, from /proc/self/smaps_rollup. */
static void pss_kib(unsigned long *all, unsigned long *anon_shmem) {
    *all = *anon_shmem = 0;
    int fd = open("/proc/self/smaps_rollup", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    char text[4096];
    ssize_t length = read(fd, text, sizeof text - 1);
    close(fd);
    if (length <= 0) return;
    text[length] = 0;
    for (char *line = text; line != NULL && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "Pss:", 4) == 0) *all = strtoul(line + 4, NULL, 10);
        else if (strncmp(line, "Pss_Anon:", 9) == 0) *anon_shmem += strtoul(line + 9, NULL, 10);
        else if (strncmp(line, "Pss_Shmem:", 10) == 0) *anon_shmem += strtoul(line + 10, NULL, 10);
    }
}

static double engine_cpu_seconds(void) {
    double total = 0;
    int count = atomic_load(&engine_thread_count);
    if (count > ENGINE_THREADS_MAX) count = ENGINE_THREADS_MAX;
    for (int i = 0; i < count; i++) {
        struct timespec time;
        if (engine_clocks[i] != 0 && clock_gettime(engine_clocks[i], &time) == 0) total += (double)time.tv_sec + time.tv_nsec / 1e9;
    }
    return total;
}

static void json_string(FILE *file, const char *text) {
    fputc('"', file);
    for (; text != NULL && *text; text++) {
        unsigned char c = (unsigned char)*text;
        if (c == '"' || c == '\\') fprintf(file, "\\%c", c);
        else if (c < 0x20) fprintf(file, "\\u%04x", c);
        else fputc(c, file);
    }
    fputc('"', file);
}

/* "memory 16 MiB" or "memory none", then `after`. */
static void say_limit(const char *name, uint64_t limit, const char *after) {
    say(name);
    if (limit == USERSWAP_UNLIMITED) say("none");
    else if (limit % (1 << 20) == 0) say_number("", (unsigned long)(limit >> 20), " MiB");
    else say_number("", (unsigned long)limit, " bytes");
    say(after);
}

/* A JSON key holding a limit in bytes, or null for none. */
static void json_limit(FILE *file, const char *key, uint64_t limit, const char *after) {
    if (limit == USERSWAP_UNLIMITED) fprintf(file, "\"%s\": null%s", key, after);
    else fprintf(file, "\"%s\": %llu%s", key, (unsigned long long)limit, after);
}

__attribute__((destructor)) static void preload_exit(void) {
    if (atomic_load(&state) != HEAP_READY || space == NULL) return;
    engine_depth++;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double seconds = (double)(now.tv_sec - started.tv_sec) + (now.tv_nsec - started.tv_nsec) / 1e9;
    userswap_stats stats = {.size = sizeof stats};
    userswap_stats_get(space, &stats);
    unsigned long peak_kib = status_kib("VmHWM");
    double engine_seconds = engine_cpu_seconds();
    unsigned long pss_all, pss_data;
    pss_kib(&pss_all, &pss_data);
    /* The program's threads' wait in faults: from each fault's arrival at a handler thread to
     * the wake of its thread. */
    double wait_seconds = (double)stats.fault_wait_ns / 1e9;
    double wait_mean_us = stats.fault_waits > 0 ? (double)stats.fault_wait_ns / 1e3 / (double)stats.fault_waits : 0;
    double wait_p99_us = (double)stats.fault_wait_p99_ns / 1e3;
    userswap_group_stats group_stats = {.size = sizeof group_stats};
    if (group != NULL) userswap_group_stats_get(group, &group_stats);
    if (!quiet) {
        char line[640];
        snprintf(line, sizeof line,
                 "userswap exec: %.2f s, budget %llu MiB, peak RSS %lu MiB (the budget's pages count twice), "
                 "%llu swap-ins, %llu swap-outs, %llu faults, %.2f s waiting in faults (mean %.1f us, p99 %.1f us), "
                 "%.2f s of engine CPU\n",
                 seconds, (unsigned long long)(stats.memory >> 20), peak_kib >> 10, (unsigned long long)stats.swap_ins,
                 (unsigned long long)stats.swap_outs, (unsigned long long)(stats.major_faults + stats.minor_faults),
                 wait_seconds, wait_mean_us, wait_p99_us, engine_seconds);
        say(line);
        if (group != NULL) {
            snprintf(line, sizeof line, "userswap exec: the program's group: peak %llu MiB in RAM, %llu MiB on swap (limits: ",
                     (unsigned long long)(group_stats.memory_peak >> 20), (unsigned long long)(group_stats.swap_peak >> 20));
            say(line);
            say_limit("memory ", group_memory_limit, ", ");
            say_limit("swap ", group_swap_limit, ")\n");
        }
    }
    if (report_path != NULL && *report_path) {
        FILE *file = fopen(report_path, "w");
        if (file == NULL) {
            say("userswap exec: cannot write the report to ");
            say(report_path);
            say("\n");
        } else {
            time_t wall = time(NULL);
            struct tm utc;
            gmtime_r(&wall, &utc);
            char date[32];
            strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &utc);
            fprintf(file, "{\"scenario\": \"exec\", \"mode\": \"transparent\", \"threads\": %d, \"ops\": 0, \"seconds\": %.6f, ",
                    1, seconds);
            fprintf(file, "\"ops_per_s\": 0, \"budget_bytes\": %llu, \"data_bytes\": %llu, \"peak_resident_bytes\": %llu, ",
                    (unsigned long long)stats.memory, (unsigned long long)(stats.resident + stats.swap_used),
                    (unsigned long long)peak_kib << 10);
            fprintf(file, "\"swap_ins\": %llu, \"swap_outs\": %llu, \"verified\": false, ", (unsigned long long)stats.swap_ins,
                    (unsigned long long)stats.swap_outs);
            fprintf(file, "\"machine\": {\"cores\": %ld, \"memory_bytes\": %llu, \"date\": \"%s\"}, ", sysconf(_SC_NPROCESSORS_ONLN),
                    (unsigned long long)sysconf(_SC_PHYS_PAGES) * (unsigned long long)sysconf(_SC_PAGESIZE), date);
            fprintf(file, "\"command\": ");
            json_string(file, command_name);
            fprintf(file,
                    ", \"heap_bytes\": %llu, \"swap_bytes\": %llu, \"major_faults\": %llu, \"minor_faults\": %llu, "
                    "\"write_faults\": %llu, \"fault_errors\": %llu, \"fault_waits\": %llu, \"fault_wait_seconds\": %.6f, "
                    "\"fault_wait_mean_us\": %.3f, \"fault_wait_p99_us\": %.3f, \"engine_cpu_seconds\": %.6f, "
                    "\"pss_at_exit_bytes\": %llu, \"pss_anon_shmem_at_exit_bytes\": %llu",
                    (unsigned long long)(heap_high - heap_low), (unsigned long long)stats.swap_total,
                    (unsigned long long)stats.major_faults, (unsigned long long)stats.minor_faults,
                    (unsigned long long)stats.write_faults, (unsigned long long)stats.fault_errors,
                    (unsigned long long)stats.fault_waits, wait_seconds, wait_mean_us, wait_p99_us, engine_seconds,
                    (unsigned long long)pss_all << 10, (unsigned long long)pss_data << 10);
            if (group != NULL) {
                fprintf(file, ", \"group_memory_peak_bytes\": %llu, \"group_swap_peak_bytes\": %llu, ",
                        (unsigned long long)group_stats.memory_peak, (unsigned long long)group_stats.swap_peak);
                json_limit(file, "group_memory_limit_bytes", group_memory_limit, ", ");
                json_limit(file, "group_swap_limit_bytes", group_swap_limit, "");
            }
            fputs("}\n", file);
            fclose(file);
        }
    }
    engine_depth--;
}
