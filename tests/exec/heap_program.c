/*
 * An ordinary program for the tests of `userswap exec` (tests/exec/run): it knows nothing of
 * UserSwap, and prints the same lines under `userswap exec` as in a plain run.
 *
 *   heap_program MIB [THREADS]   fills MIB MiB of malloc'd blocks from THREADS threads (4), with
 *                                realloc, calloc and aligned blocks among them; reads a file
 *                                with read(2) into the first blocks (long swapped out by then);
 *                                maps 8 MiB (mmap, madvise MADV_DONTNEED, munmap); runs a
 *                                child with fork + exec and one with posix_spawn; checks
 *                                every byte and prints checksums
 *   heap_program fork-touch      mallocs a block, forks, and the child reads the block without
 *                                exec (under userswap exec it is stopped with a message)
 *   heap_program child WORD      prints WORD (what the exec'd children run)
 *   heap_program until-full MIB  fills 1 MiB blocks until MIB MiB, or until malloc fails (as
 *                                a program that handles ENOMEM does), then checks every byte
 *                                and prints how far it got and why it stopped
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define BLOCK ((size_t)1 << 20)

static size_t block_count;
static int thread_count;
static uint64_t **blocks;

static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void fail(const char *what) {
    fprintf(stderr, "heap_program: %s (%s)\n", what, strerror(errno));
    exit(1);
}

/* Thread `index` makes and fills the blocks i with i % thread_count == index, in ways that use
 * the whole malloc family. */
static void *fill(void *argument) {
    int index = (int)(intptr_t)argument;
    for (size_t i = (size_t)index; i < block_count; i += (size_t)thread_count) {
        uint64_t *block;
        switch (i % 4) {
        case 0:
            block = malloc(BLOCK);
            break;
        case 1:
            block = calloc(BLOCK / 8, 8);
            for (size_t w = 0; w < BLOCK / 8; w += 512)
                if (block != NULL && block[w] != 0) {
                    fprintf(stderr, "heap_program: calloc gave a block that is not zero\n");
                    exit(1);
                }
            break;
        case 2: {
            void *pointer = NULL;
            if (posix_memalign(&pointer, 4096, BLOCK) != 0) pointer = NULL;
            block = pointer;
            break;
        }
        default:
            block = malloc(BLOCK / 2);
            if (block != NULL) {
                memset(block, 0x5a, BLOCK / 2);
                block = realloc(block, BLOCK);
                for (size_t w = 0; block != NULL && w < BLOCK / 16; w += 97)
                    if (block[w] != 0x5a5a5a5a5a5a5a5aull) {
                        fprintf(stderr, "heap_program: realloc lost the block's bytes\n");
                        exit(1);
                    }
            }
        }
        if (block == NULL) fail("out of memory");
        if (malloc_usable_size(block) < BLOCK) {
            fprintf(stderr, "heap_program: malloc_usable_size %zu < %zu\n", malloc_usable_size(block), BLOCK);
            exit(1);
        }
        for (size_t w = 0; w < BLOCK / 8; w++) block[w] = mix(i * (BLOCK / 8) + w);
        blocks[i] = block;
    }
    return NULL;
}

/* Thread `index` checks its blocks and returns their checksum. */
static void *check(void *argument) {
    int index = (int)(intptr_t)argument;
    uint64_t sum = 0;
    for (size_t i = (size_t)index; i < block_count; i += (size_t)thread_count) {
        for (size_t w = 0; w < BLOCK / 8; w++) {
            uint64_t expected = mix(i * (BLOCK / 8) + w);
            if (blocks[i][w] != expected) {
                fprintf(stderr, "heap_program: block %zu word %zu is %llx, not %llx\n", i, w, (unsigned long long)blocks[i][w],
                        (unsigned long long)expected);
                exit(1);
            }
            sum += blocks[i][w];
        }
    }
    return (void *)(uintptr_t)sum;
}

static void run_threads(void *(*body)(void *), uint64_t *sum) {
    pthread_t threads[64];
    for (int t = 0; t < thread_count; t++)
        if (pthread_create(&threads[t], NULL, body, (void *)(intptr_t)t) != 0) fail("pthread_create");
    for (int t = 0; t < thread_count; t++) {
        void *result;
        pthread_join(threads[t], &result);
        if (sum != NULL) *sum += (uint64_t)(uintptr_t)result;
    }
}

/* read(2) of a file of 8 MiB into the first blocks, whose pages were swapped out while the
 * later blocks were written. */
