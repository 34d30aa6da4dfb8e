// Starting a child process that dies with its parent: what Swift cannot do safely itself (code
// between fork and exec must be async-signal-safe, which Swift code is not guaranteed to be).
// The same split as swift-subprocess's `_SubprocessCShims`: C does fork, the few calls the
// child makes before exec, and exec; everything else stays in Swift.
#ifndef CUS_PROCESS_H
#define CUS_PROCESS_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Forks; the child asks for `death_signal` when the thread that forked it ends
/// (prctl(PR_SET_PDEATHSIG)), exits at once if the parent is already gone (the race the man
/// page describes), makes `stdin_fd`, `stdout_fd` and `stderr_fd` its 0, 1 and 2, closes every
/// other descriptor, and execs `path` with `argv` and `envp` (NULL-terminated). A child whose
/// exec fails exits with status 127. Returns the child's pid, or -errno when fork fails.
pid_t cus_spawn_with_parent_death_signal(const char *_Nonnull path, char *_Nullable const *_Nonnull argv,
                                         char *_Nullable const *_Nonnull envp, int stdin_fd, int stdout_fd,
                                         int stderr_fd, int death_signal);

/// pipe2(fds, O_CLOEXEC) (needs _GNU_SOURCE, which Swift's Glibc does not set). Returns 0 or -errno.
int cus_pipe_cloexec(int fds[_Nonnull 2]);

/// Fills `count` bytes at `bytes` from the kernel's CSPRNG (getrandom(2), retried on EINTR and
/// short reads). Returns 0 or -errno.
int cus_getrandom(void *_Nonnull bytes, size_t count);

#ifdef __cplusplus
}
#endif

#endif
