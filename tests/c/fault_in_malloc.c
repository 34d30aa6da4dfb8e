/*
 * Faults served on the faulting thread while that thread holds the allocator's lock: the
 * SIGBUS handler that resolves them must neither allocate nor take a lock that code outside
 * the library may hold, or the thread deadlocks on itself.
 *
 *     fault_in_malloc [data MiB] [budget MiB] [touches per thread] [sealed|clear] [hang|report]
 *                     [program|global]
 *
 * The program replaces malloc, free, calloc, realloc and the aligned allocators with glibc's,
 * each call by a thread of the program inside one lock of this program (the "allocator's
 * lock": a plain mutex, so a thread that takes it twice hangs, as with malloc's arena lock).
 * The library's own threads allocate beside it, as in glibc, where each thread allocates from
 * an arena of its own (`global`: they take the lock too, the model of an allocator with one
 * lock). Four threads allocate and free blocks of random sizes, and touch the mapping's pages
 * (4 x the budget: first touches, swap-ins, readahead and swap-cache hits, stores to pages
 * read back) while HOLDING that lock, as a thread interrupted inside malloc would. A handler
 * that allocates (or frees) then calls malloc on a thread that holds its lock: the call prints
 * its stack and hangs (`hang`, the default); a watchdog that sees no touch complete for 20 s
 * reports the deadlock and fails the test. With `report`, such calls are counted and let
 * through (each distinct stack printed at the end), to list them all in one run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <execinfo.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <userswap.h>

#define THREADS 4
#define PAGE 4096
#ifndef STALL_SECONDS
#define STALL_SECONDS 20
#endif

/* glibc's allocator, under our lock. */
void *__libc_malloc(size_t size);
void __libc_free(void *block);
void *__libc_calloc(size_t count, size_t size);
void *__libc_realloc(void *block, size_t size);
void *__libc_memalign(size_t alignment, size_t size);

static pthread_mutex_t allocator = PTHREAD_MUTEX_INITIALIZER;
static __thread int program;            /* a thread of this program (not of the library) */
static int everyThread;                 /* `global`: the library's threads take the lock too */
static _Atomic pid_t holder;            /* the thread holding `allocator` around a touch */
static _Atomic uint64_t inside;         /* allocator calls by a thread that held the lock */
static int report;                      /* count such calls instead of hanging in them */
static _Atomic int armed;               /* after the first backtrace (which loads libgcc) */

static pid_t tid(void) { return (pid_t)syscall(SYS_gettid); }

static void say(const char *text) {
    ssize_t ignored = write(STDERR_FILENO, text, strlen(text));
    (void)ignored;
}

/* Distinct stacks of allocator calls from a handler (report mode prints each once). */
#define STACKS 64
#define DEPTH 40
static void *stacks[STACKS][DEPTH];
static int depths[STACKS];
static const char *calls[STACKS];
static _Atomic uint64_t hits[STACKS];
static _Atomic int stackCount;

/* Whether this allocator call comes from inside the lock's critical section: only a signal
 * handler can run there, since the program touches memory and nothing else while holding it. */
static int reentered(const char *call) {
    if (atomic_load_explicit(&holder, memory_order_relaxed) != tid()) return 0;
    uint64_t n = atomic_fetch_add(&inside, 1);
    if (!atomic_load(&armed)) return 1;
    void *frames[DEPTH];
    int depth = backtrace(frames, DEPTH);
    if (report) {
        /* Remember the stack once (a racy table is fine for a report). */
        int count = atomic_load(&stackCount);
        if (count > STACKS) count = STACKS;
        for (int s = 0; s < count; s++) {
            if (depths[s] == depth && memcmp(stacks[s], frames, depth * sizeof *frames) == 0) {
                atomic_fetch_add(&hits[s], 1);
                return 1;
            }
        }
        int s = atomic_fetch_add(&stackCount, 1);
        if (s >= STACKS) return 1;
        memcpy(stacks[s], frames, depth * sizeof *frames);
        depths[s] = depth;
        calls[s] = call;
        atomic_fetch_add(&hits[s], 1);
        return 1;
    }
    if (n == 0) {
        /* Stderr's stream would lock and allocate: write(2) and the async-signal-safe dump. */
        say("fault_in_malloc: ");
        say(call);
        say(" from the SIGBUS handler of a thread holding the allocator's lock (it hangs now):\n");
        backtrace_symbols_fd(frames, depth, STDERR_FILENO);
    }
    return 1;
}

