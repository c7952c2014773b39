/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gateway-job-init: pid 1 of a job's sandbox (see sandbox.h for why it exists).
 *
 *   gateway-job-init STATUS_FD LIFELINE_FD UID GID -- COMMAND [ARG...]
 *
 * Drops from root to UID/GID (no supplementary groups; every capability goes with uid 0),
 * forks COMMAND in its own process group, forwards SIGTERM/SIGINT/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2
 * to that group, reaps orphans, and when COMMAND ends writes "exited N\n" or "killed SIG\n" to
 * STATUS_FD and exits (which, as pid 1, ends every other process of the sandbox).
 *
 * LIFELINE_FD is the read end of a pipe whose only writer is the worker: when it reports EOF the
 * worker has died, and the init exits, ending the sandbox. (bwrap's --die-with-parent does not
 * cover us: changing uid clears the parent-death signal, and even when set again afterwards it
 * was not delivered when bwrap died, presumably because bwrap may not signal another uid.)
 *
 * It already runs under the job's seccomp filter (bwrap installs it before executing us, see
 * job-seccomp.h): whatever it does before the drop must be allowed to the job as well, which is
 * why the session keyring is set up by the worker, not here.
 *
 * It is linked statically because it runs inside an arbitrary image; it uses no helper of the
 * project. */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int parse_id(const char *s, unsigned long *ret) {
        char *end;

        errno = 0;
        *ret = strtoul(s, &end, 10);
        return errno == 0 && *s && !*end && *ret < 0xFFFFFFFFUL ? 0 : -1;
}

static int drop_privileges(uid_t uid, gid_t gid) {
        /* Empty the bounding set too, so nothing the job execs can ever regain a capability
         * (file capabilities are moot with NO_NEW_PRIVS, but this costs nothing). */
        for (int cap = 0;; cap++)
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
                        if (errno == EINVAL)
                                break;    /* past the last capability */
                        return -1;
                }
        if (setgroups(0, NULL) < 0 ||
            setresgid(gid, gid, gid) < 0 ||
            setresuid(uid, uid, uid) < 0)
                return -1;
        /* Belt and braces: if any of the above had been a no-op, regaining root must fail. */
        if (uid != 0 && setuid(0) == 0)
                return -1;
        return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

static void close_range_(unsigned from, unsigned to) {
        if (from > to)
                return;
#ifdef SYS_close_range
        if (syscall(SYS_close_range, from, to, 0) == 0)
                return;
#endif
        for (unsigned fd = from; fd <= to && fd < 65536; fd++)
                close((int) fd);
}

/* Closes every fd from 3 up except keep1 and keep2 (-1: none). */
static void close_fds_except(int keep1, int keep2) {
        unsigned lo = keep1 < keep2 ? (unsigned) keep1 : (unsigned) keep2;   /* -1 is huge */
        unsigned hi = keep1 < keep2 ? (unsigned) keep2 : (unsigned) keep1;
        unsigned from = 3;

        if (lo >= 3 && lo != ~0U) {
                close_range_(from, lo - 1);
                from = lo + 1;
        }
        if (hi >= 3 && hi != ~0U && hi != lo) {
                close_range_(from, hi - 1);
                from = hi + 1;
        }
        close_range_(from, ~0U);
}

static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

static void exec_job(char **argv, const sigset_t *mask) {
        int e;

        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, mask, NULL);
        setpgid(0, 0);
        close_fds_except(-1, -1);
        execvp(argv[0], argv);
        e = errno;
        dprintf(STDERR_FILENO, "gateway-job-init: cannot execute '%s': %s\n", argv[0], strerror(e));
        _exit(e == ENOENT ? 127 : 126);
}

/* Waits for the job, forwarding signals and reaping orphans. Returns its wait status, or -1 if
 * the worker went away (lifeline closed). */
static int supervise(pid_t job, int sfd, int lifeline) {
        for (;;) {
                struct pollfd p[2] = {
                        { .fd = sfd, .events = POLLIN },
                        { .fd = lifeline, .events = POLLIN },
                };
                struct signalfd_siginfo si;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -1;
                }
                if (p[1].revents)
                        return -1;    /* only EOF ever arrives here: the worker is gone */
                if (read(sfd, &si, sizeof(si)) != sizeof(si))
                        continue;
                if (si.ssi_signo != SIGCHLD) {
                        kill(-job, (int) si.ssi_signo);
                        continue;
                }
                for (;;) {
                        int st;
                        pid_t r = waitpid(-1, &st, WNOHANG);
                        if (r <= 0)
                                break;
                        if (r == job)
                                return st;
                }
        }
}

int main(int argc, char *argv[]) {
        unsigned long status_fd, lifeline, uid, gid;
        sigset_t mask, old;
        int status, sfd;
        pid_t pid;

        if (argc < 7 || strcmp(argv[5], "--") != 0 ||
            parse_id(argv[1], &status_fd) < 0 || parse_id(argv[2], &lifeline) < 0 ||
            parse_id(argv[3], &uid) < 0 || parse_id(argv[4], &gid) < 0) {
                dprintf(STDERR_FILENO, "Usage: gateway-job-init STATUS_FD LIFELINE_FD UID GID -- COMMAND [ARG...]\n");
                return 125;
        }

        /* No oom_score_adj protection for us: memory that only the end of the sandbox frees
         * (its tmpfs) must stay freeable by the OOM killer. An OOM kill of the init still ends
         * as OUT_OF_MEMORY in exit.json. */
        if (drop_privileges((uid_t) uid, (gid_t) gid) < 0) {
                dprintf(STDERR_FILENO, "gateway-job-init: cannot switch to uid %lu gid %lu: %s\n",
                        uid, gid, strerror(errno));
                return 125;
        }

        /* bwrap's own status fd and whatever else leaked stay outside the job. */
        close_fds_except((int) status_fd, (int) lifeline);

        /* Signals are taken through a signalfd; blocked before fork, so none is lost. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
                sigaddset(&mask, forwarded[i]);
        sigprocmask(SIG_BLOCK, &mask, &old);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (sfd < 0) {
                dprintf(STDERR_FILENO, "gateway-job-init: signalfd: %s\n", strerror(errno));
                return 125;
        }
        /* From here on no signal to us is lost (as pid 1 of the sandbox, one without a handler
         * was dropped before): the worker holds back a cancel until it reads this. */
        dprintf((int) status_fd, "ready\n");

        pid = fork();
        if (pid < 0) {
                dprintf(STDERR_FILENO, "gateway-job-init: fork: %s\n", strerror(errno));
                return 125;
        }
        if (pid == 0)
                exec_job(argv + 6, &old);
        setpgid(pid, pid);  /* also here, so forwarding works before the child got to it */

        status = supervise(pid, sfd, (int) lifeline);
        if (status < 0)
                /* As pid 1, exiting takes every process of the sandbox with it. */
                return 137;
        if (WIFSIGNALED(status)) {
                dprintf((int) status_fd, "killed %d\n", WTERMSIG(status));
                return 128 + WTERMSIG(status);
        }
        dprintf((int) status_fd, "exited %d\n", WEXITSTATUS(status));
        return WEXITSTATUS(status);
}
