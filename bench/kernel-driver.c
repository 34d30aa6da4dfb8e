/*
 * bench/kernel-driver.c: the kernel side of bench/kernel-compare, written again in plain C.
 *
 * `userswap bench random|zipf|seq --mode kernel` measures the kernel's own swap with the same
 * Swift workload code that measures UserSwap. If that harness were slow in kernel mode (a lock,
 * an allocation or a dynamic call per access), the kernel would look worse than it is and the
 * comparison would flatter UserSwap. This program does the same work with no Swift in the way,
 * so that its figures can be set beside the harness's:
 *
 *   - one anonymous private mapping of the data, 4 KiB pages (MADV_NOHUGEPAGE), as
 *     AnonymousPageStore maps it;
 *   - populate: every page written once, each thread its contiguous share, in order (untimed);
 *   - access, for --seconds: the same page sequence per thread as the Swift patterns draw for
 *     the same seed and threads (xoshiro256** seeded through SplitMix64 per thread; RandomPattern,
 *     ZipfPattern with ZipfSampler's precomputation and scrambling, SequentialPattern), the same
 *     write decision (a 64-bit draw below write_ratio × 2^64), and the same page work: a write
 *     stores the next version of PagePattern's words under the page's version lock, a read
 *     checks the first and last words against the latest version (PatternedPages);
 *   - every access timed with CLOCK_MONOTONIC the way WorkloadDriver times a step (one clock
 *     read per step; a step's end is the next one's start) into per-thread log-linear
 *     histograms laid out as LatencyHistogram's (64 sub-buckets per power of two: a reported
 *     value is within 0.8 % of the true one); no per-access samples are kept, since every byte
 *     counts against the memory cgroup;
 *   - verify: every page read back and checked in full, each thread its share.
 *
 * multiget (MultigetWorkload): the data is PagedHashTable's open-addressing table of 64-byte
 * records; populate inserts the keys (their home slots rise with their index, so each thread
 * streams through its share of the pages), access looks up batches of --param batch keys drawn
 * as the Swift side draws them, with madvise(MADV_WILLNEED) on each run of consecutive home
 * pages of a batch before its lookups (--param prefetch=off: without), and verify scans every
 * page. An access-phase op is one key; a batch's time is shared out over its keys.
 *
 * It reads the swap traffic of the access phase (pswpin/pswpout) from the memory cgroup it runs
 * in (v1 or v2, found as MemoryCgroup finds it), else from /proc/vmstat, and writes a JSON report
 * in the shape of the Swift kernel-mode report, with "driver": "c".
 *
 * With -DKERNEL_DRIVER_USERSWAP it runs the same accesses over libuserswap instead of the
 * kernel's swap (UMap-style: `userswap_map` gives the plain memory the threads touch, its space
 * from the environment: USERSWAP_MEMORY, USERSWAP_SWAP_DIR, USERSWAP_SWAP_SIZE, ...;
 * KERNEL_DRIVER_FAULTS=faulting_thread serves faults on the faulting threads); swap traffic then
 * comes from the library's counters. bench/kernel-compare --c-library PREFIX builds and runs it.
 *
 * Build: cc -O2 -pthread -o kernel-driver bench/kernel-driver.c -lm
 *        (C11: libc, its libm for the pow that Zipf sampling shares with the Swift side, pthreads)
 * Run:   kernel-driver random --data 1G --threads 2 --seconds 10 --json out.json
 *        (inside a memory cgroup limited below the data, with swap on, as bench/kernel-compare
 *        sets up; --help lists every option). Exit status: 0 verified, 1 failure, 64 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#ifdef KERNEL_DRIVER_USERSWAP
#include <userswap.h>
#define DRIVER_SIDE "libuserswap, C driver"
#else
#define DRIVER_SIDE "kernel, C driver"
#endif

#define PAGE_BYTES 4096
#define PAGE_WORDS (PAGE_BYTES / 8)

static const char *program = "kernel-driver";

/* ------------------------------------------------------------------------------------------ */
/* Random numbers: SplitMix64 and xoshiro256** (SplitMix64.swift, Xoshiro256StarStar.swift).   */

/* The golden-ratio increment of SplitMix64's Weyl sequence (SplitMix64.increment). */
#define SPLITMIX_INCREMENT UINT64_C(0x9E3779B97F4A7C15)

/* SplitMix64's finalizer (SplitMix64.mix): a bijection that spreads every bit. */
static inline uint64_t splitmix_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* One step of SplitMix64 (SplitMix64.next). */
static inline uint64_t splitmix_next(uint64_t *state) {
    *state += SPLITMIX_INCREMENT;
    return splitmix_mix(*state);
}

/* xoshiro256** (Blackman and Vigna): the workloads' generator, one per thread. */
struct xoshiro {
    uint64_t s0, s1, s2, s3;
};

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* Xoshiro256StarStar(seed:): the four words from SplitMix64. */
static struct xoshiro xoshiro_seeded(uint64_t seed) {
    uint64_t state = seed;
    struct xoshiro r;
    r.s0 = splitmix_next(&state);
    r.s1 = splitmix_next(&state);
    r.s2 = splitmix_next(&state);
    r.s3 = splitmix_next(&state);
    return r;
}

/* Xoshiro256StarStar(seed:thread:): thread t's stream of a run seeded with `seed`. */
static struct xoshiro xoshiro_for_thread(uint64_t seed, int thread) {
    return xoshiro_seeded(splitmix_mix(seed ^ ((uint64_t)thread * SPLITMIX_INCREMENT)));
}

static inline uint64_t xoshiro_next(struct xoshiro *r) {
    uint64_t result = rotl(r->s1 * 5, 7) * 9;
    uint64_t t = r->s1 << 17;
    r->s2 ^= r->s0;
    r->s3 ^= r->s1;
    r->s1 ^= r->s2;
    r->s0 ^= r->s3;
    r->s2 ^= t;
    r->s3 = rotl(r->s3, 45);
    return result;
}

/* Xoshiro256StarStar.nextUnit: a double uniform in [0, 1) from the top 53 bits. */
static inline double xoshiro_unit(struct xoshiro *r) {
    return (double)(xoshiro_next(r) >> 11) * 0x1.0p-53;
}

/*
 * Xoshiro256StarStar.next(below:), which is the Swift standard library's
 * RandomNumberGenerator.next(upperBound:): Lemire's multiply-shift, rejecting the few draws that
 * would bias the result (the same draws, so the same number of them, as Swift).
 */
static inline uint64_t xoshiro_below(struct xoshiro *r, uint64_t bound) {
    unsigned __int128 m = (unsigned __int128)xoshiro_next(r) * bound;
    if ((uint64_t)m < bound) {
        uint64_t t = (0 - bound) % bound;
        while ((uint64_t)m < t) m = (unsigned __int128)xoshiro_next(r) * bound;
    }
    return (uint64_t)(m >> 64);
}

/* ------------------------------------------------------------------------------------------ */
/* Access patterns (RandomPattern, ZipfPattern + ZipfSampler, SequentialPattern).              */

enum scenario { SCENARIO_RANDOM, SCENARIO_ZIPF, SCENARIO_SEQ, SCENARIO_MULTIGET };
static const char *const scenario_names[] = {"random", "zipf", "seq", "multiget"};

/*
 * ZipfSampler: Gray et al.'s method as YCSB uses it, with ζ(n, θ) summed once (from the small
 * terms up, as the Swift side sums it), then ranks scrambled over the pages by an affine
 * permutation (AffinePermutation). Every floating-point step is the Swift one, in the same
 * order, through the same libm `pow`, so both draw the same pages.
 */
struct zipf {
    int64_t count;
    double theta, zeta_n, alpha, eta, rank_one_limit;
    int64_t multiplier, offset; /* rank → page: (multiplier · rank + offset) mod count */
};

static double zipf_zeta(int64_t n, double theta) {
    double sum = 0;
    for (int64_t i = n; i >= 1; i--) sum += 1 / pow((double)i, theta);
    return sum;
}

