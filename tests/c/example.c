/*
 * The example of docs/C-AND-PYTHON.md: a program that takes its space from the environment
 * (USERSWAP_MEMORY=32M USERSWAP_SWAP_SIZE=512M ./example) and sums 256 MiB of doubles in it.
 */
#include <stdio.h>
#include <userswap.h>

int main(void) {
    userswap_space *space;
    if (userswap_space_from_env(&space) != USERSWAP_OK) {
        fprintf(stderr, "example: %s\n", userswap_last_error());
        return 1;
    }
    size_t count = ((size_t)256 << 20) / sizeof(double);
    double *a;
    if (userswap_map(space, count * sizeof *a, 0, (void **)&a) != USERSWAP_OK) {
        fprintf(stderr, "example: %s\n", userswap_last_error());
        return 1;
    }
    for (size_t i = 0; i < count; i++) a[i] = (double)i;
    double sum = 0;
    for (size_t i = 0; i < count; i++) sum += a[i];

    userswap_stats stats = {.size = sizeof stats};
    userswap_stats_get(space, &stats);
    printf("example: sum %.0f (expected %.0f); %llu MiB resident of a %llu MiB budget, %llu pages swapped out\n", sum,
           (double)count * (double)(count - 1) / 2, (unsigned long long)stats.resident >> 20,
           (unsigned long long)stats.memory >> 20, (unsigned long long)stats.swap_outs);
    userswap_unmap(space, a);
    userswap_space_destroy(space);
    return sum == (double)count * (double)(count - 1) / 2 ? 0 : 1;
}