/* Prints the distinct stacks seen in report mode. */
static void printStacks(void) {
    int count = atomic_load(&stackCount);
    if (count > STACKS) count = STACKS;
    for (int s = 0; s < count; s++) {
        fprintf(stderr, "fault_in_malloc: %s from a handler, %" PRIu64 " times, at:\n", calls[s], atomic_load(&hits[s]));
        backtrace_symbols_fd(stacks[s], depths[s], STDERR_FILENO);
    }
}

/* Takes the lock, unless reporting a call from the handler (then it would hang for good). */
static int enter(const char *call) {
    if (!program && !everyThread) return 0;
    if (reentered(call) && report) return 0;
    pthread_mutex_lock(&allocator);
    return 1;
}

static void leave(int locked) {
    if (locked) pthread_mutex_unlock(&allocator);
}

void *malloc(size_t size) {
    int l = enter("malloc");
    void *p = __libc_malloc(size);
    leave(l);
    return p;
}

void free(void *block) {
    if (!block) return;
    int l = enter("free");
    __libc_free(block);
    leave(l);
}

void *calloc(size_t count, size_t size) {
    int l = enter("calloc");
    void *p = __libc_calloc(count, size);
    leave(l);
    return p;
}

void *realloc(void *block, size_t size) {
    int l = enter("realloc");
    void *p = __libc_realloc(block, size);
    leave(l);
    return p;
}

void *memalign(size_t alignment, size_t size) {
    int l = enter("memalign");
    void *p = __libc_memalign(alignment, size);
    leave(l);
    return p;
}

void *aligned_alloc(size_t alignment, size_t size) { return memalign(alignment, size); }

