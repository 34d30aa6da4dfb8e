/*
 * Every error code of userswap.h, each reached by a call that must fail with it (and a message
 * in userswap_last_error), and the calls around them that must succeed: pins, advice, discard,
 * groups with limits, statistics of an older struct size, spaces from the environment.
 *
 *     errors <scratch directory>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/userfaultfd.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <userswap.h>

static int failures;
static int reached[USERSWAP_EENV + 1];
static char scratch[4096];

/* Expects `code` from the call; prints the library's message. */
static void expect(int got, int want, const char *call) {
    const char *message = userswap_last_error();
    if (got != want) {
        fprintf(stderr, "errors: %s returned %d (%s), expected %d (%s): %s\n", call, got, userswap_strerror(got), want,
                userswap_strerror(want), message);
        failures++;
        return;
    }
    if (want != USERSWAP_OK) {
        if (message[0] == 0) {
            fprintf(stderr, "errors: %s failed with %s but left no message\n", call, userswap_strerror(want));
            failures++;
        }
        printf("errors: %-48s %-17s %s\n", call, userswap_strerror(want), message);
        reached[want] = 1;
    }
}

#define EXPECT(call, want) expect((call), (want), #call)
#define OK(call) expect((call), USERSWAP_OK, #call)

static void check(int condition, const char *what) {
    if (!condition) {
        fprintf(stderr, "errors: not true: %s\n", what);
        failures++;
    }
}

static userswap_space *space_of(size_t memory, size_t swap) {
    userswap_config config;
    userswap_config_init(&config);
    config.memory = memory;
    config.swap_size = swap;
    config.swap_dir = scratch;
    userswap_space *space = NULL;
    OK(userswap_space_create(&config, &space));
    if (!space) exit(1);
    return space;
}

static char *path_in(const char *name) {
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", scratch, name);
    return path;
}

/* In a child: a filter that fails userfaultfd(2) and ioctl(USERFAULTFD_IOC_NEW) with `error`, then
 * a mapping, which must fail with `want`. The child's exit status is the number of failures. */
static void map_without_userfaultfd(int error, int want, const char *call) {
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        struct sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_userfaultfd, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (error & SECCOMP_RET_DATA)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)USERFAULTFD_IOC_NEW, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (error & SECCOMP_RET_DATA)),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog program = {.len = sizeof filter / sizeof filter[0], .filter = filter};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) {
            perror("errors: seccomp");
            _exit(1);
        }
        userswap_space *space = space_of(1 << 20, 0);
        void *addr;
        expect(userswap_map(space, 1 << 20, 0, &addr), want, call);
        userswap_space_destroy(space);
        fflush(stdout);
        _exit(failures);
    }
    int status;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "errors: the child for %s failed\n", call);
        failures++;
    }
    reached[want] = 1;
}