static int64_t gcd(int64_t a, int64_t b) {
    while (b != 0) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static struct zipf zipf_make(int64_t count, double theta, uint64_t seed) {
    struct zipf z;
    z.count = count;
    z.theta = theta;
    z.zeta_n = zipf_zeta(count, theta);
    double zeta2 = zipf_zeta(2, theta);
    z.alpha = 1 / (1 - theta);
    z.eta = (1 - pow(2 / (double)count, 1 - theta)) / (1 - zeta2 / z.zeta_n);
    z.rank_one_limit = 1 + pow(0.5, theta);
    /* AffinePermutation: a near count × 0.618 (odd, coprime to count), b from the seed. */
    int64_t a = (int64_t)((double)count * 0.6180339887498949);
    if (a < 1) a = 1;
    a |= 1;
    while (gcd(a, count) != 1) a += 2;
    z.multiplier = a % count == 0 ? 1 : a % count;
    z.offset = (int64_t)(splitmix_mix(seed) % (uint64_t)count);
    return z;
}

/* ZipfSampler.page(using:): one rank (one draw, one pow), scrambled. */
static inline int64_t zipf_page(const struct zipf *z, struct xoshiro *r) {
    double u = xoshiro_unit(r);
    double uz = u * z->zeta_n;
    int64_t rank;
    if (uz < 1) {
        rank = 0;
    } else if (uz < z->rank_one_limit) {
        rank = 1;
    } else {
        /* Rounded on its own, as Swift rounds it: a compiler allowed to fuse eta·u − eta into
         * one fma (some targets, some flags) would land on a neighbouring rank now and then. */
        volatile double scaled = z->eta * u;
        rank = (int64_t)((double)z->count * pow(scaled - z->eta + 1, z->alpha));
        if (rank > z->count - 1) rank = z->count - 1;
    }
    return (z->multiplier * rank + z->offset) % z->count;
}

/* WorkloadPhase.share(of:thread:threads:): thread t's contiguous share of `total`. */
static inline int64_t share_start(int64_t total, int thread, int threads) {
    return total * thread / threads;
}

/* ------------------------------------------------------------------------------------------ */
/* Page contents and versions (PagePattern, PageVersions, PatternedPages).                     */

/* PagePattern.step: word i of a page is base + (i mod period) × step. */
#define PATTERN_STEP UINT64_C(0x9E3779B97F4A7C15)

/* PagePattern.base: one hash of the seed, the page and the version of the write. */
static inline uint64_t pattern_base(uint64_t page, uint32_t version, uint64_t seed) {
    return splitmix_mix(seed ^ splitmix_mix(page << 32 | (uint64_t)version));
}

/* PagePattern.fill: what a write stores (version ≥ 1). `period` words repeat (a power of 2). */
static inline void pattern_fill(uint64_t *words, uint64_t page, uint32_t version, uint64_t seed, int period) {
    uint64_t base = pattern_base(page, version, seed);
    uint64_t mask = (uint64_t)period - 1;
    for (uint64_t i = 0; i < PAGE_WORDS; i++) words[i] = base + (i & mask) * PATTERN_STEP;
}

/* PagePattern.quickCheck: what an access's read checks, the first and last words. */
static inline bool pattern_quick_check(const uint64_t *words, uint64_t page, uint32_t version, uint64_t seed, int period) {
    uint64_t first = words[0], last = words[PAGE_WORDS - 1];
    if (version == 0) return first == 0 && last == 0;
    uint64_t base = pattern_base(page, version, seed);
    return first == base && last == base + ((PAGE_WORDS - 1) & ((uint64_t)period - 1)) * PATTERN_STEP;
}

/* PagePattern.check: every word, what the final verification checks. */
static bool pattern_check(const uint64_t *words, uint64_t page, uint32_t version, uint64_t seed, int period) {
    uint64_t base = version == 0 ? 0 : pattern_base(page, version, seed);
    uint64_t step = version == 0 ? 0 : PATTERN_STEP;
    uint64_t mask = (uint64_t)period - 1, differences = 0;
    for (uint64_t i = 0; i < PAGE_WORDS; i++) differences |= words[i] ^ (base + (i & mask) * step);
    return differences == 0;
}

/*
 * PageVersions: one word per page, outside the swapped memory: the version of the page's latest
 * write (bits 0-30) and a lock bit (bit 31) held while a thread fills or checks the page, so two
 * writers of one page serialize and a read never sees half a write. A test-and-set spin lock
 * that yields after 64 tries, as the Swift one.
 */
#define VERSION_LOCK_BIT (UINT32_C(1) << 31)
#define VERSION_MASK (VERSION_LOCK_BIT - 1)

static inline uint32_t version_lock(_Atomic uint32_t *word) {
    int tries = 0;
    for (;;) {
        /* Relaxed: only a look; the compare-exchange orders. */
        uint32_t seen = atomic_load_explicit(word, memory_order_relaxed);
        if (!(seen & VERSION_LOCK_BIT) &&
            atomic_compare_exchange_strong_explicit(word, &seen, seen | VERSION_LOCK_BIT,
                                                    memory_order_acquire, memory_order_relaxed))
            return seen;
        /* The holder may have been preempted mid-copy: give it the core. */
        if (++tries >= 64) sched_yield();
    }
}

/* Releases the lock, publishing the bytes written under it with the new version. */
static inline void version_unlock(_Atomic uint32_t *word, uint32_t version) {
    atomic_store_explicit(word, version, memory_order_release);
}

/* PageVersions.successor: +1, skipping 0 ("never written") when 31 bits wrap. */
static inline uint32_t version_successor(uint32_t version) {
    uint32_t next = (version + 1) & VERSION_MASK;
    return next == 0 ? 1 : next;
}

/* ------------------------------------------------------------------------------------------ */
/* Latency histogram (LatencyHistogram.swift: the same buckets, the same quantiles).            */

/* Values below 64 ns exact; above, 64 buckets per power of two up to 2^40 ns. */
#define SUB_BUCKET_BITS 6
#define SUB_BUCKETS (1 << SUB_BUCKET_BITS)
#define MAX_EXPONENT 40
#define BUCKETS (SUB_BUCKETS + (MAX_EXPONENT - SUB_BUCKET_BITS) * SUB_BUCKETS)

struct histogram {
    uint64_t counts[BUCKETS];
    uint64_t count, sum, minimum, maximum;
};

static void histogram_init(struct histogram *h) {
    memset(h, 0, sizeof *h);
    h->minimum = UINT64_MAX;
}

static inline int histogram_bucket(uint64_t value) {
    if (value < SUB_BUCKETS) return (int)value;
    int exponent = 63 - __builtin_clzll(value);
    if (exponent >= MAX_EXPONENT) return BUCKETS - 1;
    int shift = exponent - SUB_BUCKET_BITS;
    return SUB_BUCKETS + shift * SUB_BUCKETS + (int)((value >> shift) & (SUB_BUCKETS - 1));
}

static inline void histogram_record(struct histogram *h, uint64_t ns) {
    h->counts[histogram_bucket(ns)]++;
    h->count++;
    h->sum += ns;
    if (ns < h->minimum) h->minimum = ns;
    if (ns > h->maximum) h->maximum = ns;
}

/* `times` values of `ns` each (a batch timed as a whole, per key: LatencyHistogram.record(_:times:)). */
static inline void histogram_record_times(struct histogram *h, uint64_t ns, uint64_t times) {
    h->counts[histogram_bucket(ns)] += times;
    h->count += times;
    h->sum += ns * times;
    if (ns < h->minimum) h->minimum = ns;
    if (ns > h->maximum) h->maximum = ns;
}

static void histogram_merge(struct histogram *into, const struct histogram *other) {
    for (int i = 0; i < BUCKETS; i++) into->counts[i] += other->counts[i];
    into->count += other->count;
    into->sum += other->sum;
    if (other->minimum < into->minimum) into->minimum = other->minimum;
    if (other->maximum > into->maximum) into->maximum = other->maximum;
}

/* The midpoint of the bucket holding the value of rank ⌈q × count⌉, clamped to min and max. */
static uint64_t histogram_quantile(const struct histogram *h, double q) {
    if (h->count == 0) return 0;
    if (q >= 1) return h->maximum;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < BUCKETS; i++) {
        seen += h->counts[i];
        if (seen < rank) continue;
        uint64_t lower = (uint64_t)i, width = 1;
        if (i >= SUB_BUCKETS) {
            int shift = (i - SUB_BUCKETS) / SUB_BUCKETS, sub = (i - SUB_BUCKETS) % SUB_BUCKETS;
            lower = (uint64_t)(SUB_BUCKETS + sub) << shift;
            width = UINT64_C(1) << shift;
        }
        uint64_t midpoint = lower + (width - 1) / 2;
        if (midpoint < h->minimum) midpoint = h->minimum;
        if (midpoint > h->maximum) midpoint = h->maximum;
        return midpoint;
    }
    return h->maximum;
}

/* ------------------------------------------------------------------------------------------ */
/* The run: options, the data, the threads.                                                     */

struct options {
    enum scenario scenario;
    int64_t data_bytes;
    int64_t memory_bytes; /* --memory: reported when no cgroup limit is found; -1 if not given */
    int threads;
    double seconds;
    uint64_t seed;
    double write_ratio;
    double theta;
    int repeats;
    const char *json;
    int64_t ops;        /* > 0: this many accesses over all threads instead of --seconds */
    bool huge_pages;    /* thp=on: let transparent huge pages back the data */
    int64_t dump_pages; /* > 0: print the access sequence and exit */
    int64_t dump_fill_page;
    uint32_t dump_fill_version; /* ≠ 0: print one page's words and exit */
    double load;        /* multiget: the table's fill (load=, default 0.5) */
    int batch;          /* multiget: keys per batch (batch=, default 32) */
    bool prefetch;      /* multiget: MADV_WILLNEED on a batch's pages first (prefetch=on, the default) */
};

/* What every thread shares. Written before the threads start, read-only afterwards (except
 * the pages, the versions and the start time, each with its own rules). */