int posix_memalign(void **out, size_t alignment, size_t size) {
    void *p = memalign(alignment, size);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void *valloc(size_t size) { return memalign(PAGE, size); }

/* The test. */

static unsigned char *data;
static size_t pages;
static size_t touches;
static _Atomic uint64_t progress;
static _Atomic uint64_t failures;
static _Atomic uint64_t allocations;

static uint64_t key(size_t page) { return page * 0x9E3779B97F4A7C15ull ^ 0x5bd1e995u; }

static uint64_t next(uint64_t *state) { /* xorshift64* */
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545F4914F6CDD1Dull;
}

/* Touches `page` while holding the allocator's lock: reads its key (a fault if it is out),
 * and on every other touch stores it again (a store fault on a page mapped read-only). */
static void touch(size_t page, int store) {
    volatile uint64_t *word = (volatile uint64_t *)(data + page * PAGE);
    pthread_mutex_lock(&allocator);
    atomic_store_explicit(&holder, tid(), memory_order_relaxed);
    uint64_t value = *word;
    if (store) *word = key(page);
    atomic_store_explicit(&holder, 0, memory_order_relaxed);
    pthread_mutex_unlock(&allocator);
    if (value != key(page)) {
        if (atomic_fetch_add(&failures, 1) < 10)
            fprintf(stderr, "fault_in_malloc: page %zu holds %016" PRIx64 ", expected %016" PRIx64 "\n", page, value,
                    key(page));
    }
    atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
}

static void *fill(void *arg) {
    program = 1;
    size_t t = (size_t)arg;
    for (size_t page = t; page < pages; page += THREADS) {
        pthread_mutex_lock(&allocator);
        atomic_store_explicit(&holder, tid(), memory_order_relaxed);
        *(volatile uint64_t *)(data + page * PAGE) = key(page);   /* a zero-fill fault */
        atomic_store_explicit(&holder, 0, memory_order_relaxed);
        pthread_mutex_unlock(&allocator);
        atomic_fetch_add_explicit(&progress, 1, memory_order_relaxed);
    }
    return NULL;
}

/* Random allocations and frees between touches: half the touches at a random page, half
 * walking on from the last one (the readahead's case). */
static void *mix(void *arg) {
    program = 1;
    size_t t = (size_t)arg;
    uint64_t state = 0x243F6A8885A308D3ull * (t + 1);
    void *blocks[64] = {0};
    size_t page = next(&state) % pages;
    for (size_t n = 0; n < touches; n++) {
        size_t slot = next(&state) % 64;
        free(blocks[slot]);
        size_t size = 16 + next(&state) % (n % 16 == 0 ? 65536 : 512);
        blocks[slot] = n % 3 == 0 ? calloc(1, size) : malloc(size);
        if (!blocks[slot]) abort();
        ((volatile char *)blocks[slot])[size - 1] = 1;
        atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
        page = next(&state) % 2 ? next(&state) % pages : (page + 1) % pages;
        touch(page, n % 2);
    }
    for (size_t slot = 0; slot < 64; slot++) free(blocks[slot]);
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Fails the run when no touch completes for STALL_SECONDS: a thread is stuck in its handler. */
static void *watchdog(void *arg) {
    (void)arg;
    uint64_t last = UINT64_MAX;
    double since = now();
    for (;;) {
        sleep(1);
        uint64_t seen = atomic_load_explicit(&progress, memory_order_relaxed);
        if (seen != last) {
            last = seen;
            since = now();
        } else if (now() - since > STALL_SECONDS) {
            char line[200];
            snprintf(line, sizeof line,
                     "fault_in_malloc: FAILED: deadlock, no touch completed for %d s (thread %d holds the allocator's "
                     "lock; allocator calls from its handler: %" PRIu64 ")\n",
                     STALL_SECONDS, (int)atomic_load(&holder), atomic_load(&inside));
            say(line);
            if (report) printStacks();
            _exit(2);
        }
    }
    return NULL;
}

static void run(const char *phase, void *(*body)(void *)) {
    pthread_t threads[THREADS];
    double start = now();
    for (size_t t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, body, (void *)t);
    for (size_t t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    printf("fault_in_malloc: %s in %.2f s\n", phase, now() - start);
}

#define CHECK(call)                                                                                            \
    do {                                                                                                       \
        int code_ = (call);                                                                                    \
        if (code_ != USERSWAP_OK) {                                                                            \
            fprintf(stderr, "fault_in_malloc: %s: %s: %s\n", #call, userswap_strerror(code_), userswap_last_error()); \
            return 1;                                                                                          \
        }                                                                                                      \
    } while (0)

int main(int argc, char **argv) {
    size_t bytes = (argc > 1 ? strtoull(argv[1], NULL, 10) : 64) << 20;
    size_t budget = (argc > 2 ? strtoull(argv[2], NULL, 10) : 16) << 20;
    touches = argc > 3 ? strtoull(argv[3], NULL, 10) : 20000;
    int clear = argc > 4 && strcmp(argv[4], "clear") == 0;
    report = argc > 5 && strcmp(argv[5], "report") == 0;
    everyThread = argc > 6 && strcmp(argv[6], "global") == 0;
    program = 1;
    pages = bytes / PAGE;
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* backtrace() loads libgcc (allocating) on its first call: do it now, not in a handler. */
    void *frame[1];
    backtrace(frame, 1);
    atomic_store(&armed, 1);

    userswap_config config;
    CHECK(userswap_config_init(&config));
    config.memory = budget;
    config.swap_size = bytes + bytes / 2;
    if (clear) config.flags |= USERSWAP_SPACE_NO_ENCRYPTION;
    userswap_space *space;
    CHECK(userswap_space_create(&config, &space));
    CHECK(userswap_map(space, bytes, USERSWAP_MAP_FAULTING_THREAD, (void **)&data));
    printf("fault_in_malloc: %zu MiB in a %zu MiB budget, pages %s, %zu touches per thread, %d threads, %s%s\n",
           bytes >> 20, budget >> 20, clear ? "in clear" : "sealed", touches, THREADS,
           everyThread ? "one lock for every thread" : "the lock for the program's threads", report ? ", reporting" : "");
    pthread_t dog;
    pthread_create(&dog, NULL, watchdog, NULL);
    pthread_detach(dog);
    run("fill", fill);
    run("touches between allocations", mix);

    userswap_stats stats = {.size = sizeof stats};
    CHECK(userswap_stats_get(space, &stats));
    uint64_t bad = atomic_load(&inside);
    if (report) printStacks();
    printf("fault_in_malloc: %" PRIu64 " allocations; swap-ins %" PRIu64 ", swap-outs %" PRIu64 ", major faults %" PRIu64
           ", minor %" PRIu64 ", readahead pages %" PRIu64 "; allocator calls from a handler: %" PRIu64 "\n",
           atomic_load(&allocations), stats.swap_ins, stats.swap_outs, stats.major_faults, stats.minor_faults,
           stats.readahead_pages, bad);
    int ok = atomic_load(&failures) == 0 && bad == 0;
    if (stats.swap_ins == 0 || stats.major_faults == 0) {
        fprintf(stderr, "fault_in_malloc: the data is 4 x the budget, yet nothing was swapped in\n");
        ok = 0;
    }
    CHECK(userswap_unmap(space, data));
    CHECK(userswap_space_destroy(space));
    printf("fault_in_malloc: %s\n", ok ? "passed" : "FAILED");
    return ok ? 0 : 1;
}
