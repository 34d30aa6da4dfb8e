/*
 * userswap.h: swappable memory for C, C++ and any language that calls C.
 *
 * A space is a RAM budget with swap devices behind it. `userswap_map` gives plain memory (like
 * `mmap` or UMap's `umap`): any thread reads and writes it with ordinary loads and stores, and
 * the library keeps at most the budget of it in RAM, moving the rest to the space's swap devices
 * and back on access.
 *
 *     userswap_space *space;
 *     if (userswap_space_from_env(&space) != USERSWAP_OK) {        // USERSWAP_MEMORY=256M ...
 *         fprintf(stderr, "%s\n", userswap_last_error());
 *         return 1;
 *     }
 *     double *a;
 *     userswap_map(space, (size_t)1 << 30, 0, (void **)&a);         // 1 GiB in 256 MiB of RAM
 *     for (size_t i = 0; i < ((size_t)1 << 30) / sizeof *a; i++) a[i] = i;
 *     userswap_unmap(space, a);
 *     userswap_space_destroy(space);
 *
 * Conventions, for every function:
 * - The return value is an error code: USERSWAP_OK (0) or one of `userswap_error` (positive).
 *   `userswap_strerror(code)` names the code; `userswap_last_error()` gives the full message of
 *   the calling thread's last failure, saying what to do about it.
 * - Results come back through the last parameters (out-parameters), which are written only on
 *   success. A NULL pointer where one is required gives USERSWAP_EINVAL.
 * - Handles (`userswap_space *`, `userswap_group *`, `userswap_page_pin *`) are opaque. A space owns
 *   its groups, mappings and devices; destroying the space releases them all. Strings passed in
 *   are copied; strings handed out belong to the library.
 * - Every function is thread-safe: any thread may call any function at any time, except that a
 *   handle must not be used during or after the call that destroys it.
 * - Sizes are in bytes (`size_t`); pages are 4 KiB.
 *
 * Link with `pkg-config --cflags --libs userswap`.
 */
#ifndef USERSWAP_H
#define USERSWAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this interface: the library's `userswap_version()` returns the same value. */
#define USERSWAP_VERSION_MAJOR 1
#define USERSWAP_VERSION_MINOR 2
#define USERSWAP_VERSION ((USERSWAP_VERSION_MAJOR << 16) | USERSWAP_VERSION_MINOR)

/* Error codes. Their values never change meaning; new ones may be added at the end. */
typedef enum userswap_error {
    USERSWAP_OK = 0,
    /* A bad argument: a NULL pointer, a zero or too large size, unknown flags, an address that
     * is not in a mapping of this space, a configuration struct of an unknown size. */
    USERSWAP_EINVAL = 1,
    /* No frame of the RAM budget can be freed: every one is pinned, or swap is full so that none
     * can be swapped out (or the same within a group's limit): unpin pages, add swap or give a
     * larger budget. */
    USERSWAP_ENOMEM = 2,
    /* The swap devices are full (pages asked to be swapped out do not fit), or the disk under a
     * swap file is: add a device or a larger one. */
    USERSWAP_ENOSPC = 3,
    /* A swap device failed to read or write (a disk error, a lost Redis server). */
    USERSWAP_EIO = 4,
    /* A file or directory does not exist (a swap file, the swap directory). */
    USERSWAP_ENOENT = 5,
    /* Permission denied: a swap file of another user or readable by others, a symbolic link,
     * userfaultfd refused to this process. */
    USERSWAP_EACCES = 6,
    /* A swap file is in use by another process or another space (or a file is in the way of
     * one being created); a mapping still has pinned pages. */
    USERSWAP_EBUSY = 7,
    /* A file is not a usable swap file (not one, another page size or version, too small). */
    USERSWAP_EFORMAT = 8,
    /* The kernel lacks what the call needs (userfaultfd and its features). */
    USERSWAP_ENOTSUP = 9,
    /* A value in the environment (`userswap_space_from_env`) cannot be parsed. */
    USERSWAP_EENV = 10
} userswap_error;