struct run {
    const struct options *options;
    int64_t pages;
    unsigned char *memory;      /* pages × 4 KiB, anonymous private */
    _Atomic uint32_t *versions; /* one word per page */
    int period;                 /* words before a page's pattern repeats: 512 / repeats */
    struct zipf zipf;
    uint64_t threshold;         /* a write when a draw is below it... */
    bool writes_always;         /* ...or always, for a write ratio of 1 */
    int64_t capacity;           /* multiget: records in the table (pages × 64) */
    int64_t keys;               /* multiget: keys inserted (capacity × load) */
    pthread_barrier_t ready, go;
    uint64_t start_ns;          /* written by the main thread between `ready` and `go` */
    atomic_int mismatches_shown;
};

/* One thread of one phase. */
struct worker {
    pthread_t thread;
    struct run *run;
    int index;
    int phase;                  /* PHASE_* */
    struct histogram histogram;
    int64_t quota;              /* steps to do: a share of the pages or of --param ops, or INT64_MAX */
    uint64_t steps, end_ns;
    /* Access state: the pattern's cursor and the thread's generator. */
    struct xoshiro random;
    int64_t cursor;             /* seq: the next page; populate, verify: the next page too */
    uint64_t reads, writes, mismatches;
    uint64_t records;           /* multiget verify: full records found */
    uint64_t *batch_keys;       /* multiget access: the batch's keys and their home pages */
    int64_t *batch_pages;
};

enum { PHASE_POPULATE, PHASE_ACCESS, PHASE_VERIFY };

static inline uint64_t monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The access pattern's next page for this thread (AccessPattern.nextPage). */
static inline int64_t next_page(const struct run *run, struct worker *w) {
    switch (run->options->scenario) {
    case SCENARIO_RANDOM:
        return (int64_t)xoshiro_below(&w->random, (uint64_t)run->pages);
    case SCENARIO_ZIPF:
        return zipf_page(&run->zipf, &w->random);
    case SCENARIO_SEQ:
    default: {
        int64_t page = w->cursor;
        w->cursor = page + 1 == run->pages ? 0 : page + 1;
        return page;
    }
    }
}

/* A thread's cursor and generator at the start of the access phase (makeCursor, and
 * Xoshiro256StarStar(seed:thread:)). */
static void start_access(const struct run *run, struct worker *w) {
    w->random = xoshiro_for_thread(run->options->seed, w->index);
    w->cursor = share_start(run->pages, w->index, run->options->threads);
}

/* Whether an access writes: writes_always, else one 64-bit draw below the threshold (drawn
 * after the page, as PageAccessWorkload.Accessor draws it). */
static inline bool access_writes(const struct run *run, struct worker *w) {
    return run->writes_always || xoshiro_next(&w->random) < run->threshold;
}

/*
 * AnonymousPageStore.withPage: the page's address, faulted in first by a relaxed atomic load of
 * its first word (so the fault is taken before the version lock, as a region's pin is), which
 * the compiler must keep. It may meet another thread's plain store to that word under the
 * page's lock; an aligned 8-byte load cannot tear, and its value is thrown away.
 */
static inline uint64_t *touch_page(const struct run *run, int64_t page) {
    if (page < 0 || page >= run->pages) {
        fprintf(stderr, "%s: page %lld outside 0..<%lld: a bug\n", program, (long long)page, (long long)run->pages);
        abort();
    }
    uint64_t *words = (uint64_t *)(run->memory + (size_t)page * PAGE_BYTES);
    (void)__atomic_load_n(words, __ATOMIC_RELAXED);
    return words;
}

/* PatternedPages.write: the next version of the page. */
static inline void page_write(const struct run *run, int64_t page) {
    uint64_t *words = touch_page(run, page);
    _Atomic uint32_t *lock = &run->versions[page];
    uint32_t version = version_successor(version_lock(lock));
    pattern_fill(words, (uint64_t)page, version, run->options->seed, run->period);
    version_unlock(lock, version);
}

/* PatternedPages.read: checks the page against its latest version (quickly, or fully). */
static inline bool page_read(struct run *run, int64_t page, bool fully) {
    uint64_t *words = touch_page(run, page);
    _Atomic uint32_t *lock = &run->versions[page];
    uint32_t version = version_lock(lock);
    bool matches = fully ? pattern_check(words, (uint64_t)page, version, run->options->seed, run->period)
                         : pattern_quick_check(words, (uint64_t)page, version, run->options->seed, run->period);
    uint64_t first = matches ? 0 : words[0]; /* for the message, read under the lock */
    version_unlock(lock, version);
    if (!matches && atomic_fetch_add_explicit(&run->mismatches_shown, 1, memory_order_relaxed) < 8) {
        fprintf(stderr, "%s: page %lld: expected version %u, first word %llx (expected %llx)\n", program,
                (long long)page, version, (unsigned long long)first,
                (unsigned long long)(version == 0 ? 0 : pattern_base((uint64_t)page, version, run->options->seed)));
    }
    return matches;
}

/* ------------------------------------------------------------------------------------------ */
/* The hash table of multiget (PagedHashTable, MultigetWorkload).                               */

#define RECORD_WORDS 8
#define RECORDS_PER_PAGE (PAGE_BYTES / (RECORD_WORDS * 8))

/* SplitMix64.unmix: the inverse of splitmix_mix, its steps undone last first. */
static inline uint64_t splitmix_unmix(uint64_t z) {
    z = z ^ (z >> 31) ^ (z >> 62);
    z *= UINT64_C(0x319642B2D24D8EC3);
    z = z ^ (z >> 27) ^ (z >> 54);
    z *= UINT64_C(0x96DE1B173F119089);
    return z ^ (z >> 30) ^ (z >> 60);
}

/* PagedHashTable.home: the key's hash mapped onto 0..<capacity by a multiply. */
static inline int64_t table_home(const struct run *run, uint64_t key) {
    return (int64_t)(((unsigned __int128)splitmix_mix(key ^ run->options->seed) * (uint64_t)run->capacity) >> 64);
}

/* PagedHashTable.valueWord: word `index` (1...7) of the key's record, never zero. */
static inline uint64_t table_value_word(uint64_t key, int index, uint64_t seed) {
    return splitmix_mix((key + (uint64_t)index * SPLITMIX_INCREMENT) ^ seed) | 1;
}

/* MultigetWorkload.key: the key whose hash lies in slice `index` of `count` equal slices. */
static inline uint64_t multiget_key(int64_t index, int64_t count, uint64_t seed) {
    uint64_t slice = UINT64_MAX / (uint64_t)count;
    uint64_t hash = (uint64_t)index * slice + splitmix_mix((uint64_t)index ^ seed ^ UINT64_C(0x6D756C74)) % slice;
    return splitmix_unmix(hash) ^ seed;
}

/* PagedHashTable.insert: linear probing from the home slot, page by page under each page's
 * lock (the version word), the page faulted in before the lock. False when the table is full. */
static bool table_insert(struct run *run, uint64_t key) {
    uint64_t seed = run->options->seed;
    int64_t slot = table_home(run, key), probed = 0;
    for (;;) {
        int64_t page = slot / RECORDS_PER_PAGE;
        uint64_t *records = touch_page(run, page);
        _Atomic uint32_t *lock = &run->versions[page];
        uint32_t version = version_lock(lock);
        for (int64_t i = slot % RECORDS_PER_PAGE; i < RECORDS_PER_PAGE; i++) {
            uint64_t *r = records + i * RECORD_WORDS;
            if (r[1] != 0) continue;
            r[0] = key;
            for (int w = 1; w < RECORD_WORDS; w++) r[w] = table_value_word(key, w, seed);
            version_unlock(lock, version_successor(version));
            return true;
        }
        version_unlock(lock, version);
        probed += RECORDS_PER_PAGE;
        if (probed > run->capacity + RECORDS_PER_PAGE) return false;
        slot = (page + 1) % run->pages * RECORDS_PER_PAGE;
    }
}

/* PagedHashTable.lookup: true when the key is there with every value word as it must be. */
static bool table_lookup(struct run *run, uint64_t key) {
    uint64_t seed = run->options->seed;
    int64_t slot = table_home(run, key), probed = 0;
    while (probed <= run->capacity) {
        int64_t page = slot / RECORDS_PER_PAGE;
        uint64_t *records = touch_page(run, page);
        _Atomic uint32_t *lock = &run->versions[page];
        uint32_t version = version_lock(lock);
        int found = -1; /* -1: not on this page; 0: missing or corrupt; 1: found */
        for (int64_t i = slot % RECORDS_PER_PAGE; i < RECORDS_PER_PAGE && found < 0; i++) {
            const uint64_t *r = records + i * RECORD_WORDS;
            if (r[1] == 0) found = 0;
            else if (r[0] == key) {
                found = 1;
                for (int w = 1; w < RECORD_WORDS; w++)
                    if (r[w] != table_value_word(key, w, seed)) found = 0;
            }
        }
        version_unlock(lock, version);
        if (found >= 0) return found == 1;
        probed += RECORDS_PER_PAGE;
        slot = (page + 1) % run->pages * RECORDS_PER_PAGE;
    }
    return false;
}

