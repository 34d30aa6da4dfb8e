/*
 * The header alone, compiled as C11 and as C++17 with -Wall -Wextra -Werror -pedantic (by
 * tests/c/run): every declaration used once, so that a mistake in any of them fails.
 */
#include <userswap.h>
#include <userswap.h> /* twice: the include guard */

#ifdef __cplusplus
static_assert(sizeof(userswap_config) >= 5 * sizeof(size_t), "userswap_config");
#else
_Static_assert(sizeof(userswap_config) >= 5 * sizeof(size_t), "userswap_config");
#endif

int use_every_declaration(void);

int use_every_declaration(void) {
    userswap_config config;
    userswap_space *space = 0;
    userswap_group *group = 0;
    userswap_page_pin *pin = 0;
    userswap_stats stats;
    userswap_group_stats group_stats;
    void *addr = 0, *page = 0;
    int r = 0;
    userswap_error ok = USERSWAP_OK;
    userswap_advice advice = USERSWAP_ADVICE_SEQUENTIAL;
    stats.size = sizeof stats;
    group_stats.size = sizeof group_stats;
    r |= (int)userswap_version() != USERSWAP_VERSION;
    r |= userswap_strerror(USERSWAP_EINVAL)[0] == 0;
    r |= userswap_last_error() == 0;
    r |= userswap_config_init(&config);
    config.flags = USERSWAP_SPACE_NO_ENCRYPTION | USERSWAP_SPACE_NO_BACKGROUND_RECLAIM;
    r |= userswap_space_create(&config, &space);
    r |= userswap_space_from_env(&space);
    r |= userswap_add_file_device(space, "/tmp/x.swap", (size_t)64 << 20, 0);
    r |= userswap_add_temporary_device(space, 0, (size_t)64 << 20, 0);
    r |= userswap_add_redis_device(space, "redis://127.0.0.1:6379", (size_t)64 << 20, 0);
    r |= userswap_stats_get(space, &stats);
    r |= userswap_map(space, 4096, USERSWAP_MAP_FAULTING_THREAD, &addr);
    r |= userswap_group_create(space, "g", USERSWAP_UNLIMITED, USERSWAP_UNLIMITED, 0, &group);
    r |= userswap_map_group(space, group, 4096, 0, &addr);
    r |= userswap_pin(space, addr, 1, &pin, &page);
    r |= userswap_unpin(pin);
    r |= userswap_advise(space, addr, 4096, advice);
    r |= userswap_advise(space, addr, 4096, USERSWAP_ADVICE_NORMAL | USERSWAP_ADVICE_RANDOM | USERSWAP_ADVICE_WILLNEED | USERSWAP_ADVICE_DONTNEED);
    r |= userswap_prefetch(space, addr, 4096);
    r |= userswap_discard(space, addr, 4096);
    r |= userswap_group_set_limits(group, 1 << 20, USERSWAP_UNLIMITED);
    r |= userswap_group_stats_get(group, &group_stats);
    r |= userswap_unmap(space, addr);
    r |= userswap_space_destroy(space);
    r |= stats.version != USERSWAP_STATS_VERSION;
    return r | (int)ok | USERSWAP_ENOMEM | USERSWAP_ENOSPC | USERSWAP_EIO | USERSWAP_ENOENT | USERSWAP_EACCES
        | USERSWAP_EBUSY | USERSWAP_EFORMAT | USERSWAP_ENOTSUP | USERSWAP_EENV;
}
