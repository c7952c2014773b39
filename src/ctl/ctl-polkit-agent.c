/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl-polkit-agent.h"
#include "ctl.h"
#include "log.h"

/* How long to wait for the agent to register before going on without it. */
#define AGENT_REGISTER_TIMEOUT_MS 10000

static _noreturn_ void agent_exec(int notify_fd, pid_t parent) {
        char fd_arg[32], pid_arg[32];
        int fd;

        /* dup() leaves O_CLOEXEC behind, so the agent inherits the notification fd. */
        fd = dup(notify_fd);
        if (fd < 0)
                _exit(EXIT_FAILURE);
        snprintf(fd_arg, sizeof(fd_arg), "%d", fd);
        snprintf(pid_arg, sizeof(pid_arg), "%d", (int) parent);
        /* Registered for our process only, and not with --fallback: polkit 122 drops a fallback
         * agent when the caller has no logind session (su, runuser, ssh without pam_systemd,
         * containers), which is where a command-line gateway tool is used most. The price is
         * that on a desktop the password is asked on the terminal rather than in a dialog. */
        execl(PKTTYAGENT_PATH, PKTTYAGENT_PATH, "--notify-fd", fd_arg, "--process", pid_arg, (char *) NULL);
        _exit(127);
}

/* The agent closes its end of the pipe once registered (or dies): EOF either way. */
static void agent_wait_registered(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        struct timespec start, now;
        int left = AGENT_REGISTER_TIMEOUT_MS;

        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                char c;
                int r = poll(&p, 1, left);

                if (r < 0 && errno != EINTR)
                        return;
                if (r > 0 && read(fd, &c, 1) <= 0)
                        return;
                clock_gettime(CLOCK_MONOTONIC, &now);
                left = AGENT_REGISTER_TIMEOUT_MS - (int) ((now.tv_sec - start.tv_sec) * 1000 +
                                                          (now.tv_nsec - start.tv_nsec) / 1000000);
                if (left <= 0) {
                        log_debug("The polkit agent did not register in time; going on without it.");
                        return;
                }
        }
}

pid_t ctl_polkit_agent_open(void) {
        int fds[2];
        pid_t parent = getpid(), pid;

        if (!arg_ask_password || !isatty(STDIN_FILENO) || access(PKTTYAGENT_PATH, X_OK) < 0)
                return 0;

        if (pipe2(fds, O_CLOEXEC) < 0) {
                log_debug_errno(errno, "Failed to create a pipe for the polkit agent: %m");
                return 0;
        }
        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid < 0) {
                log_debug_errno(errno, "Failed to start the polkit agent: %m");
                close(fds[0]);
                close(fds[1]);
                return 0;
        }
        if (pid == 0) {
                close(fds[0]);
                agent_exec(fds[1], parent);
        }

        close(fds[1]);
        agent_wait_registered(fds[0]);
        close(fds[0]);
        return pid;
}

void ctl_polkit_agent_close(pid_t pid) {
        if (pid <= 0)
                return;
        (void) kill(pid, SIGTERM);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}