/* PagedHashTable.scan: the page's full records, each checked; false if one is wrong. */
static bool table_scan(struct run *run, int64_t page, uint64_t *full) {
    uint64_t seed = run->options->seed;
    uint64_t *records = touch_page(run, page);
    _Atomic uint32_t *lock = &run->versions[page];
    uint32_t version = version_lock(lock);
    bool good = true;
    for (int64_t i = 0; i < RECORDS_PER_PAGE; i++) {
        const uint64_t *r = records + i * RECORD_WORDS;
        if (r[1] == 0) {
            for (int w = 0; w < RECORD_WORDS; w++) good = good && r[w] == 0;
            continue;
        }
        (*full)++;
        for (int w = 1; w < RECORD_WORDS; w++) good = good && r[w] == table_value_word(r[0], w, seed);
    }
    version_unlock(lock, version);
    return good;
}

static int compare_pages(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* One batch (MultigetWorkload.BatchReader.step): hash every key, MADV_WILLNEED on each run of
 * consecutive home pages (sorted, without repeats), then look each key up. */
static inline void multiget_step(struct run *run, struct worker *w) {
    const struct options *o = run->options;
    int n = o->batch;
    for (int i = 0; i < n; i++) {
        w->batch_keys[i] = multiget_key((int64_t)xoshiro_below(&w->random, (uint64_t)run->keys), run->keys, o->seed);
        w->batch_pages[i] = table_home(run, w->batch_keys[i]) / RECORDS_PER_PAGE;
    }
    if (o->prefetch) {
        qsort(w->batch_pages, (size_t)n, sizeof *w->batch_pages, compare_pages);
        for (int i = 0; i < n;) {
            int64_t start = w->batch_pages[i], end = start + 1;
            while (++i < n && w->batch_pages[i] <= end) {
                if (w->batch_pages[i] == end) end++;
            }
            /* Advice: a failure only leaves the pages to their faults. */
            (void)madvise(run->memory + (size_t)start * PAGE_BYTES, (size_t)(end - start) * PAGE_BYTES, MADV_WILLNEED);
        }
    }
    for (int i = 0; i < n; i++) {
        if (!table_lookup(run, w->batch_keys[i])) {
            w->mismatches++;
            if (atomic_fetch_add_explicit(&run->mismatches_shown, 1, memory_order_relaxed) < 8)
                fprintf(stderr, "%s: key %llx: missing or damaged\n", program, (unsigned long long)w->batch_keys[i]);
        }
        w->reads++;
    }
}

static inline void multiget_populate_step(struct run *run, struct worker *w) {
    if (!table_insert(run, multiget_key(w->cursor++, run->keys, run->options->seed))) {
        fprintf(stderr, "%s: the hash table is full (%lld records): lower the load factor\n", program, (long long)run->capacity);
        exit(1);
    }
    w->writes++;
}

static inline void multiget_verify_step(struct run *run, struct worker *w) {
    if (!table_scan(run, w->cursor++, &w->records)) w->mismatches++;
    w->reads++;
}

/* One step of each phase: the work WorkloadDriver times. */
static inline void populate_step(struct run *run, struct worker *w) {
    page_write(run, w->cursor++);
    w->writes++;
}

static inline void access_step(struct run *run, struct worker *w) {
    int64_t page = next_page(run, w);
    if (access_writes(run, w)) {
        page_write(run, page);
        w->writes++;
    } else {
        if (!page_read(run, page, false)) w->mismatches++;
        w->reads++;
    }
}

static inline void verify_step(struct run *run, struct worker *w) {
    if (!page_read(run, w->cursor++, true)) w->mismatches++;
    w->reads++;
}

/*
 * WorkloadDriver's timing loop (DriverShared.drive): one clock read per step, a step's end is
 * the next one's start, until the quota or the deadline. `step` is a constant at each call site,
 * so the compiler inlines it into its own copy of the loop, as Swift specializes the loop for
 * each worker type.
 */
static inline __attribute__((always_inline)) void drive(struct run *run, struct worker *w, uint64_t deadline,
                                                        void (*step)(struct run *, struct worker *), uint64_t ops_per_step) {
    uint64_t steps = 0, before = monotonic_ns();
    while ((int64_t)steps < w->quota) {
        step(run, w);
        uint64_t after = monotonic_ns();
        if (ops_per_step == 1) histogram_record(&w->histogram, after - before);
        else histogram_record_times(&w->histogram, (after - before) / ops_per_step, ops_per_step);
        before = after;
        steps++;
        if (after >= deadline) break;
    }
    w->steps = steps;
    w->end_ns = before;
}

static void *worker_main(void *argument) {
    struct worker *w = argument;
    struct run *run = w->run;
    const struct options *o = run->options;
    /* The worker's setup is untimed, before the phase's clock starts. */
    histogram_init(&w->histogram);
    bool multiget = o->scenario == SCENARIO_MULTIGET;
    if (w->phase == PHASE_ACCESS) {
        start_access(run, w);
        /* WorkloadLimit: the clock, or a share of --param ops (multiget: in whole batches). */
        w->quota = o->ops > 0 ? share_start(o->ops, w->index + 1, o->threads) - share_start(o->ops, w->index, o->threads)
                              : INT64_MAX;
        if (multiget) {
            if (w->quota != INT64_MAX) w->quota = (w->quota + o->batch - 1) / o->batch;
            w->batch_keys = malloc((size_t)o->batch * sizeof *w->batch_keys);
            w->batch_pages = malloc((size_t)o->batch * sizeof *w->batch_pages);
            if (!w->batch_keys || !w->batch_pages) {
                fprintf(stderr, "%s: out of memory for a batch of %d keys\n", program, o->batch);
                exit(1);
            }
        }
    } else {
        /* multiget's populate inserts a share of the keys; every other one is a share of pages. */
        int64_t total = multiget && w->phase == PHASE_POPULATE ? run->keys : run->pages;
        w->cursor = share_start(total, w->index, o->threads);
        w->quota = share_start(total, w->index + 1, o->threads) - w->cursor;
    }
    pthread_barrier_wait(&run->ready);
    pthread_barrier_wait(&run->go);
    /* The barrier orders the main thread's write of start_ns before this read. */
    uint64_t deadline = w->phase == PHASE_ACCESS && o->ops == 0 ? run->start_ns + (uint64_t)(o->seconds * 1e9) : UINT64_MAX;
    if (multiget) {
        switch (w->phase) {
        case PHASE_POPULATE: drive(run, w, deadline, multiget_populate_step, 1); break;
        case PHASE_ACCESS: drive(run, w, deadline, multiget_step, (uint64_t)o->batch); break;
        default: drive(run, w, deadline, multiget_verify_step, 1); break;
        }
        free(w->batch_keys);
        free(w->batch_pages);
        return NULL;
    }
    switch (w->phase) {
    case PHASE_POPULATE: drive(run, w, deadline, populate_step, 1); break;
    case PHASE_ACCESS: drive(run, w, deadline, access_step, 1); break;
    default: drive(run, w, deadline, verify_step, 1); break;
    }
    return NULL;
}

/* What one phase did, summed over its threads. */
struct phase_result {
    struct histogram histogram;
    uint64_t ops, reads, writes, mismatches, records;
    uint64_t ops_per_thread[4096];
    double seconds;
};

/* Runs one phase on every thread and merges what they measured into `result`. */
static bool run_phase(struct run *run, int phase, struct phase_result *result) {
    int threads = run->options->threads;
    struct worker *workers = calloc((size_t)threads, sizeof *workers);
    if (!workers) {
        fprintf(stderr, "%s: out of memory for %d workers\n", program, threads);
        return false;
    }
    pthread_barrier_init(&run->ready, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&run->go, NULL, (unsigned)threads + 1);
    for (int t = 0; t < threads; t++) {
        workers[t] = (struct worker){.run = run, .index = t, .phase = phase};
        int error = pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]);
        if (error != 0) {
            fprintf(stderr, "%s: cannot start thread %d: %s\n", program, t, strerror(error));
            exit(1);
        }
    }
    pthread_barrier_wait(&run->ready);
    uint64_t start = monotonic_ns();
    run->start_ns = start;
    pthread_barrier_wait(&run->go);
    uint64_t end = start;
    histogram_init(&result->histogram);
    result->ops = result->reads = result->writes = result->mismatches = result->records = 0;
    /* multiget's access steps are batches: its ops are keys. */
    uint64_t per_step = phase == PHASE_ACCESS && run->options->scenario == SCENARIO_MULTIGET ? (uint64_t)run->options->batch : 1;
    for (int t = 0; t < threads; t++) {
        pthread_join(workers[t].thread, NULL);
        struct worker *w = &workers[t];
        histogram_merge(&result->histogram, &w->histogram);
        result->ops += w->steps * per_step;
        result->ops_per_thread[t] = w->steps * per_step;
        result->records += w->records;
        result->reads += w->reads;
        result->writes += w->writes;
        result->mismatches += w->mismatches;
        if (w->end_ns > end) end = w->end_ns;
    }
    result->seconds = (double)(end - start) / 1e9;
    pthread_barrier_destroy(&run->ready);
    pthread_barrier_destroy(&run->go);
    free(workers);
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* The kernel's view: the memory cgroup, swap counters, faults (MemoryCgroup, KernelSwapProbe). */

