/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <systemd/sd-event.h>

#include "build-config.h"
#include "fd-limit.h"
#include "line-splitter.h"
#include "log.h"
#include "manager.h"
#include "worker-process.h"

/* An event line longer than this is a broken worker, not data: results travel in spool files. */
#define EVENT_LINE_MAX (4u * 1024u * 1024u)

struct WorkerProcess {
        Manager *manager;
        pid_t pid;
        int fd;                      /* read end of the events pipe */
        sd_event_source *io_source;
        sd_event_source *child_source;
        LineSplitter lines;
        bool eof, exited, own_session, drop_long_events, in_long_line;
        int exit_status;
        WorkerCallbacks cb;
        void *userdata;
};

const char *worker_binary_path(Manager *m) {
        static char path[PATH_MAX + 64];
        const char *e = getenv("GATEWAYD_WORKER");
        char self[PATH_MAX], *slash;
        ssize_t n;

        if (m && m->config->worker_path)
                return m->config->worker_path;
        if (e)
                return e;
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n < 0)
                return LIBEXECDIR "/gateway-worker";
        self[n] = 0;
        slash = strrchr(self, '/');
        if (slash)
                *slash = 0;
        /* Installed: next to gatewayd. Build tree: src/gatewayd/ beside src/worker/. */
        snprintf(path, sizeof(path), "%s/gateway-worker", self);
        if (access(path, X_OK) >= 0)
                return path;
        snprintf(path, sizeof(path), "%s/../worker/gateway-worker", self);
        if (access(path, X_OK) >= 0)
                return path;
        return LIBEXECDIR "/gateway-worker";
}

const char *worker_run_binary_path(Manager *m, bool *ret_verb) {
        static char path[PATH_MAX + 64];
        const char *worker = worker_binary_path(m), *slash = strrchr(worker, '/');

        *ret_verb = true;
        if (!slash || !streq(slash + 1, "gateway-worker"))
                return worker;
        if (snprintf(path, sizeof(path), "%.*s/gateway-worker-run", (int) (slash - worker), worker) >= (int) sizeof(path))
                return worker;
        if (access(path, X_OK) < 0)
                return worker;
        *ret_verb = false;
        return path;
}

static void worker_maybe_finish(WorkerProcess *w) {
        /* Deliver exit only after the pipe is drained, so the final "done" event comes first. */
        if (!w->eof || !w->exited || !w->cb.on_exit)
                return;
        void (*on_exit)(WorkerProcess *, int, void *) = w->cb.on_exit;
        w->cb.on_exit = NULL;
        on_exit(w, w->exit_status, w->userdata);
}

static int on_line(const char *line, size_t len, bool continued, void *userdata) {
        WorkerProcess *w = userdata;
        WorkerEvent e;

        if (continued || w->in_long_line) {
                if (w->drop_long_events) {
                        /* All pieces of it, the last one too. */
                        w->in_long_line = continued;
                        return 0;
                }
                log_error("Worker %i sent an event line over %u bytes; killing it.", (int) w->pid, EVENT_LINE_MAX);
                (void) kill(w->pid, SIGKILL);
                return -E2BIG;
        }
        if (worker_event_parse(line, &e) < 0) {
                log_warning("Worker %i sent an unparsable event line; ignoring it.", (int) w->pid);
                return 0;
        }
        if (w->cb.on_event)
                w->cb.on_event(w, &e, w->userdata);
        worker_event_done(&e);
        return 0;
}

/* Reads what is in the pipe; returns 0 when it would block, < 0 at EOF or on an error. */
static int worker_read(WorkerProcess *w) {
        char buf[65536];
        ssize_t n;

        n = read(w->fd, buf, sizeof(buf));
        if (n < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return 0;
                return log_warning_errno(errno, "Failed to read worker events: %m");
        }
        if (n == 0)
                return -EPIPE;
        return line_splitter_feed(&w->lines, buf, (size_t) n) < 0 ? -E2BIG : 1;
}

static void worker_eof(WorkerProcess *w) {
        w->io_source = sd_event_source_disable_unref(w->io_source);
        w->fd = safe_close(w->fd);
        w->eof = true;
}

static int on_events(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        WorkerProcess *w = userdata;

        if (worker_read(w) < 0) {
                worker_eof(w);
                worker_maybe_finish(w);
        }
        return 0;
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        WorkerProcess *w = userdata;

        w->exited = true;
        w->exit_status = si->si_code == CLD_EXITED ? si->si_status : -si->si_status;
        w->child_source = sd_event_source_disable_unref(w->child_source);
        /* Everything the worker wrote is in the pipe now. A process it left behind (a job's
         * sandbox) may still hold the write end: do not wait for an EOF that may never come. */
        if (!w->eof) {
                int r;

                while ((r = worker_read(w)) > 0)
                        ;
                worker_eof(w);
        }
        worker_maybe_finish(w);
        return 0;
}