static void read_into_heap(uint64_t *sum) {
    char path[] = "/tmp/heap_program_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) fail("mkstemp");
    unlink(path);
    size_t file_blocks = block_count < 8 ? block_count : 8;
    uint64_t *line = malloc(BLOCK);
    if (line == NULL) fail("out of memory");
    for (size_t i = 0; i < file_blocks; i++) {
        for (size_t w = 0; w < BLOCK / 8; w++) line[w] = mix(~(i * (BLOCK / 8) + w));
        if (write(fd, line, BLOCK) != (ssize_t)BLOCK) fail("write");
    }
    free(line);
    for (size_t i = 0; i < file_blocks; i++) {
        size_t done = 0;
        while (done < BLOCK) {
            ssize_t n = pread(fd, (char *)blocks[i] + done, BLOCK - done, (off_t)(i * BLOCK + done));
            if (n <= 0) fail("read into the heap");
            done += (size_t)n;
        }
        for (size_t w = 0; w < BLOCK / 8; w++) {
            if (blocks[i][w] != mix(~(i * (BLOCK / 8) + w))) {
                fprintf(stderr, "heap_program: read(2) into block %zu left word %zu wrong\n", i, w);
                exit(1);
            }
            *sum += blocks[i][w];
            blocks[i][w] = mix(i * (BLOCK / 8) + w); /* as the checks expect */
        }
    }
    close(fd);
}

/* A large anonymous mapping (served from the heap under userswap exec): zero-filled, and zero
 * again after MADV_DONTNEED, as the kernel's anonymous memory is. */
static void map_and_discard(void) {
    size_t length = 8 * BLOCK;
    unsigned char *map = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) fail("mmap");
    size_t nonzero = 0;
    for (size_t i = 0; i < length; i += 4096) nonzero += map[i] != 0;
    memset(map, 0xAA, length);
    if (madvise(map + BLOCK, 2 * BLOCK, MADV_DONTNEED) != 0) fail("madvise");
    size_t zero = 0;
    for (size_t i = 0; i < length; i++) zero += map[i] == 0;
    if (munmap(map, length) != 0) fail("munmap");
    printf("mmap: %zu nonzero pages at first; %zu zero bytes after MADV_DONTNEED of %zu\n", nonzero, zero, 2 * BLOCK);
}

static void run_children(const char *self) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) fail("fork");
    if (pid == 0) {
        char *arguments[] = {(char *)self, "child", "forked", NULL};
        execv(self, arguments);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "heap_program: the fork + exec child failed (status %d)\n", status);
        exit(1);
    }
    /* posix_spawn with its arguments on the heap. */
    char **arguments = malloc(4 * sizeof *arguments);
    arguments[0] = strdup(self);
    arguments[1] = strdup("child");
    arguments[2] = strdup("spawned");
    arguments[3] = NULL;
    if (posix_spawn(&pid, self, NULL, NULL, arguments, environ) != 0) fail("posix_spawn");
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "heap_program: the posix_spawn child failed (status %d)\n", status);
        exit(1);
    }
    for (int i = 0; i < 3; i++) free(arguments[i]);
    free(arguments);
}

/* Fills blocks until `limit` of them or until malloc fails; then checks them all. */
static int until_full(size_t limit) {
    uint64_t **kept = calloc(limit, sizeof *kept);
    if (kept == NULL) fail("out of memory");
    size_t filled = 0;
    int error = 0;
    for (; filled < limit; filled++) {
        errno = 0;
        uint64_t *block = malloc(BLOCK);
        if (block == NULL) {
            error = errno;
            break;
        }
        for (size_t w = 0; w < BLOCK / 8; w++) block[w] = mix(filled * (BLOCK / 8) + w);
        kept[filled] = block;
    }
    for (size_t i = 0; i < filled; i++)
        for (size_t w = 0; w < BLOCK / 8; w++)
            if (kept[i][w] != mix(i * (BLOCK / 8) + w)) {
                fprintf(stderr, "heap_program: block %zu word %zu changed\n", i, w);
                return 1;
            }
    if (filled < limit) printf("filled %zu MiB, then malloc failed: %s\n", filled, error == ENOMEM ? "ENOMEM" : strerror(error));
    else printf("filled %zu MiB\n", filled);
    printf("checked %zu MiB\n", filled);
    for (size_t i = 0; i < filled; i++) free(kept[i]);
    free(kept);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "child") == 0) {
        printf("child %s\n", argv[2]);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "fork-touch") == 0) {
        volatile char *block = malloc(4096);
        block[0] = 42;
        pid_t pid = fork();
        if (pid == 0) _exit(block[0] == 42 ? 0 : 1);
        int status;
        waitpid(pid, &status, 0);
        printf("child exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "until-full") == 0) return until_full(strtoul(argv[2], NULL, 10));
    if (argc < 2) {
        fprintf(stderr, "usage: heap_program MIB [THREADS] | fork-touch | child WORD | until-full MIB\n");
        return 64;
    }
    block_count = strtoul(argv[1], NULL, 10);
    thread_count = argc > 2 ? atoi(argv[2]) : 4;
    if (thread_count < 1 || thread_count > 64 || block_count == 0) return 64;
    blocks = calloc(block_count, sizeof *blocks);
    if (blocks == NULL) fail("out of memory");

    uint64_t sum = 0, read_sum = 0;
    run_threads(fill, NULL);
    read_into_heap(&read_sum);
    map_and_discard();
    run_children(argv[0]);
    run_threads(check, &sum);
    printf("blocks %zu, threads %d\n", block_count, thread_count);
    printf("read(2) checksum %016llx\n", (unsigned long long)read_sum);
    printf("heap checksum %016llx\n", (unsigned long long)sum);
    for (size_t i = 0; i < block_count; i++) free(blocks[i]);
    free(blocks);
    return 0;
}