/* The whole of a small file (a /proc or cgroup file) into `buffer`; false if unreadable. */
static bool read_text(const char *path, char *buffer, size_t size) {
    FILE *file = fopen(path, "r");
    if (!file) return false;
    size_t length = fread(buffer, 1, size - 1, file);
    fclose(file);
    buffer[length] = 0;
    return true;
}

/* The value of `key` in a "key value" file (memory.stat, /proc/vmstat); -1 if absent. */
static int64_t stat_value(const char *path, const char *key) {
    FILE *file = fopen(path, "r");
    if (!file) return -1;
    char line[256], name[128];
    long long value;
    int64_t found = -1;
    while (fgets(line, sizeof line, file)) {
        if (sscanf(line, "%127s %lld", name, &value) == 2 && strcmp(name, key) == 0) {
            found = value;
            break;
        }
    }
    fclose(file);
    return found;
}

/* A limit file's bytes; -1 for "max" (v2), the page-rounded LONG_MAX of v1, or no file. */
static int64_t limit_value(const char *path) {
    char text[64];
    if (!read_text(path, text, sizeof text)) return -1;
    if (strncmp(text, "max", 3) == 0) return -1;
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || end == text || value < 0 || value >= (1LL << 62)) return -1;
    return value;
}

/* The memory cgroup this process runs in: v1's memory hierarchy first, then v2's, the first
 * whose limit file exists. */
struct cgroup {
    int version; /* 0: none */
    char path[1024];
    char directory[2048];
};

/* Whether the comma-separated list `list` holds `word`. */
static bool list_contains(const char *list, size_t length, const char *word) {
    size_t n = strlen(word);
    const char *end = list + length;
    for (const char *p = list; p < end;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        if ((size_t)(stop - p) == n && memcmp(p, word, n) == 0) return true;
        p = stop + 1;
    }
    return false;
}

static struct cgroup find_cgroup(void) {
    struct cgroup found = {0};
    char v1_mount[1024] = "", v2_mount[1024] = "";
    FILE *mounts = fopen("/proc/mounts", "r");
    if (mounts) {
        char device[1024], point[1024], type[64], flags[1024];
        while (fscanf(mounts, "%1023s %1023s %63s %1023s %*[^\n]", device, point, type, flags) == 4) {
            /* /proc/mounts writes a space in a path as \040. */
            for (char *s = strstr(point, "\\040"); s; s = strstr(s + 1, "\\040")) {
                *s = ' ';
                memmove(s + 1, s + 4, strlen(s + 4) + 1);
            }
            if (strcmp(type, "cgroup") == 0 && !v1_mount[0] && list_contains(flags, strlen(flags), "memory"))
                snprintf(v1_mount, sizeof v1_mount, "%s", point);
            else if (strcmp(type, "cgroup2") == 0 && !v2_mount[0])
                snprintf(v2_mount, sizeof v2_mount, "%s", point);
        }
        fclose(mounts);
    }
    struct cgroup candidates[2] = {{0}, {0}}; /* v1, v2 */
    FILE *self = fopen("/proc/self/cgroup", "r");
    if (self) {
        char line[2048];
        while (fgets(line, sizeof line, self)) {
            line[strcspn(line, "\n")] = 0;
            /* hierarchy-ID:controller-list:path; the path may itself hold colons. */
            char *first = strchr(line, ':');
            char *second = first ? strchr(first + 1, ':') : NULL;
            if (!second) continue;
            const char *path = second + 1;
            struct cgroup *c = NULL;
            const char *mount = NULL;
            if (first - line == 1 && line[0] == '0' && second == first + 1) {
                c = &candidates[1];
                c->version = 2;
                mount = v2_mount;
            } else if (list_contains(first + 1, (size_t)(second - first - 1), "memory")) {
                c = &candidates[0];
                c->version = 1;
                mount = v1_mount;
            }
            if (!c || !mount[0]) {
                if (c) c->version = 0;
                continue;
            }
            snprintf(c->path, sizeof c->path, "%s", path);
            snprintf(c->directory, sizeof c->directory, "%s%s", mount, strcmp(path, "/") == 0 ? "" : path);
        }
        fclose(self);
    }
    for (int i = 0; i < 2; i++) {
        if (!candidates[i].version) continue;
        char limit[2200];
        snprintf(limit, sizeof limit, "%s/%s", candidates[i].directory,
                 candidates[i].version == 1 ? "memory.limit_in_bytes" : "memory.max");
        if (access(limit, F_OK) == 0) return candidates[i];
    }
    return found;
}

static int64_t cgroup_file_value(const struct cgroup *c, const char *v1_name, const char *v2_name) {
    if (!c->version) return -1;
    char path[2200];
    snprintf(path, sizeof path, "%s/%s", c->directory, c->version == 1 ? v1_name : v2_name);
    return limit_value(path);
}

static int64_t cgroup_limit(const struct cgroup *c) { return cgroup_file_value(c, "memory.limit_in_bytes", "memory.max"); }
static int64_t cgroup_peak(const struct cgroup *c) { return cgroup_file_value(c, "memory.max_usage_in_bytes", "memory.peak"); }

/* Pages swapped in and out so far: the cgroup's memory.stat when it counts them, else the
 * machine's /proc/vmstat (then other processes' swapping counts too). */
struct swap_counts {
    int64_t ins, outs;
};

static const char *swap_source(const struct cgroup *c, char *stat_path, size_t size) {
    if (c->version) {
        snprintf(stat_path, size, "%s/memory.stat", c->directory);
        if (stat_value(stat_path, "pswpin") >= 0) return "memory.stat";
    }
    snprintf(stat_path, size, "/proc/vmstat");
    return "/proc/vmstat";
}

__attribute__((unused)) static struct swap_counts swap_now(const char *stat_path) {
    struct swap_counts s = {stat_value(stat_path, "pswpin"), stat_value(stat_path, "pswpout")};
    if (s.ins < 0) s.ins = 0;
    if (s.outs < 0) s.outs = 0;
    return s;
}

/* Page faults that waited for I/O, the whole process (all its threads). */
__attribute__((unused)) static int64_t major_faults_now(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (int64_t)usage.ru_majflt;
}

/* The process's resident high-water mark (VmHWM) in bytes; 0 if unreadable. */
static int64_t peak_rss(void) {
    FILE *file = fopen("/proc/self/status", "r");
    if (!file) return 0;
    char line[256];
    long long kib = 0;
    while (fgets(line, sizeof line, file))
        if (sscanf(line, "VmHWM: %lld kB", &kib) == 1) break;
    fclose(file);
    return (int64_t)kib * 1024;
}

/* The swap the kernel has on, in bytes as UserSwap counts a swap file's (/proc/swaps leaves
 * out each device's header page); 0 when none is on. */
static int64_t swap_bytes(void) {
    FILE *file = fopen("/proc/swaps", "r");
    if (!file) return 0;
    char line[1024];
    long long kib;
    int64_t total = 0;
    /* A header, then "Filename Type Size(KiB) Used(KiB) Priority" per device. */
    if (fgets(line, sizeof line, file))
        while (fgets(line, sizeof line, file))
            if (sscanf(line, "%*s %*s %lld", &kib) == 1) total += (int64_t)kib * 1024 + PAGE_BYTES;
    fclose(file);
    return total;
}

/* ------------------------------------------------------------------------------------------ */
/* The command line.                                                                            */

static void usage_line(FILE *to) {
    fprintf(to, "usage: %s random|zipf|seq|multiget --data SIZE [--threads N] [--seconds S] [--seed N]\n"
                "       [--param write_ratio=R] [--param theta=T] [--param repeats=N] [--json FILE]\n"
                "       [--param batch=B] [--param prefetch=on|off] [--param load=F]\n"
                "       [--memory SIZE] [--dump-pages N] [--dump-fill PAGE:VERSION]\n", program);
}

