#define _GNU_SOURCE
#include "cus_process.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

pid_t cus_spawn_with_parent_death_signal(const char *path, char *const *argv, char *const *envp, int stdin_fd,
                                         int stdout_fd, int stderr_fd, int death_signal) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid > 0) return pid;
    // The child: async-signal-safe calls only, then exec.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (prctl(PR_SET_PDEATHSIG, death_signal, 0, 0, 0) != 0) _exit(127);
    // The parent may have died before prctl took effect: then nobody would send the signal.
    if (getppid() != parent) _exit(127);
    if (dup2(stdin_fd, 0) < 0 || dup2(stdout_fd, 1) < 0 || dup2(stderr_fd, 2) < 0) _exit(127);
    // Nothing else of the parent's (swap files, sockets, pipes) reaches the child.
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
        for (int fd = 3; fd < 1024; fd++) close(fd);
    }
    execve(path, argv, envp);
    _exit(127);
}

int cus_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno;
}

int cus_getrandom(void *bytes, size_t count) {
    size_t filled = 0;
    while (filled < count) {
        ssize_t n = getrandom((char *)bytes + filled, count - filled, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        filled += (size_t)n;
    }
    return 0;
}