/* A space: a RAM budget, its swap devices, its groups and its mappings. */
typedef struct userswap_space userswap_space;
/* A memory group of a space (a memory cgroup): mappings charged to it share its limits. */
typedef struct userswap_group userswap_group;
/* A pinned page: it stays in RAM while the pin lives. */
typedef struct userswap_page_pin userswap_page_pin;

/* Flags of `userswap_config.flags`. */
#define USERSWAP_SPACE_NO_ENCRYPTION 0x1u       /* write pages to devices in clear (default: sealed
                                                  * under a random key that lives in RAM only) */
#define USERSWAP_SPACE_NO_BACKGROUND_RECLAIM 0x2u /* no reclaim thread: allocating threads reclaim */

/* How to make a space. Fill it with `userswap_config_init`, then change what you need: the
 * `size` field tells the library which version of the struct the caller was built with, so
 * that fields added later keep old programs working. */
typedef struct userswap_config {
    size_t size;            /* sizeof(userswap_config), set by userswap_config_init */
    size_t memory;          /* the RAM budget in bytes (at least 4096); default 256 MiB */
    uint32_t flags;         /* USERSWAP_SPACE_* flags; default 0 */
    uint32_t reserved;      /* zero */
    const char *swap_dir;   /* when swap_size > 0: the directory of the space's unnamed swap
                             * file (NULL: $TMPDIR, else /tmp); copied */
    size_t swap_size;       /* bytes of an unnamed swap file made with the space (removed from
                             * the disk at once: nothing is left when the process ends); 0 for
                             * none (add devices with userswap_add_*_device). Default 0. */
} userswap_config;

/* Flags of `userswap_map`. */
#define USERSWAP_MAP_FAULTING_THREAD 0x1u /* each faulting thread brings its own pages in (the
                                           * fastest; kernel code such as read(2) into pages not
                                           * touched before fails with EFAULT). Default: fault
                                           * handler threads, which serve kernel accesses too
                                           * where the process may (root, or the sysctl
                                           * vm.unprivileged_userfaultfd=1). */

/* Advice for `userswap_advise`, in the spirit of madvise(2). */
typedef enum userswap_advice {
    USERSWAP_ADVICE_NORMAL = 0,     /* adaptive readahead (the default) */
    USERSWAP_ADVICE_SEQUENTIAL = 1, /* read ahead the largest window on every miss */
    USERSWAP_ADVICE_RANDOM = 2,     /* never read ahead */
    USERSWAP_ADVICE_WILLNEED = 3,   /* start reading the range in (userswap_prefetch) */
    USERSWAP_ADVICE_DONTNEED = 4    /* swap the range out now, keeping its data */
} userswap_advice;

/* Counters of a space (a snapshot: each counter exact once the operations it counts have
 * finished). Set `size` to sizeof(userswap_stats) before the call: the library fills
 * the fields that fit in it and sets `version`, so that old programs keep working when fields
 * are added at the end. Counters count since the space was made. Version 2 added the
 * fault_wait fields (a program built against version 1 passes the shorter size and gets the
 * fields up to io_errors); version 3 added late_faults (one built against version 2 gets the
 * fields up to fault_wait_p99_ns). */