static void help(void) {
    usage_line(stdout);
    printf("\n"
           "The kernel side of bench/kernel-compare in C: the same work as\n"
           "`userswap bench SCENARIO --mode kernel`, over plain anonymous memory that the kernel\n"
           "swaps when this runs in a memory cgroup limited below the data.\n\n"
           "  --data SIZE        the data (default 256M; K, M, G, T suffixes, binary)\n"
           "  --threads N        worker threads, 1...4096 (default 2)\n"
           "  --seconds S        length of the timed access phase (default 5)\n"
           "  --seed N           the workload's seed (default 24301)\n"
           "  --param write_ratio=R   fraction of accesses that write (default 0.2; seq 0)\n"
           "  --param theta=T    zipf's skew, 0 < T < 1 (default 0.99)\n"
           "  --param repeats=N  each page repeats its first 4096/N bytes N times (1...64, default 1)\n"
           "  --param ops=N      N accesses over all threads instead of --seconds\n"
           "  --param thp=on|off transparent huge pages for the data (default off: 4 KiB pages)\n"
           "  --param batch=B    multiget: keys per batch, 1...4096 (default 32)\n"
           "  --param prefetch=on|off  multiget: MADV_WILLNEED on a batch's pages first (default on)\n"
           "  --param load=F     multiget: the hash table's fill, above 0, at most 0.9 (default 0.5)\n"
           "  --param cgroup=, workingset=on, io=, reads=, writes_in_flight=, raw=\n"
           "                     accepted as the Swift kernel mode accepts them; nothing to do here\n"
           "  --json FILE        write the report there\n"
           "  --memory SIZE      the budget to report when no cgroup limit is found (informational)\n"
           "  --dump-pages N     print each thread's first N accesses (\"THREAD PAGE r|w\") and exit\n"
           "  --dump-fill PAGE:VERSION  print the 512 words a write of that version stores and exit\n"
           "  --dir DIR, --no-progress  accepted for the Swift bench's command line, ignored\n\n"
           "Exit status: 0 when every page verified, 1 on a failure, 64 on a usage error.\n");
}

static _Noreturn __attribute__((format(printf, 1, 2))) void usage_error(const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    fprintf(stderr, "%s: ", program);
    vfprintf(stderr, format, arguments);
    fprintf(stderr, "\n");
    va_end(arguments);
    usage_line(stderr);
    exit(64);
}

/* A size: digits with at most one '.', then an optional binary unit (K, KB, KiB, M, G, T);
 * it must come to a whole number of bytes. -1 when it does not parse. */
static int64_t parse_size(const char *text) {
    const char *p = text;
    uint64_t whole = 0, fraction = 0, denominator = 1;
    bool digits = false;
    while (*p >= '0' && *p <= '9') {
        if (whole > (UINT64_C(1) << 50)) return -1;
        whole = whole * 10 + (uint64_t)(*p++ - '0');
        digits = true;
    }
    if (*p == '.') {
        p++;
        bool any = false;
        while (*p >= '0' && *p <= '9') {
            if (denominator > UINT64_C(100000000000000)) return -1;
            fraction = fraction * 10 + (uint64_t)(*p++ - '0');
            denominator *= 10;
            any = true;
        }
        if (!any) return -1;
        digits = true;
    }
    if (!digits) return -1;
    int shift;
    char unit[8] = "";
    if (strlen(p) >= sizeof unit) return -1;
    for (int i = 0; p[i]; i++) unit[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
    if (!*unit || !strcmp(unit, "b")) shift = 0;
    else if (!strcmp(unit, "k") || !strcmp(unit, "kb") || !strcmp(unit, "kib")) shift = 10;
    else if (!strcmp(unit, "m") || !strcmp(unit, "mb") || !strcmp(unit, "mib")) shift = 20;
    else if (!strcmp(unit, "g") || !strcmp(unit, "gb") || !strcmp(unit, "gib")) shift = 30;
    else if (!strcmp(unit, "t") || !strcmp(unit, "tb") || !strcmp(unit, "tib")) shift = 40;
    else return -1;
    if (whole > (UINT64_C(1) << (62 - shift))) return -1;
    uint64_t scaled = fraction << shift;
    if (scaled % denominator != 0) return -1;
    return (int64_t)((whole << shift) + scaled / denominator);
}

/* A whole number in [low, high]; false when it is not one. */
static bool parse_integer(const char *text, long long low, long long high, long long *value) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end || v < low || v > high) return false;
    *value = v;
    return true;
}

static bool parse_double(const char *text, double *value) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end) return false;
    *value = v;
    return true;
}

static struct options parse_options(int argc, char **argv) {
    struct options o = {.data_bytes = 256 << 20, .memory_bytes = -1, .threads = 2, .seconds = 5,
                        .seed = 24301, .write_ratio = -1, .theta = 0.99, .repeats = 1,
                        .load = 0.5, .batch = 32, .prefetch = true};
    bool have_scenario = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            help();
            exit(0);
        }
        if (arg[0] != '-') {
            if (have_scenario) usage_error("one scenario only: '%s' is one too many", arg);
            if (!strcmp(arg, "random")) o.scenario = SCENARIO_RANDOM;
            else if (!strcmp(arg, "zipf")) o.scenario = SCENARIO_ZIPF;
            else if (!strcmp(arg, "seq")) o.scenario = SCENARIO_SEQ;
            else if (!strcmp(arg, "multiget")) o.scenario = SCENARIO_MULTIGET;
            else usage_error("unknown scenario '%s'; use random, zipf, seq or multiget", arg);
            have_scenario = true;
            continue;
        }
        if (!strcmp(arg, "--no-progress")) continue;
        /* --option VALUE or --option=VALUE */
        char name[64];
        const char *value;
        const char *equals = strchr(arg, '=');
        if (equals) {
            if ((size_t)(equals - arg) >= sizeof name) usage_error("unknown option %s", arg);
            memcpy(name, arg, (size_t)(equals - arg));
            name[equals - arg] = 0;
            value = equals + 1;
        } else {
            snprintf(name, sizeof name, "%s", arg);
            if (i + 1 >= argc) usage_error("%s needs a value", arg);
            value = argv[++i];
        }
        long long n;
        if (!strcmp(name, "--data")) {
            if ((o.data_bytes = parse_size(value)) < 0) usage_error("--data '%s' is not a size; write e.g. 256M, 1G", value);
        } else if (!strcmp(name, "--memory")) {
            if ((o.memory_bytes = parse_size(value)) < 0) usage_error("--memory '%s' is not a size; write e.g. 64M", value);
        } else if (!strcmp(name, "--threads")) {
            if (!parse_integer(value, 1, 4096, &n)) usage_error("--threads '%s': give a whole number from 1 to 4096", value);
            o.threads = (int)n;
        } else if (!strcmp(name, "--seconds")) {
            if (!parse_double(value, &o.seconds) || !(o.seconds > 0 && o.seconds <= 86400))
                usage_error("--seconds '%s': give a number of seconds above 0 and at most 86400", value);
        } else if (!strcmp(name, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long seed = strtoull(value, &end, 10);
            if (errno != 0 || end == value || *end || value[0] < '0' || value[0] > '9')
                usage_error("--seed '%s' is not a whole number from 0 to 18446744073709551615", value);
            o.seed = seed;
        } else if (!strcmp(name, "--json")) {
            if (!*value) usage_error("--json needs a file name");
            o.json = value;
        } else if (!strcmp(name, "--dump-pages")) {
            if (!parse_integer(value, 1, 1000000000, &n)) usage_error("--dump-pages '%s': give a positive whole number", value);
            o.dump_pages = n;
        } else if (!strcmp(name, "--dump-fill")) {
            long long page, version;
            char extra;
            if (sscanf(value, "%lld:%lld%c", &page, &version, &extra) != 2 || page < 0 || version < 1 || version > (long long)VERSION_MASK)
                usage_error("--dump-fill '%s': give PAGE:VERSION, a page and a version of at least 1", value);
            o.dump_fill_page = page;
            o.dump_fill_version = (uint32_t)version;
        } else if (!strcmp(name, "--dir")) {
            /* The Swift bench's swap-file folder: this program has none. */
        } else if (!strcmp(name, "--param")) {
            const char *eq = strchr(value, '=');
            if (!eq || eq == value) usage_error("--param '%s' must be KEY=VALUE", value);
            const char *v = eq + 1;
            size_t key = (size_t)(eq - value);
            if (key == 11 && !strncmp(value, "write_ratio", key)) {
                if (!parse_double(v, &o.write_ratio) || !(o.write_ratio >= 0 && o.write_ratio <= 1))
                    usage_error("--param write_ratio=%s: a write ratio is between 0 and 1", v);
            } else if (key == 5 && !strncmp(value, "theta", key)) {
                if (!parse_double(v, &o.theta) || !(o.theta > 0 && o.theta < 1))
                    usage_error("--param theta=%s: Zipf's theta must be above 0 and below 1", v);
            } else if (key == 7 && !strncmp(value, "repeats", key)) {
                if (!parse_integer(v, 1, 64, &n) || (n & (n - 1)) != 0)
                    usage_error("--param repeats=%s: page repeats are a power of two from 1 to 64", v);
                o.repeats = (int)n;
            } else if (key == 3 && !strncmp(value, "ops", key)) {
                if (!parse_integer(v, 1, LLONG_MAX, &n)) usage_error("--param ops=%s: give at least 1", v);
                o.ops = n;
            } else if (key == 3 && !strncmp(value, "thp", key)) {
                if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) usage_error("--param thp=%s: use on or off", v);
                o.huge_pages = !strcmp(v, "on");
            } else if (key == 10 && !strncmp(value, "workingset", key)) {
                if (strcmp(v, "on") != 0)
                    usage_error("--param workingset=%s: the kernel's workingset detection cannot be turned off", v);
            } else if (key == 5 && !strncmp(value, "batch", key)) {
                if (!parse_integer(v, 1, 4096, &n)) usage_error("--param batch=%s: give 1 to 4096 keys", v);
                o.batch = (int)n;
            } else if (key == 8 && !strncmp(value, "prefetch", key)) {
                if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) usage_error("--param prefetch=%s: use on or off", v);
                o.prefetch = !strcmp(v, "on");
            } else if (key == 4 && !strncmp(value, "load", key)) {
                if (!parse_double(v, &o.load) || !(o.load > 0 && o.load <= 0.9))
                    usage_error("--param load=%s: a load factor is above 0 and at most 0.9", v);
            } else if ((key == 6 && !strncmp(value, "cgroup", key)) || (key == 3 && !strncmp(value, "raw", key)) ||
                       (key == 2 && !strncmp(value, "io", key)) || (key == 5 && !strncmp(value, "reads", key)) ||
                       (key == 16 && !strncmp(value, "writes_in_flight", key))) {
                /* The Swift kernel mode takes these too: the cgroup rule (this driver runs with or
                 * without a limit, saying so), and knobs of the hash table and of UserSwap's engine. */
            } else {
                usage_error("--param '%s': this driver knows write_ratio, theta, repeats, ops, thp, batch, prefetch "
                            "and load (and accepts cgroup, workingset, io, reads, writes_in_flight, raw)", value);
            }
        } else {
            usage_error("unknown option %s", name);
        }
    }
    if (!have_scenario && !o.dump_fill_version) usage_error("needs a scenario: random, zipf, seq or multiget");
    /* The Swift bench's defaults: 20 % writes, none for seq (SeqScenario.defaultWriteRatio);
     * multiget only reads. */
    if (o.write_ratio < 0 || o.scenario == SCENARIO_MULTIGET) o.write_ratio = o.scenario == SCENARIO_SEQ || o.scenario == SCENARIO_MULTIGET ? 0 : 0.2;
    int64_t pages = (o.data_bytes + PAGE_BYTES - 1) / PAGE_BYTES;
    if (pages < 2) usage_error("--data of %lld bytes is less than two pages; give at least 8K", (long long)o.data_bytes);
    if (pages > (INT64_C(1) << 31)) usage_error("--data of %lld bytes is more than 2^31 pages (8 TiB)", (long long)o.data_bytes);
    return o;
}

