/*
 * A 1 GiB array in a 128 MiB budget through userswap_map: filled by 4 threads, then random
 * reads and writes from 4 pthreads, each read checked, then every element verified.
 *
 *     big_array [data MiB] [budget MiB] [operations per thread] [fault mode: handlers|faulting]
 *
 * Every element holds f(i) or ~f(i); a bitmap outside the space keeps the parity of the writes
 * to each element (thread t writes only elements i with i % 4 == t, so it knows their exact
 * values; any thread may read any element and checks that it is one of the two).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <userswap.h>

#define THREADS 4

static uint64_t *array;
static size_t count;
static size_t operations;
static _Atomic uint64_t *parity;       /* one bit per element: written an odd number of times */
static _Atomic uint64_t failures;
static _Atomic uint64_t checked;

static uint64_t f(uint64_t i) { return i * 0x9E3779B97F4A7C15ull ^ 0x5bd1e995u; }

static uint64_t next(uint64_t *state) {    /* xorshift64* */
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545F4914F6CDD1Dull;
}

static void fail(const char *what, size_t i, uint64_t got, uint64_t want) {
    if (atomic_fetch_add(&failures, 1) < 10)
        fprintf(stderr, "big_array: %s: element %zu is %016" PRIx64 ", expected %016" PRIx64 "\n", what, i, got, want);
}

static int odd(size_t i) { return (atomic_load_explicit(&parity[i / 64], memory_order_relaxed) >> (i % 64)) & 1; }

static void *fill(void *arg) {
    size_t t = (size_t)arg, from = count / THREADS * t, to = t == THREADS - 1 ? count : count / THREADS * (t + 1);
    for (size_t i = from; i < to; i++) array[i] = f(i);
    return NULL;
}

static void *mix(void *arg) {
    size_t t = (size_t)arg;
    uint64_t state = 0x243F6A8885A308D3ull + t, verified = 0;
    for (size_t n = 0; n < operations; n++) {
        size_t i = next(&state) % count;
        uint64_t value = array[i];
        if (value != f(i) && value != ~f(i)) fail("random read", i, value, f(i));
        verified++;
        if (n % 2 == 0) {   /* a write, to an element of this thread: flip it */
            size_t own = i - i % THREADS + t;
            if (own >= count) continue;
            uint64_t want = odd(own) ? ~f(own) : f(own);
            if (array[own] != want) fail("own read", own, array[own], want);
            array[own] = ~want;
            atomic_fetch_xor_explicit(&parity[own / 64], 1ull << (own % 64), memory_order_relaxed);
        }
    }
    atomic_fetch_add(&checked, verified);
    return NULL;
}

static void *verify(void *arg) {
    size_t t = (size_t)arg, from = count / THREADS * t, to = t == THREADS - 1 ? count : count / THREADS * (t + 1);
    for (size_t i = from; i < to; i++) {
        uint64_t want = odd(i) ? ~f(i) : f(i);
        if (array[i] != want) fail("final check", i, array[i], want);
    }
    atomic_fetch_add(&checked, to - from);
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void run(const char *phase, void *(*body)(void *)) {
    pthread_t threads[THREADS];
    double start = now();
    for (size_t t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, body, (void *)t);
    for (size_t t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
    printf("big_array: %s in %.2f s\n", phase, now() - start);
}

#define CHECK(call)                                                                               \
    do {                                                                                          \
        int code_ = (call);                                                                       \
        if (code_ != USERSWAP_OK) {                                                               \
            fprintf(stderr, "big_array: %s: %s: %s\n", #call, userswap_strerror(code_), userswap_last_error()); \
            return 1;                                                                             \
        }                                                                                         \
    } while (0)

int main(int argc, char **argv) {
    size_t data = (argc > 1 ? strtoull(argv[1], NULL, 10) : 1024) << 20;
    size_t budget = (argc > 2 ? strtoull(argv[2], NULL, 10) : 128) << 20;
    operations = argc > 3 ? strtoull(argv[3], NULL, 10) : 200000;
    unsigned flags = argc > 4 && strcmp(argv[4], "faulting") == 0 ? USERSWAP_MAP_FAULTING_THREAD : 0;
    count = data / sizeof *array;

    userswap_config config;
    CHECK(userswap_config_init(&config));
    config.memory = budget;
    config.swap_size = data + data / 4;
    userswap_space *space;
    CHECK(userswap_space_create(&config, &space));
    CHECK(userswap_map(space, data, flags, (void **)&array));
    parity = calloc(count / 64 + 1, sizeof *parity);
    if (!parity) return 1;

    printf("big_array: %zu MiB in a %zu MiB budget, %zu operations per thread, %d threads, %s\n", data >> 20,
           budget >> 20, operations, THREADS, flags ? "faulting-thread faults" : "fault handler threads");
    run("fill", fill);
    run("random reads and writes", mix);
    run("verification", verify);

    userswap_stats stats = {.size = sizeof stats};
    CHECK(userswap_stats_get(space, &stats));
    printf("big_array: %" PRIu64 " values checked; swap-ins %" PRIu64 ", swap-outs %" PRIu64 ", major faults %" PRIu64
           ", minor %" PRIu64 ", resident %" PRIu64 " MiB of %" PRIu64 " MiB; %.2f s waiting in %" PRIu64
           " faults (mean %.1f us, p99 %.1f us)\n",
           atomic_load(&checked), stats.swap_ins, stats.swap_outs, stats.major_faults, stats.minor_faults,
           stats.resident >> 20, stats.memory >> 20, stats.fault_wait_ns / 1e9, stats.fault_waits,
           stats.fault_waits ? stats.fault_wait_ns / 1e3 / stats.fault_waits : 0.0, stats.fault_wait_p99_ns / 1e3);
    int ok = atomic_load(&failures) == 0;
    if (stats.version != USERSWAP_STATS_VERSION || stats.memory != budget || stats.resident > stats.memory) {
        fprintf(stderr, "big_array: statistics out of bounds (version %u)\n", stats.version);
        ok = 0;
    }
    if (data > budget && (stats.swap_outs == 0 || stats.swap_ins == 0 || stats.major_faults == 0)) {
        fprintf(stderr, "big_array: the data is larger than the budget, yet nothing was swapped\n");
        ok = 0;
    }
    /* Every fault is timed (a handler thread records its fault just after waking the thread). */
    if (stats.fault_waits == 0 || stats.fault_waits > stats.major_faults + stats.minor_faults || stats.fault_wait_ns == 0 ||
        stats.fault_wait_p99_ns == 0 || stats.fault_wait_p99_ns > stats.fault_wait_ns) {
        fprintf(stderr, "big_array: fault wait times out of bounds: %" PRIu64 " faults waited %" PRIu64 " ns, p99 %" PRIu64
                " ns\n", stats.fault_waits, stats.fault_wait_ns, stats.fault_wait_p99_ns);
        ok = 0;
    }
    CHECK(userswap_unmap(space, array));
    CHECK(userswap_space_destroy(space));
    free(parity);
    printf("big_array: %s\n", ok ? "passed" : "FAILED");
    return ok ? 0 : 1;
}