typedef struct userswap_stats {
    size_t size;                /* in: sizeof(userswap_stats) */
    uint32_t version;           /* out: USERSWAP_STATS_VERSION of the library */
    uint32_t reserved;
    uint64_t memory;            /* the RAM budget in bytes */
    uint64_t resident;          /* bytes of pages in RAM now */
    uint64_t swap_total;        /* bytes of swap on all devices */
    uint64_t swap_used;         /* bytes of swap holding pages now */
    uint64_t swap_ins;          /* pages read back from devices */
    uint64_t swap_outs;         /* pages written to devices */
    uint64_t major_faults;      /* faults of mapped memory that read a page or zero-filled one */
    uint64_t minor_faults;      /* faults of mapped memory on pages already in RAM */
    uint64_t write_faults;      /* first writes to pages mapped read-only for dirty tracking */
    uint64_t fault_errors;      /* faults that failed for good (the thread got SIGBUS) */
    uint64_t readahead_pages;   /* pages read ahead of faults or by userswap_prefetch */
    uint64_t readahead_hits;    /* pages read ahead that were then used */
    uint64_t reclaim_scanned;   /* pages reclaim looked at */
    uint64_t reclaim_freed;     /* pages reclaim freed */
    uint64_t io_errors;         /* failed device reads and writes */
    /* Since version 2: the wall time threads waited in faults of mapped memory, each fault from
     * its arrival at the library (a fault handler thread reading it, or the faulting thread's
     * signal handler) to the wake of its thread, on CLOCK_MONOTONIC. */
    uint64_t fault_waits;       /* faults timed (major_faults + minor_faults once they finish) */
    uint64_t fault_wait_ns;     /* the sum of their waits, in nanoseconds */
    uint64_t fault_wait_p99_ns; /* the 99th percentile of one wait, in nanoseconds (from a
                                 * histogram: at most 25 % above the true value); 0 without
                                 * faults */
    /* Since version 3. */
    uint64_t late_faults;       /* faults of mapped memory answered with a wake alone: their page
                                 * was discarded after the fault was read, and their thread had
                                 * gone on meanwhile */
} userswap_stats;
#define USERSWAP_STATS_VERSION 3u

/* Usage and limits of a group (what memory.current, memory.max... show for a cgroup). Set
 * `size` to sizeof(userswap_group_stats) before the call, as for userswap_stats. */
typedef struct userswap_group_stats {
    size_t size;                /* in: sizeof(userswap_group_stats) */
    uint64_t memory;            /* bytes of the group's pages in RAM */
    uint64_t memory_peak;
    uint64_t memory_limit;      /* USERSWAP_UNLIMITED when none */
    uint64_t swap;              /* bytes of the group's pages on swap */
    uint64_t swap_peak;
    uint64_t swap_limit;        /* USERSWAP_UNLIMITED when none */
    uint64_t swap_ins;
    uint64_t swap_outs;
} userswap_group_stats;
#define USERSWAP_UNLIMITED UINT64_MAX

/* ---- Library ---------------------------------------------------------------------------- */

/* USERSWAP_VERSION of the library loaded; compare with the header's to detect a mismatch. */
uint32_t userswap_version(void);

/* A static, constant text naming `code` ("invalid argument", ...); "unknown error" for a code
 * this library does not know. Never NULL; never free it. */
const char *userswap_strerror(int code);

/* The message of the calling thread's last failed call: what went wrong and what to do
 * ("a RAM budget of 12 bytes holds no page; give at least 4K"). "" when no call of this thread
 * has failed. The text belongs to the library and stays valid until the thread's next failing
 * call; copy it to keep it. */
const char *userswap_last_error(void);

/* ---- Spaces ----------------------------------------------------------------------------- */

/* Fills `config` with the defaults (256 MiB of RAM, pages sealed, background reclaim, no swap
 * device) and its `size` field. Errors: EINVAL (config NULL). */
int userswap_config_init(userswap_config *config);

/* Makes a space as `config` says and stores it in `*space`; the caller owns it and releases it
 * with userswap_space_destroy. `config` and its strings are only read during the call.
 * Errors: EINVAL (a NULL pointer, config->size not one this library knows, unknown flags, a
 * budget under 4096 bytes), ENOMEM, and the errors of making the swap file (ENOENT: no such
 * swap_dir, EACCES, ENOSPC, EIO). */
int userswap_space_create(const userswap_config *config, userswap_space **space);