/* ------------------------------------------------------------------------------------------ */
/* The report.                                                                                  */

static void json_latency(FILE *out, const struct histogram *h) {
    fprintf(out, "{\"p50\": %.3f, \"p99\": %.3f, \"p999\": %.3f, \"max\": %.3f, \"mean\": %.3f, \"count\": %llu}",
            histogram_quantile(h, 0.50) / 1000.0, histogram_quantile(h, 0.99) / 1000.0,
            histogram_quantile(h, 0.999) / 1000.0, h->maximum / 1000.0,
            h->count ? round((double)h->sum / (double)h->count) / 1000.0 : 0.0, (unsigned long long)h->count);
}

/* Everything the report says, gathered after the run. */
struct report {
    const struct options *o;
    const struct cgroup *cgroup;
    const char *swap_source;
    struct phase_result *populate, *access, *verify;
    int64_t budget, limit, peak, swap_ins, swap_outs, major_faults, swap_bytes;
    bool verified;
};

static bool write_json(const struct report *r) {
    const struct options *o = r->o;
    char temporary[4200];
    snprintf(temporary, sizeof temporary, "%s.tmp.%d", o->json, (int)getpid());
    FILE *out = fopen(temporary, "w");
    if (!out) {
        fprintf(stderr, "%s: cannot write %s: %s\n", program, temporary, strerror(errno));
        return false;
    }
    struct utsname names;
    if (uname(&names) != 0) snprintf(names.release, sizeof names.release, "unknown");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    char meminfo[4096];
    long long mem_kib = 0;
    if (read_text("/proc/meminfo", meminfo, sizeof meminfo)) sscanf(meminfo, "MemTotal: %lld kB", &mem_kib);
    char date[32];
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &utc);

    const struct phase_result *a = r->access;
    fprintf(out, "{\n  \"scenario\": \"%s\",\n  \"mode\": \"kernel\",\n  \"driver\": \"c\",\n", scenario_names[o->scenario]);
    fprintf(out, "  \"threads\": %d,\n  \"ops\": %llu,\n  \"seconds\": %.9f,\n  \"ops_per_s\": %.3f,\n", o->threads,
            (unsigned long long)a->ops, a->seconds, a->seconds > 0 ? (double)a->ops / a->seconds : 0.0);
    fprintf(out, "  \"latency_us\": ");
    json_latency(out, &a->histogram);
    fprintf(out, ",\n  \"latency_cdf\": [");
    static const double cdf[] = {0, .05, .1, .15, .2, .25, .3, .35, .4, .45, .5, .55, .6, .65, .7, .75, .8, .85, .9,
                                 .95, .98, .99, .995, .998, .999, .9995, .9999, .99999, 1};
    for (size_t i = 0; a->histogram.count && i < sizeof cdf / sizeof cdf[0]; i++)
        fprintf(out, "%s[%g, %.3f]", i ? ", " : "", cdf[i], histogram_quantile(&a->histogram, cdf[i]) / 1000.0);
    fprintf(out, "],\n");
    fprintf(out, "  \"budget_bytes\": %lld,\n  \"data_bytes\": %lld,\n  \"peak_resident_bytes\": %lld,\n",
            (long long)r->budget, (long long)o->data_bytes, (long long)r->peak);
    fprintf(out, "  \"swap_ins\": %lld,\n  \"swap_outs\": %lld,\n  \"device_reads\": %lld,\n  \"device_writes\": %lld,\n",
            (long long)r->swap_ins, (long long)r->swap_outs, (long long)r->swap_ins, (long long)r->swap_outs);
    fprintf(out, "  \"major_faults\": %lld,\n  \"verified\": %s,\n", (long long)r->major_faults, r->verified ? "true" : "false");
    fprintf(out, "  \"machine\": {\"cores\": %ld, \"memory_bytes\": %lld, \"kernel\": \"%s\", \"date\": \"%s\"},\n",
            cores, mem_kib * 1024, names.release, date);
    fprintf(out, "  \"populate_seconds\": %.9f,\n  \"verify_seconds\": %.9f,\n", r->populate->seconds, r->verify->seconds);
    fprintf(out, "  \"seed\": %llu,\n  \"write_ratio\": %.17g,\n", (unsigned long long)o->seed, o->write_ratio);
    if (o->scenario == SCENARIO_ZIPF) fprintf(out, "  \"theta\": %.17g,\n", o->theta);
    if (o->scenario == SCENARIO_MULTIGET)
        fprintf(out, "  \"batch\": %d,\n  \"prefetch\": %s,\n  \"load_factor\": %.17g,\n  \"records_found\": %llu,\n"
                     "  \"prefetch_method\": \"%s\",\n", o->batch, o->prefetch ? "true" : "false", o->load,
                (unsigned long long)r->verify->records,
                o->prefetch ? "madvise(MADV_WILLNEED) on each run of consecutive pages of the batch (C driver)" : "none");
    fprintf(out, "  \"page_repeats\": %d,\n  \"ops_per_thread\": [", o->repeats);
    for (int t = 0; t < o->threads; t++) fprintf(out, "%s%llu", t ? ", " : "", (unsigned long long)a->ops_per_thread[t]);
    fprintf(out, "],\n  \"reads_checked\": %llu,\n  \"read_mismatches\": %llu,\n", (unsigned long long)a->reads,
            (unsigned long long)a->mismatches);
    fprintf(out, "  \"verified_units\": %llu,\n  \"verified_unit\": \"%s\",\n  \"verify_mismatches\": %llu,\n",
            (unsigned long long)r->verify->reads, o->scenario == SCENARIO_MULTIGET ? "pages of the table" : "pages",
            (unsigned long long)r->verify->mismatches);
    fprintf(out, "  \"swap_bytes\": %lld,\n  \"swap_counter_source\": \"%s\",\n", (long long)r->swap_bytes, r->swap_source);
    if (r->cgroup->version) {
        fprintf(out, "  \"cgroup\": {\"version\": %d, \"path\": \"", r->cgroup->version);
        for (const char *p = r->cgroup->path; *p; p++) {
            if (*p == '"' || *p == '\\') fputc('\\', out);
            if ((unsigned char)*p >= 0x20) fputc(*p, out);
        }
        fprintf(out, "\"");
        if (r->limit >= 0) fprintf(out, ", \"limit_bytes\": %lld", (long long)r->limit);
        fprintf(out, "},\n");
    } else {
        fprintf(out, "  \"cgroup\": null,\n");
    }
    fprintf(out, "  \"note\": \"an independent C driver of the kernel side: the same pages, writes and checks as "
                 "userswap bench %s --mode kernel for the same seed and threads; swap_ins/swap_outs (= device_reads/"
                 "device_writes) are pswpin/pswpout over the access phase, major_faults the process's over it\"\n}\n",
            scenario_names[o->scenario]);
    bool ok = fflush(out) == 0 && !ferror(out);
    ok = fclose(out) == 0 && ok;
    if (!ok || rename(temporary, o->json) != 0) {
        fprintf(stderr, "%s: cannot write %s: %s\n", program, o->json, strerror(errno));
        unlink(temporary);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */

/* --dump-pages: each thread's first N accesses, as the access phase would make them. */
static void dump_pages(struct run *run) {
    const struct options *o = run->options;
    for (int t = 0; t < o->threads; t++) {
        struct worker w = {.run = run, .index = t};
        start_access(run, &w);
        for (int64_t i = 0; i < o->dump_pages; i++) {
            int64_t page = next_page(run, &w);
            printf("%d %lld %c\n", t, (long long)page, access_writes(run, &w) ? 'w' : 'r');
        }
    }
}

/* --dump-fill PAGE:VERSION: the words a write of that version stores, in hex, one per line. */
static void dump_fill(const struct options *o) {
    uint64_t words[PAGE_WORDS];
    pattern_fill(words, (uint64_t)o->dump_fill_page, o->dump_fill_version, o->seed, PAGE_WORDS / o->repeats);
    for (int i = 0; i < PAGE_WORDS; i++) printf("%016llx\n", (unsigned long long)words[i]);
}

int main(int argc, char **argv) {
    struct options o = parse_options(argc, argv);
    if (o.dump_fill_version) {
        dump_fill(&o);
        return 0;
    }
    struct run run = {.options = &o};
    run.pages = (o.data_bytes + PAGE_BYTES - 1) / PAGE_BYTES;
    run.period = PAGE_WORDS / o.repeats;
    /* PageAccessWorkload: the threshold on a 64-bit draw; a ratio of 1 writes always. */
    run.writes_always = o.write_ratio >= 1;
    run.threshold = run.writes_always ? UINT64_MAX : (uint64_t)(o.write_ratio * 0x1p64);
    if (o.scenario == SCENARIO_ZIPF) run.zipf = zipf_make(run.pages, o.theta, o.seed);
    run.capacity = run.pages * RECORDS_PER_PAGE;
    run.keys = (int64_t)((double)run.capacity * o.load);
    if (run.keys < 1) run.keys = 1;
    if (o.dump_pages > 0) {
        dump_pages(&run);
        return fflush(stdout) == 0 ? 0 : 1;
    }

    struct cgroup cgroup = find_cgroup();
    int64_t limit = cgroup_limit(&cgroup);
    if (limit < 0) {
        fprintf(stderr, "%s: note: %s: the kernel will not swap this run's data\n", program,
                cgroup.version ? "the memory cgroup has no limit" : "no memory cgroup");
#ifndef KERNEL_DRIVER_USERSWAP
    } else if (swap_bytes() == 0 && o.data_bytes >= limit) {
        fprintf(stderr, "%s: no swap is on (/proc/swaps lists none): the cgroup's limit (%lld bytes) would kill the run; "
                        "turn a swap file on (bench/kernel-compare does)\n", program, (long long)limit);
        return 1;
#endif
    }

    size_t bytes = (size_t)run.pages * PAGE_BYTES;
#ifdef KERNEL_DRIVER_USERSWAP
    userswap_space *space;
    void *memory;
    const char *fault_service = getenv("KERNEL_DRIVER_FAULTS");
    unsigned map_flags = fault_service && strcmp(fault_service, "faulting_thread") == 0 ? USERSWAP_MAP_FAULTING_THREAD : 0;
    if (userswap_space_from_env(&space) != USERSWAP_OK || userswap_map(space, bytes, map_flags, &memory) != USERSWAP_OK) {
        fprintf(stderr, "%s: libuserswap: %s\n", program, userswap_last_error());
        return 1;
    }
#else
    void *memory = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
        fprintf(stderr, "%s: cannot map %zu bytes of anonymous memory: %s\n", program, bytes, strerror(errno));
        return 1;
    }
    /* 4 KiB pages whatever the THP setting unless thp=on, as AnonymousPageStore asks (advice only). */
    (void)madvise(memory, bytes, o.huge_pages ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
#endif
    run.memory = memory;
    /* calloc: every version 0 ("never written"), as PageVersions starts. */
    run.versions = calloc((size_t)run.pages, sizeof *run.versions);
    /* Static: each holds a 4096-thread array, too large for the stack. */
    static struct phase_result populate, access_phase, verify;
    if (!run.versions) {
        fprintf(stderr, "%s: out of memory for %lld page versions\n", program, (long long)run.pages);
        return 1;
    }

    char stat_path[2200];
    const char *source = swap_source(&cgroup, stat_path, sizeof stat_path);
    fprintf(stderr, "%s: %s over %lld pages, %d threads, seed %llu, %.0f %% writes; cgroup %s (limit %lld), swap counters from %s\n",
            program, scenario_names[o.scenario], (long long)run.pages, o.threads, (unsigned long long)o.seed,
            o.write_ratio * 100, cgroup.version ? cgroup.path : "none", (long long)limit, source);

    if (!run_phase(&run, PHASE_POPULATE, &populate)) return 1;
#ifdef KERNEL_DRIVER_USERSWAP
    /* The library's counters: the kernel swaps nothing of this run. */
    userswap_stats stats_before = {.size = sizeof stats_before}, stats_after = {.size = sizeof stats_after};
    userswap_stats_get(space, &stats_before);
    if (!run_phase(&run, PHASE_ACCESS, &access_phase)) return 1;
    userswap_stats_get(space, &stats_after);
    struct swap_counts before = {(int64_t)stats_before.swap_ins, (int64_t)stats_before.swap_outs};
    struct swap_counts after = {(int64_t)stats_after.swap_ins, (int64_t)stats_after.swap_outs};
    int64_t faults = (int64_t)(stats_after.major_faults - stats_before.major_faults);
    source = "libuserswap";
#else
    struct swap_counts before = swap_now(stat_path);
    int64_t faults_before = major_faults_now();
    if (!run_phase(&run, PHASE_ACCESS, &access_phase)) return 1;
    int64_t faults = major_faults_now() - faults_before;
    struct swap_counts after = swap_now(stat_path);
#endif
    if (!run_phase(&run, PHASE_VERIFY, &verify)) return 1;

    struct report r = {
        .o = &o, .cgroup = &cgroup, .swap_source = source,
        .populate = &populate, .access = &access_phase, .verify = &verify,
        .budget = limit >= 0 ? limit : (o.memory_bytes >= 0 ? o.memory_bytes : 0), .limit = limit,
        .swap_ins = after.ins - before.ins, .swap_outs = after.outs - before.outs, .major_faults = faults,
        .swap_bytes = swap_bytes(),
        .verified = access_phase.mismatches == 0 && verify.mismatches == 0 && verify.reads == (uint64_t)run.pages &&
                    (o.scenario != SCENARIO_MULTIGET || verify.records == (uint64_t)run.keys),
    };
#ifdef KERNEL_DRIVER_USERSWAP
    /* The library counts a swap file's slots; the file has a header page beside them, which
     * the other sides' `swap_bytes` include. */
    r.swap_bytes = stats_after.swap_total > 0 ? (int64_t)stats_after.swap_total + PAGE_BYTES : 0;
#endif
    /* The cgroup's peak when the cgroup is limited (the run's own), else the process's VmHWM. */
    r.peak = limit >= 0 && cgroup_peak(&cgroup) >= 0 ? cgroup_peak(&cgroup) : peak_rss();

    const struct histogram *h = &access_phase.histogram;
    printf("%s (" DRIVER_SIDE ", %d threads): %llu ops in %.3f s = %.0f ops/s\n", scenario_names[o.scenario],
           o.threads, (unsigned long long)access_phase.ops, access_phase.seconds,
           access_phase.seconds > 0 ? (double)access_phase.ops / access_phase.seconds : 0.0);
    printf("  latency p50 %.3f us, p99 %.3f us, p99.9 %.3f us, max %.3f us\n", histogram_quantile(h, 0.5) / 1000.0,
           histogram_quantile(h, 0.99) / 1000.0, histogram_quantile(h, 0.999) / 1000.0, h->maximum / 1000.0);
    printf("  populate %.3f s, verify %.3f s; swap-ins %lld, swap-outs %lld, major faults %lld; peak %lld bytes\n",
           populate.seconds, verify.seconds, (long long)r.swap_ins, (long long)r.swap_outs, (long long)faults,
           (long long)r.peak);
    printf("  %s: %llu reads checked (%llu mismatches), %llu pages verified (%llu mismatches)\n",
           r.verified ? "verified" : "VERIFICATION FAILED", (unsigned long long)access_phase.reads,
           (unsigned long long)access_phase.mismatches, (unsigned long long)verify.reads,
           (unsigned long long)verify.mismatches);
    if (o.json && !write_json(&r)) return 1;
#ifdef KERNEL_DRIVER_USERSWAP
    userswap_unmap(space, memory);
    userswap_space_destroy(space);
#else
    munmap(memory, bytes);
#endif
    free(run.versions);
    return r.verified ? 0 : 1;
}
