/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gateway-job-init: pid 1 of a job's sandbox (see sandbox.h for why it exists).
 *
 *   gateway-job-init STATUS_FD UID GID -- COMMAND [ARG...]
 *
 * Drops from root to UID/GID (no supplementary groups; every capability goes with uid 0),
 * forks COMMAND in its own process group, forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2
 * to that group, reaps orphans, and when COMMAND ends writes "exited N\n" or "killed SIG\n" to
 * STATUS_FD and exits (which, as pid 1, ends every other process of the sandbox). It is linked
 * statically because it runs inside an arbitrary image; it uses no helper of the project. */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t job_pid;

static void forward(int sig) {
        if (job_pid > 0)
                kill(-job_pid, sig);
}

static int parse_id(const char *s, unsigned long *ret) {
        char *end;

        errno = 0;
        *ret = strtoul(s, &end, 10);
        return errno == 0 && *s && !*end && *ret < 0xFFFFFFFFUL ? 0 : -1;
}

static int drop_privileges(uid_t uid, gid_t gid) {
        if (setgroups(0, NULL) < 0 ||
            setresgid(gid, gid, gid) < 0 ||
            setresuid(uid, uid, uid) < 0)
                return -1;
        /* Belt and braces: if any of the above had been a no-op, regaining root must fail. */
        if (uid != 0 && setuid(0) == 0)
                return -1;
        return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

/* Closes every fd from 3 up except keep (-1: none). */
static void close_fds_except(int keep) {
#ifdef SYS_close_range
        if (keep < 0 ? syscall(SYS_close_range, 3, ~0U, 0) == 0
                     : (keep == 3 || syscall(SYS_close_range, 3, keep - 1, 0) == 0) &&
                       syscall(SYS_close_range, keep + 1, ~0U, 0) == 0)
                return;
#endif
        for (int fd = 3; fd < 65536; fd++)
                if (fd != keep)
                        close(fd);
}

static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

static void exec_job(char **argv, const sigset_t *mask) {
        int e;

        for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
                signal(forwarded[i], SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, mask, NULL);
        setpgid(0, 0);
        close_fds_except(-1);
        execvp(argv[0], argv);
        e = errno;
        dprintf(STDERR_FILENO, "gateway-job-init: cannot execute '%s': %s\n", argv[0], strerror(e));
        _exit(e == ENOENT ? 127 : 126);
}

int main(int argc, char *argv[]) {
        unsigned long status_fd, uid, gid;
        struct sigaction sa = { .sa_handler = forward, .sa_flags = SA_RESTART };
        sigset_t all, old;
        int status = 0;
        pid_t pid;

        if (argc < 6 || strcmp(argv[4], "--") != 0 ||
            parse_id(argv[1], &status_fd) < 0 || parse_id(argv[2], &uid) < 0 || parse_id(argv[3], &gid) < 0) {
                dprintf(STDERR_FILENO, "Usage: gateway-job-init STATUS_FD UID GID -- COMMAND [ARG...]\n");
                return 125;
        }

        if (drop_privileges((uid_t) uid, (gid_t) gid) < 0) {
                dprintf(STDERR_FILENO, "gateway-job-init: cannot switch to uid %lu gid %lu: %s\n",
                        uid, gid, strerror(errno));
                return 125;
        }

        /* bwrap's own status fd and whatever else leaked stay outside the job. */
        close_fds_except((int) status_fd);

        /* Block the forwarded signals across fork, so none arrives before job_pid is known. */
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, &old);
        for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
                sigaction(forwarded[i], &sa, NULL);

        pid = fork();
        if (pid < 0) {
                dprintf(STDERR_FILENO, "gateway-job-init: fork: %s\n", strerror(errno));
                return 125;
        }
        if (pid == 0)
                exec_job(argv + 5, &old);

        setpgid(pid, pid);  /* also here, so forwarding works before the child got to it */
        job_pid = pid;
        sigprocmask(SIG_SETMASK, &old, NULL);

        for (;;) {
                int st;
                pid_t p = waitpid(-1, &st, 0);
                if (p < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p == pid) {
                        status = st;
                        break;
                }
        }

        if (WIFSIGNALED(status)) {
                dprintf((int) status_fd, "killed %d\n", WTERMSIG(status));
                return 128 + WTERMSIG(status);
        }
        dprintf((int) status_fd, "exited %d\n", WEXITSTATUS(status));
        return WEXITSTATUS(status);
}