/* Makes a space from the environment, for programs that cannot change their code (through a
 * wrapper or an LD_PRELOAD shim) or that leave the choice to their user:
 *   USERSWAP_MEMORY     the RAM budget: bytes or 64K, 256M, 1.5G, 2T (default 256M)
 *   USERSWAP_SWAP_DIR   where the unnamed swap file goes (default $TMPDIR, else /tmp)
 *   USERSWAP_SWAP_SIZE  the swap device's size (default 4 × USERSWAP_MEMORY; 0 for none)
 *   USERSWAP_SWAP_FILE  a named swap file instead of the unnamed one (created with
 *                       USERSWAP_SWAP_SIZE bytes if it does not exist)
 *   USERSWAP_REDIS_URL  a Redis server instead of the unnamed file (redis://host:port,
 *                       unix:///socket; the password from USERSWAP_REDIS_PASSWORD)
 *   USERSWAP_ENCRYPTION "0" or "none" writes pages in clear (default: sealed)
 * The caller owns `*space`. Errors: EENV (a value that cannot be parsed; the message names
 * it), then those of userswap_space_create and of adding the devices. */
int userswap_space_from_env(userswap_space **space);

/* Releases a space: its mappings (their memory becomes invalid: no thread may touch it any
 * more), pins, groups and devices (unnamed swap files disappear; named ones stay). NULL is
 * allowed and does nothing. Always succeeds (returns USERSWAP_OK). */
int userswap_space_destroy(userswap_space *space);

/* Adds the swap file at `path` to the space (kernel: swapon). When it does not exist and `size`
 * is not 0, creates it with `size` bytes first (at least 2 MiB plus a page). An existing file
 * must be a UserSwap swap file (made by `userswap format` or by this call). `priority`: devices
 * of higher priority fill first. Errors: EINVAL (NULL), ENOENT (no such file and size 0),
 * EFORMAT (not a swap file, too small), EBUSY (in use by another process), EACCES (owner,
 * mode, symbolic link), ENOSPC (the disk is full while creating it), EIO. */
int userswap_add_file_device(userswap_space *space, const char *path, size_t size, int priority);

/* Adds an unnamed swap file of `size` bytes in `directory` (NULL: $TMPDIR, else /tmp): it is
 * removed from the disk at once, so nothing is left however the process ends. Errors: EINVAL,
 * ENOENT (no such directory), EACCES, ENOSPC, EIO. */
int userswap_add_temporary_device(userswap_space *space, const char *directory, size_t size, int priority);

/* Adds `size` bytes of swap on a Redis server, at `url` (redis://[[user]:password@]host[:port][/db]
 * or unix://[[user]:password@]/path/to/socket[?db=N]; without a password in the URL, the one
 * in USERSWAP_REDIS_PASSWORD). Its keys are in a namespace of their own, deleted as their pages
 * are freed. Errors: EINVAL (a bad URL), EIO (the server cannot be reached or refuses). */
int userswap_add_redis_device(userswap_space *space, const char *url, size_t size, int priority);

/* Writes the space's counters into `*stats` (its `size` field set by the caller; see
 * userswap_stats). Errors: EINVAL (NULL, stats->size smaller than the first three fields). */
int userswap_stats_get(userswap_space *space, userswap_stats *stats);

/* ---- Memory ----------------------------------------------------------------------------- */

/* Maps `length` bytes (rounded up to whole pages) of swappable memory and stores its address in
 * `*addr`: page aligned, zero-filled, readable and writable by every thread of the process,
 * charged to the space's root group. It stays valid until userswap_unmap or the space's
 * destruction. `flags`: 0 or USERSWAP_MAP_FAULTING_THREAD. Errors: EINVAL (NULL, length 0 or
 * over 16 TiB, unknown flags), EACCES or ENOTSUP (the process may not use userfaultfd: the
 * message says what to change), ENOMEM. */
int userswap_map(userswap_space *space, size_t length, unsigned flags, void **addr);

/* userswap_map, with the memory charged to `group` (NULL: the root group). */
int userswap_map_group(userswap_space *space, userswap_group *group, size_t length, unsigned flags, void **addr);