int main(int argc, char **argv) {
    snprintf(scratch, sizeof scratch, "%s", argc > 1 ? argv[1] : "/tmp");
    check(userswap_version() == USERSWAP_VERSION, "userswap_version() == USERSWAP_VERSION");
    check(strcmp(userswap_strerror(USERSWAP_OK), "success") == 0, "strerror(0) is success");
    check(strcmp(userswap_strerror(-1), "unknown error") == 0 && strcmp(userswap_strerror(999), "unknown error") == 0,
          "strerror of unknown codes");
    for (int code = USERSWAP_OK; code <= USERSWAP_EENV; code++) check(userswap_strerror(code)[0] != 0, "a name per code");

    /* ENOTSUP and EACCES from userfaultfd: first, while this process has no engine threads to lose in a fork. */
    map_without_userfaultfd(ENOSYS, USERSWAP_ENOTSUP, "userswap_map without userfaultfd (ENOSYS)");
    map_without_userfaultfd(EPERM, USERSWAP_EACCES, "userswap_map with userfaultfd refused (EPERM)");

    /* EINVAL */
    userswap_space *space = NULL;
    userswap_config config;
    EXPECT(userswap_config_init(NULL), USERSWAP_EINVAL);
    EXPECT(userswap_space_create(NULL, &space), USERSWAP_EINVAL);
    OK(userswap_config_init(&config));
    config.size = sizeof config - 8;
    EXPECT(userswap_space_create(&config, &space), USERSWAP_EINVAL);
    OK(userswap_config_init(&config));
    config.memory = 100;
    EXPECT(userswap_space_create(&config, &space), USERSWAP_EINVAL);
    OK(userswap_config_init(&config));
    config.flags = 0x80;
    EXPECT(userswap_space_create(&config, &space), USERSWAP_EINVAL);
    check(space == NULL, "a failed create leaves *space alone");

    space = space_of(64 << 10, 4 << 20);   /* 16 frames, a 4 MiB unnamed swap file */
    uint8_t *memory;
    EXPECT(userswap_map(space, 0, 0, (void **)&memory), USERSWAP_EINVAL);
    EXPECT(userswap_map(space, 4096, 0x100, (void **)&memory), USERSWAP_EINVAL);
    OK(userswap_map(space, 1 << 20, USERSWAP_MAP_FAULTING_THREAD, (void **)&memory));
    int local;
    EXPECT(userswap_unmap(space, &local), USERSWAP_EINVAL);
    EXPECT(userswap_unmap(space, memory + 4096), USERSWAP_EINVAL);
    EXPECT(userswap_advise(space, memory, 4096, 42), USERSWAP_EINVAL);
    EXPECT(userswap_advise(space, memory, (2 << 20), USERSWAP_ADVICE_RANDOM), USERSWAP_EINVAL);
    EXPECT(userswap_discard(space, memory + 1, 4096), USERSWAP_EINVAL);
    userswap_page_pin *pin;
    void *page;
    EXPECT(userswap_pin(space, &local, 1, &pin, &page), USERSWAP_EINVAL);
    userswap_stats stats = {.size = 8};
    EXPECT(userswap_stats_get(space, &stats), USERSWAP_EINVAL);

    /* Plain memory, pins, advice and discard. */
    for (size_t i = 0; i < (1 << 20); i += 4096) memory[i] = (uint8_t)(i >> 12 | 1);
    OK(userswap_pin(space, memory + 5 * 4096 + 17, 1, &pin, &page));
    check(((uint8_t *)page)[0] == 5 + 0 || ((uint8_t *)page)[0] == (5 | 1), "a pin sees the mapping's data");
    ((uint8_t *)page)[1] = 0xAB;
    check(memory[5 * 4096 + 1] == 0xAB, "the mapping sees a write through the pin");
    EXPECT(userswap_unmap(space, memory), USERSWAP_EBUSY);
    OK(userswap_unpin(pin));
    OK(userswap_unpin(NULL));
    userswap_stats before = {.size = sizeof before};
    OK(userswap_stats_get(space, &before));
    OK(userswap_advise(space, memory, 1 << 20, USERSWAP_ADVICE_DONTNEED));
    OK(userswap_prefetch(space, memory, 8 * 4096));
    /* The reads were started, not waited for: they are counted as they complete. */
    userswap_stats after = {.size = sizeof after};
    for (int tries = 0; tries < 5000; tries++) {
        OK(userswap_stats_get(space, &after));
        if (after.readahead_pages >= before.readahead_pages + 7) break;
        usleep(1000);
    }
    check(after.swap_outs > before.swap_outs, "DONTNEED swaps out");
    check(after.readahead_pages >= before.readahead_pages + 7, "prefetch reads pages in");
    int intact = 1;
    for (size_t i = 0; i < (1 << 20); i += 4096) intact &= memory[i] == (uint8_t)(i >> 12 | 1);
    check(intact && memory[5 * 4096 + 1] == 0xAB, "data comes back from swap");
    OK(userswap_discard(space, memory, 2 * 4096));
    check(memory[0] == 0 && memory[4096] == 0 && memory[2 * 4096] == (2 | 1), "discarded pages read as zero");
    /* An older, shorter stats struct: filled up to its size, nothing past it. */
    struct { userswap_stats stats; uint64_t guard; } old = {.stats = {.size = offsetof(userswap_stats, swap_ins)}, .guard = 7};
    old.stats.swap_ins = 12345;
    OK(userswap_stats_get(space, &old.stats));
    check(old.stats.version == USERSWAP_STATS_VERSION && old.stats.memory == (64 << 10) && old.stats.swap_ins == 12345
              && old.guard == 7, "a shorter stats struct is filled up to its size");
    /* A version-2 struct (up to fault_wait_p99_ns) gets those fields and not late_faults. */
    userswap_stats v2 = {.size = offsetof(userswap_stats, late_faults), .late_faults = 54321};
    OK(userswap_stats_get(space, &v2));
    check(USERSWAP_STATS_VERSION == 3 && v2.version == 3 && v2.memory == (64 << 10) && v2.late_faults == 54321,
          "a version-2 stats struct is filled up to fault_wait_p99_ns");
    /* The whole struct has late_faults: no page was discarded under a fault here (one thread). */
    userswap_stats whole = {.size = sizeof whole, .late_faults = 54321};
    OK(userswap_stats_get(space, &whole));
    check(whole.late_faults == 0, "late_faults is filled");

    /* ENOMEM: every frame pinned. */
    userswap_page_pin *pins[16], *extra;
    size_t pinned = 0;
    int code = USERSWAP_OK;
    for (; pinned < 16; pinned++) {
        code = userswap_pin(space, memory + pinned * 4096, 1, &pins[pinned], &page);
        if (code != USERSWAP_OK) break;
    }
    if (code == USERSWAP_OK) code = userswap_pin(space, memory + 100 * 4096, 1, &extra, &page);
    expect(code, USERSWAP_ENOMEM, "userswap_pin with every frame pinned");
    for (size_t i = 0; i < pinned; i++) OK(userswap_unpin(pins[i]));
    OK(userswap_unmap(space, memory));
    EXPECT(userswap_unmap(space, memory), USERSWAP_EINVAL);

    /* ENOSPC: asked to swap out more than the swap file holds. (When reclaim finds swap full, a
     * pin gets ENOSPC too. A plain store gets SIGBUS.) */
    OK(userswap_space_destroy(space));
    space = space_of(8 << 20, 4 << 20);
    uint8_t *big;
    OK(userswap_map(space, 8 << 20, 0, (void **)&big));
    memset(big, 1, 6 << 20);
    EXPECT(userswap_advise(space, big, 6 << 20, USERSWAP_ADVICE_DONTNEED), USERSWAP_ENOSPC);
    OK(userswap_unmap(space, big));

    /* Groups with limits. */
    userswap_group *group, *child;
    EXPECT(userswap_group_create(space, NULL, 0, 0, NULL, &group), USERSWAP_EINVAL);
    OK(userswap_group_create(space, "jobs", 32 << 10, USERSWAP_UNLIMITED, NULL, &group));
    OK(userswap_group_create(space, "job-1", USERSWAP_UNLIMITED, USERSWAP_UNLIMITED, group, &child));
    OK(userswap_map_group(space, child, 512 << 10, 0, (void **)&memory));
    for (size_t i = 0; i < (512 << 10); i += 4096) memory[i] = 7;
    userswap_group_stats g = {.size = sizeof g};
    OK(userswap_group_stats_get(group, &g));
    printf("errors: group: memory %llu (peak %llu, limit %llu), swap %llu, swap-outs %llu\n", (unsigned long long)g.memory,
           (unsigned long long)g.memory_peak, (unsigned long long)g.memory_limit, (unsigned long long)g.swap,
           (unsigned long long)g.swap_outs);
    check(g.memory_peak <= (32 << 10) && g.memory_limit == (32 << 10) && g.swap_limit == USERSWAP_UNLIMITED,
          "a group stays under its memory limit");
    check(g.swap >= (512 << 10) - (32 << 10) && g.swap_outs > 0, "a group over its limit swaps out its own pages");
    OK(userswap_group_set_limits(group, USERSWAP_UNLIMITED, 64 << 10));
    OK(userswap_group_stats_get(group, &g));
    check(g.memory_limit == USERSWAP_UNLIMITED && g.swap_limit == (64 << 10), "set_limits changes the limits");
    /* A memory limit below the usage is met when the call returns; pins that keep the group above
     * it give ENOMEM, the limit set even so. */
    OK(userswap_group_set_limits(group, USERSWAP_UNLIMITED, USERSWAP_UNLIMITED));
    unsigned sum = 0;
    for (size_t i = 0; i < (512 << 10); i += 4096) sum += memory[i];
    check(sum == 7 * 128, "the group's pages come back");
    OK(userswap_group_set_limits(group, 64 << 10, USERSWAP_UNLIMITED));
    OK(userswap_group_stats_get(group, &g));
    check(g.memory <= (64 << 10) && g.memory_limit == (64 << 10), "a lowered memory limit swaps out the excess at once");
    userswap_page_pin *held[4];
    for (int i = 0; i < 4; i++) OK(userswap_pin(space, memory + i * 4096, 0, &held[i], &page));
    EXPECT(userswap_group_set_limits(group, 0, USERSWAP_UNLIMITED), USERSWAP_ENOMEM);
    check(strstr(userswap_last_error(), "16384 bytes above") != NULL, "the error says how much stays above the limit");
    OK(userswap_group_stats_get(group, &g));
    check(g.memory == (16 << 10) && g.memory_limit == 0, "only the pinned pages stay, and the limit is set");
    for (int i = 0; i < 4; i++) OK(userswap_unpin(held[i]));
    EXPECT(userswap_group_stats_get(group, NULL), USERSWAP_EINVAL);
    OK(userswap_unmap(space, memory));
    OK(userswap_space_destroy(space));
    OK(userswap_space_destroy(NULL));

    /* Devices: ENOENT, EACCES, EFORMAT, EBUSY, EIO. */
    space = space_of(1 << 20, 0);
    EXPECT(userswap_add_file_device(space, path_in("missing/swap"), 0, 0), USERSWAP_ENOENT);
    EXPECT(userswap_add_file_device(space, path_in("absent.swap"), 0, 0), USERSWAP_ENOENT);
    /* The message says what to do in C's terms: the call that creates the file, no command-line option. */
    check(strstr(userswap_last_error(), "userswap_add_file_device") != NULL && strstr(userswap_last_error(), "--") == NULL,
          "a missing swap file's message names userswap_add_file_device and no command-line option");
    EXPECT(userswap_add_temporary_device(space, path_in("no-such-directory"), 4 << 20, 0), USERSWAP_ENOENT);
    int fd = open(path_in("garbage.swap"), O_CREAT | O_TRUNC | O_WRONLY, 0600);
    char junk[4096];
    memset(junk, 'x', sizeof junk);
    for (int i = 0; i < 1024; i++) check(write(fd, junk, sizeof junk) == sizeof junk, "write the garbage file");
    close(fd);
    EXPECT(userswap_add_file_device(space, path_in("garbage.swap"), 0, 0), USERSWAP_EFORMAT);
    check(strstr(userswap_last_error(), "userswap format") == NULL && strstr(userswap_last_error(), "SwapFile") == NULL,
          "a file that is not a swap file: the message names neither the command line nor the Swift API");
    chmod(path_in("garbage.swap"), 0644);
    EXPECT(userswap_add_file_device(space, path_in("garbage.swap"), 0, 0), USERSWAP_EACCES);
    unlink(path_in("garbage.swap"));
    unlink(path_in("shared.swap"));
    OK(userswap_add_file_device(space, path_in("shared.swap"), 4 << 20, 1));
    userswap_space *other = space_of(1 << 20, 0);
    EXPECT(userswap_add_file_device(other, path_in("shared.swap"), 0, 0), USERSWAP_EBUSY);
    OK(userswap_space_destroy(other));
    EXPECT(userswap_add_redis_device(space, "redis://127.0.0.1:1", 4 << 20, 0), USERSWAP_EIO);
    EXPECT(userswap_add_redis_device(space, "http://nowhere", 4 << 20, 0), USERSWAP_EINVAL);
    userswap_stats s = {.size = sizeof s};
    OK(userswap_stats_get(space, &s));
    check(s.swap_total >= (2 << 20) && s.swap_total <= (4 << 20), "the file device counts in swap_total");
    OK(userswap_space_destroy(space));
    unlink(path_in("shared.swap"));

    /* EENV, and a space from the environment. */
    setenv("USERSWAP_MEMORY", "lots", 1);
    EXPECT(userswap_space_from_env(&space), USERSWAP_EENV);
    setenv("USERSWAP_MEMORY", "1.5M", 1);
    setenv("USERSWAP_SWAP_SIZE", "16M", 1);
    setenv("USERSWAP_SWAP_DIR", scratch, 1);
    setenv("USERSWAP_ENCRYPTION", "maybe", 1);
    EXPECT(userswap_space_from_env(&space), USERSWAP_EENV);
    setenv("USERSWAP_ENCRYPTION", "none", 1);
    OK(userswap_space_from_env(&space));
    OK(userswap_stats_get(space, &s));
    check(s.memory == (3 << 19) && s.swap_total > (8 << 20) && s.swap_total <= (16 << 20), "the environment's sizes");
    OK(userswap_map(space, 8 << 20, 0, (void **)&memory));
    for (size_t i = 0; i < (8 << 20); i++) memory[i] = (uint8_t)(i * 7);
    intact = 1;
    for (size_t i = 0; i < (8 << 20); i++) intact &= memory[i] == (uint8_t)(i * 7);
    check(intact, "8 MiB through a 1.5 MiB space from the environment");
    OK(userswap_space_destroy(space));   /* with a mapping still there: the space releases it */

    for (int code = USERSWAP_EINVAL; code <= USERSWAP_EENV; code++) {
        if (!reached[code]) {
            fprintf(stderr, "errors: no test reached %s\n", userswap_strerror(code));
            failures++;
        }
    }
    printf("errors: %s\n", failures ? "FAILED" : "passed");
    return failures ? 1 : 0;
}