/* Runs in the vfork child: system calls only, no allocation (it shares gatewayd's memory). */
static _noreturn_ void worker_exec(char **argv, const WorkerOptions *o, int events_fd, pid_t parent) {
        const char *path = argv[0];
        sigset_t none;
        int null_fd;

        /* Undo what gatewayd set up for itself: blocked signals, ignored SIGPIPE, the raised
         * RLIMIT_NOFILE. */
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < _NSIG; sig++)
                (void) signal(sig, SIG_DFL);
        fd_limit_restore();

        if (o->own_session)
                /* gatewayd's death (or a SIGINT to its process group) must not reach it. */
                (void) setsid();
        else {
                (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() != parent)
                        _exit(EXIT_FAILURE);
        }

        null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null_fd < 0 || dup2(o->stdin_fd > 0 ? o->stdin_fd : null_fd, STDIN_FILENO) < 0 || dup2(null_fd, STDOUT_FILENO) < 0 ||
            (o->stderr_fd > STDERR_FILENO && dup2(o->stderr_fd, STDERR_FILENO) < 0) ||
            (events_fd == 3 ? fcntl(3, F_SETFD, 0) : dup2(events_fd, 3)) < 0)
                _exit(127);
        (void) syscall(SYS_close_range, 4, ~0U, 0);
        execv(path, argv);
        dprintf(STDERR_FILENO, "Failed to execute %s: %m\n", path);
        _exit(127);
}

/* vfork: the child only makes system calls and execs, so copying gatewayd's page tables (and the
 * copy-on-write faults in gatewayd after) would be a waste per job. A function of its own, so
 * that no caller's variables live across the vfork. */
static __attribute__((noinline)) pid_t worker_vfork(char **argv, const WorkerOptions *o, int events_fd, pid_t parent) {
        pid_t pid = vfork();

        if (pid == 0)
                worker_exec(argv, o, events_fd, parent);
        return pid;
}

int worker_process_spawn(Manager *m, const WorkerOptions *o, const WorkerCallbacks *cb, void *userdata,
                         WorkerProcess **ret) {
        WorkerProcess *w;
        int pipefd[2], r;
        pid_t parent = getpid(), pid;
        /* "WorkerPath" names the worker for pulls as for jobs. */
        const char *path = o->path ?: worker_binary_path(m);
        size_t n = strv_length(o->argv);
        _cleanup_free_ char **argv = calloc(n + 2, sizeof(char *));

        if (!argv)
                return log_oom();
        argv[0] = (char *) path;
        memcpy(argv + 1, o->argv, n * sizeof(char *));
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return log_error_errno(errno, "Failed to create worker pipe: %m");

        /* The read end is O_CLOEXEC: the exec closes it in the child. */
        pid = worker_vfork(argv, o, pipefd[1], parent);
        if (pid < 0) {
                r = -errno;
                safe_close(pipefd[0]);
                safe_close(pipefd[1]);
                return log_error_errno(r, "Failed to fork worker: %m");
        }
        close(pipefd[1]);

        w = calloc(1, sizeof(WorkerProcess));
        if (!w) {
                (void) kill(pid, SIGKILL);
                safe_close(pipefd[0]);
                return log_oom();
        }
        *w = (WorkerProcess) { .manager = m, .pid = pid, .fd = pipefd[0], .cb = *cb, .userdata = userdata,
                               .own_session = o->own_session, .drop_long_events = o->drop_long_events };
        line_splitter_init(&w->lines, EVENT_LINE_MAX, on_line, w);
        (void) fcntl(w->fd, F_SETFL, O_NONBLOCK);

        r = sd_event_add_io(m->event, &w->io_source, w->fd, EPOLLIN, on_events, w);
        if (r >= 0)
                r = sd_event_add_child(m->event, &w->child_source, pid, WEXITED, on_child, w);
        if (r < 0) {
                worker_process_free(w);
                return log_error_errno(r, "Failed to watch worker: %m");
        }
        log_debug("Started worker %i: %s %s", (int) pid, path, o->argv[0]);
        *ret = w;
        return 0;
}

WorkerProcess *worker_process_free(WorkerProcess *w) {
        if (!w)
                return NULL;
        /* A worker in its own session (a job) carries on without us and is re-attached through
         * its spool after a restart; others die with their owner. */
        if (!w->exited && w->pid > 0 && !w->own_session) {
                (void) kill(w->pid, SIGKILL);
                (void) waitpid(w->pid, NULL, 0);
        }
        sd_event_source_disable_unref(w->io_source);
        sd_event_source_disable_unref(w->child_source);
        safe_close(w->fd);
        line_splitter_done(&w->lines);
        free(w);
        return NULL;
}

void worker_process_set_callbacks(WorkerProcess *w, const WorkerCallbacks *cb, void *userdata) {
        w->cb = *cb;
        w->userdata = userdata;
}

pid_t worker_process_pid(WorkerProcess *w) {
        return w->pid;
}

int worker_process_kill(WorkerProcess *w, int sig) {
        if (w->exited)
                return 0;
        return kill(w->pid, sig) < 0 ? -errno : 0;
}