/* Releases a mapping made by userswap_map: its pages in RAM and on swap are freed. `addr` must
 * be the address userswap_map returned, and no thread may touch the memory any more. Errors:
 * EINVAL (NULL, or not an address from userswap_map of this space, or already unmapped), EBUSY
 * (pages of the mapping are pinned: unpin them first). */
int userswap_unmap(userswap_space *space, void *addr);

/* Pins the page holding `addr` (in a mapping of `space`) in RAM, reading it in if needed, and
 * stores the pin in `*pin` and the address of the page's 4 KiB in `*page` (another view of the
 * same memory: what is written through one is seen through the other). While pinned, the page
 * is never swapped out and `*page` is valid; the caller releases the pin with userswap_unpin
 * (before unmapping the mapping; destroying the space releases its pins). `writable`: 1 if the caller will write (the
 * page's copy on swap becomes stale), 0 to read only. Errors: EINVAL (NULL, `addr` not in a
 * mapping of this space), ENOMEM (no frame can be freed: all pinned), ENOSPC (memory and every
 * swap slot are full), EIO. */
int userswap_pin(userswap_space *space, const void *addr, int writable, userswap_page_pin **pin, void **page);

/* Releases a pin made by userswap_pin. NULL is allowed and does nothing. Always succeeds. */
int userswap_unpin(userswap_page_pin *pin);

/* Applies `advice` to the pages of [addr, addr + length) (widened to whole pages), all in one
 * mapping of `space`. NORMAL, SEQUENTIAL and RANDOM set the readahead policy of the whole
 * mapping; WILLNEED starts reading the range in; DONTNEED swaps it out now, keeping its data.
 * Errors: EINVAL (NULL, a range not inside one mapping, an unknown advice), EIO, ENOSPC. */
int userswap_advise(userswap_space *space, void *addr, size_t length, int advice);

/* Starts reading the swapped pages of [addr, addr + length) into RAM ahead of their use, all
 * their reads submitted together, and returns without waiting (USERSWAP_ADVICE_WILLNEED): an
 * access to one of them waits only for its own read, if it is still in flight. Errors: as
 * userswap_advise (a failed read is reported by the access that needs the page). */
int userswap_prefetch(userswap_space *space, void *addr, size_t length);

/* Frees the pages of [addr, addr + length) (whole pages only: addr and length are multiples of
 * 4096), in RAM and on swap: they read as zeroes again (madvise MADV_DONTNEED on anonymous
 * memory). Errors: EINVAL (NULL, not page aligned, a range not inside one mapping). */
int userswap_discard(userswap_space *space, void *addr, size_t length);

/* ---- Groups ----------------------------------------------------------------------------- */

/* Makes a memory group named `name` (copied) under `parent` (a group of the same space; NULL:
 * the root group), whose mappings may hold at most `memory_limit` bytes in RAM and
 * `swap_limit` bytes on swap (USERSWAP_UNLIMITED for no limit); a group over its memory limit
 * swaps out its own pages first. The space owns the group; it lives as long as the space.
 * Errors: EINVAL (NULL). */
int userswap_group_create(userswap_space *space, const char *name, uint64_t memory_limit, uint64_t swap_limit,
                          userswap_group *parent, userswap_group **group);

/* Changes a group's limits (USERSWAP_UNLIMITED for none). A memory limit under the group's
 * usage swaps out the difference (its pages and its nested groups') before the call returns.
 * When that cannot be done the limits stay set, the group stays above its memory limit (the
 * last error says by how many bytes) and its next allocations reclaim again. Errors: EINVAL
 * (NULL), ENOMEM (what stays is pinned, or a swap limit is reached), ENOSPC (swap full), EIO
 * (a write failed). */
int userswap_group_set_limits(userswap_group *group, uint64_t memory_limit, uint64_t swap_limit);

/* Writes the group's usage, peaks, limits and counters into `*stats` (its `size` set by the
 * caller). Errors: EINVAL (NULL, stats->size too small). */
int userswap_group_stats_get(userswap_group *group, userswap_group_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* USERSWAP_H */
