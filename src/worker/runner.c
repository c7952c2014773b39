/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sched.h>
#include <inttypes.h>
#include <linux/keyctl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "async-call.h"
#include "events.h"
#include "job-limits.h"
#include "job-output.h"
#include "job-result-endpoint.h"
#include "lab-disk.h"
#include "job-seccomp.h"
#include "log.h"
#include "process-util.h"
#include "result-files.h"
#include "runner.h"
#include "sandbox.h"
#include "sandbox-root.h"
#include "spool.h"
#include "spool-reserve.h"
#include "squashfs-mount.h"
/* After bwrap exits, how long stray pipe writers may keep us reading. */
#define DRAIN_USEC (5 * 1000000ULL)
/* fd numbers in the bwrap process */
#define FD_JSON_STATUS 3
#define FD_INIT_STATUS 4
#define FD_LIFELINE 5
#define FD_SECCOMP 6
#define N_CHILD_FDS 6

typedef enum StopReason {
        STOP_NONE,
        STOP_TIMEOUT,
        STOP_CANCEL,
        STOP_DISK_FULL,
} StopReason;

typedef struct Runner {
        const JobSpec *spec;
        const RunnerOptions *opts;
        int spool_fd;

        JobOutput *output;

        JobCgroup *cgroup;
        ImageMount *mount;
        ImageMount *program_mount;
        ResultDir *results;             /* the job's result files; NULL: none */
        char **env;                     /* the spec's, plus RESULT_FILES_ENV */
        ResultEndpoint *endpoint;       /* a program job's save_result, in the job's netns */

        pid_t bwrap_pid;
        int bwrap_pidfd;
        bool bwrap_exited;
        int bwrap_status;
        pid_t sandbox_pid;
        int sandbox_pidfd;

        int fd_out, fd_err, fd_json, fd_init;
        int lifeline;           /* write end: we only hold it, our death closes it */
        int seccomp_fd;         /* the job's BPF program, for bwrap --seccomp */
        int netns_fd;           /* lab members: the instance's network namespace, joined by bwrap */
        char json_buf[4096];
        size_t json_len;
        char init_buf[64];
        size_t init_len;
        /* The init said "ready": its signals are blocked and taken by a signalfd. Before that, a
         * SIGTERM to it (pid 1 of the sandbox's pid namespace, without a handler) is dropped by
         * the kernel: a cancel then waits for it (term_pending). */
        bool init_ready, term_pending;

        StopReason stop;
        uint64_t deadline, kill_at, drain_until;    /* CLOCK_MONOTONIC µs, 0 = unset */
        bool killed;
        int64_t started_at;
} Runner;

int64_t now_realtime_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

void job_outcome_done(JobOutcome *o) {
        free(o->error_code);
        free(o->error_detail);
        free(o->result);
        *o = (JobOutcome) { .exit_code = -1 };
}

static int set_error(JobOutcome *o, const char *status, const char *code, const char *format, ...) _printf_(4, 5);
static int set_error(JobOutcome *o, const char *status, const char *code, const char *format, ...) {
        va_list ap;
        int r;

        o->status = status;
        free(o->error_code);
        free(o->error_detail);
        o->error_code = strdup(code);
        va_start(ap, format);
        r = vasprintf(&o->error_detail, format, ap);
        va_end(ap);
        if (r < 0)
                o->error_detail = NULL;
        return o->error_code && o->error_detail ? 0 : -ENOMEM;
}

static void kill_all(Runner *r) {
        r->killed = true;
        if (r->sandbox_pidfd >= 0)
                (void) pidfd_signal(r->sandbox_pidfd, SIGKILL);
        if (!r->bwrap_exited)
                (void) pidfd_signal(r->bwrap_pidfd, SIGKILL);
        if (r->cgroup)
                (void) job_cgroup_kill(r->cgroup, SIGKILL);
}

static void begin_stop(Runner *r, StopReason reason) {
        if (r->stop != STOP_NONE) {
                /* asked twice: no more grace */
                if (!r->killed)
                        kill_all(r);
                return;
        }
        r->stop = reason;
        if (reason == STOP_TIMEOUT)
                job_output_note(r->output, "error", "Time limit of %.3g s exceeded; terminating the job.",
                     (double) r->spec->timeout_usec / 1e6);
        else if (reason == STOP_DISK_FULL)
                /* (this note reaches the events only: the log cannot take it) */
                job_output_note(r->output, "error", "The file system of the spool is full; terminating the job.");
        else
                job_output_note(r->output, "notice", "Job cancelled; terminating it.");

        if (r->sandbox_pidfd >= 0 && !r->init_ready) {
                r->term_pending = true;         /* sent at "ready"; the grace counts from now */
                r->kill_at = now_usec() + r->opts->kill_grace_usec;
        } else if (r->sandbox_pidfd >= 0 && pidfd_signal(r->sandbox_pidfd, SIGTERM) >= 0)
                r->kill_at = now_usec() + r->opts->kill_grace_usec;
        else
                kill_all(r);   /* not started yet (or gone): nothing to be graceful to */
}

static void parse_init_status(Runner *r) {
        r->init_buf[r->init_len] = 0;
        if (r->init_ready || !strstr(r->init_buf, "ready\n"))
                return;
        r->init_ready = true;
        if (r->term_pending && !r->killed)
                (void) pidfd_signal(r->sandbox_pidfd, SIGTERM);
        r->term_pending = false;
}

static void parse_json_status(Runner *r) {
        const char *p;

        if (r->sandbox_pid > 0)
                return;
        r->json_buf[r->json_len] = 0;
        p = strstr(r->json_buf, "\"child-pid\"");
        if (!p || !(p = strchr(p, ':')))
                return;
        p += 1 + strspn(p + 1, " ");
        if (!p[strspn(p, "0123456789")])
                return;    /* the number may go on in the next read */
        r->sandbox_pid = (pid_t) atoi(p);
        if (r->sandbox_pid <= 0)
                return;
        /* Referring to the sandbox's init by pidfd: its pid may be reused once bwrap reaps it. */
        r->sandbox_pidfd = MAX(pidfd_open_fd(r->sandbox_pid), -1);
        r->started_at = now_realtime_usec();

        json_object *o = json_object_new_object();
        if (o) {
                json_object_object_add(o, "status", json_object_new_string("RUNNING"));
                json_object_object_add(o, "startedAt", json_object_new_int64(r->started_at));
                (void) events_emit(WORKER_EVENT_STATUS, o);
        }
}

/* Reads what is there; returns false at EOF or error (the fd is then closed). */
static bool read_stream(Runner *r, int *fd) {
        char buf[65536];
        ssize_t n;

        n = read(*fd, buf, sizeof(buf));
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return true;
        if (n <= 0) {
                *fd = safe_close(*fd);
                return false;
        }
        if (*fd == r->fd_out)
                (void) job_output_feed(r->output, JOB_STDOUT, buf, (size_t) n);
        else if (*fd == r->fd_err)
                (void) job_output_feed(r->output, JOB_STDERR, buf, (size_t) n);
        else if (*fd == r->fd_json) {
                size_t m = MIN((size_t) n, sizeof(r->json_buf) - 1 - r->json_len);
                memcpy(r->json_buf + r->json_len, buf, m);
                r->json_len += m;
                parse_json_status(r);
        } else {
                size_t m = MIN((size_t) n, sizeof(r->init_buf) - 1 - r->init_len);
                memcpy(r->init_buf + r->init_len, buf, m);
                r->init_len += m;
                parse_init_status(r);
        }
        return true;
}

static void handle_signal(Runner *r, int signal_fd) {
        struct signalfd_siginfo si;

        if (read(signal_fd, &si, sizeof(si)) != sizeof(si))
                return;
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
                begin_stop(r, STOP_CANCEL);
}

static void handle_exit(Runner *r) {
        if (waitpid(r->bwrap_pid, &r->bwrap_status, WNOHANG) != r->bwrap_pid)
                return;
        r->bwrap_exited = true;
        r->drain_until = now_usec() + DRAIN_USEC;
}

static int poll_timeout(const Runner *r) {
        uint64_t now = now_usec(), next = UINT64_MAX;

        if (r->stop == STOP_NONE && r->deadline)
                next = MIN(next, r->deadline);
        if (r->kill_at && !r->killed)
                next = MIN(next, r->kill_at);
        if (r->drain_until)
                next = MIN(next, r->drain_until);
        if (next == UINT64_MAX)
                return -1;
        return next <= now ? 0 : (int) MIN((next - now + 999) / 1000, (uint64_t) INT32_MAX);
}

static void check_timers(Runner *r) {
        uint64_t now = now_usec();

        if (r->stop == STOP_NONE && r->deadline && now >= r->deadline)
                begin_stop(r, STOP_TIMEOUT);
        if (r->kill_at && !r->killed && now >= r->kill_at) {
                job_output_note(r->output, "notice", "Job did not end within the grace period; killing it.");
                kill_all(r);
        }
}

static void event_loop(Runner *r, int signal_fd) {
        for (;;) {
                int *fds[] = { &r->fd_out, &r->fd_err, &r->fd_json, &r->fd_init };
                struct pollfd p[6];
                int *owner[6];
                size_t n = 0;

                if (r->bwrap_exited &&
                    ((r->fd_out < 0 && r->fd_err < 0 && r->fd_json < 0 && r->fd_init < 0) ||
                     now_usec() >= r->drain_until))
                        return;

                for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                        if (*fds[i] >= 0) {
                                owner[n] = fds[i];
                                p[n++] = (struct pollfd) { .fd = *fds[i], .events = POLLIN };
                        }
                owner[n] = NULL;
                p[n++] = (struct pollfd) { .fd = signal_fd, .events = POLLIN };
                if (!r->bwrap_exited) {
                        owner[n] = NULL;
                        p[n++] = (struct pollfd) { .fd = r->bwrap_pidfd, .events = POLLIN };
                }

                if (poll(p, n, poll_timeout(r)) < 0 && errno != EINTR) {
                        log_error_errno(errno, "poll() failed: %m");
                        kill_all(r);
                        return;
                }
                for (size_t i = 0; i < n; i++) {
                        if (!p[i].revents)
                                continue;
                        if (owner[i]) {
                                (void) read_stream(r, owner[i]);
                                /* Output that cannot be stored is lost, and a job that goes on
                                 * producing it takes the space other jobs need to finish. */
                                if (r->stop == STOP_NONE && job_output_disk_full(r->output))
                                        begin_stop(r, STOP_DISK_FULL);
                        }
                        else if (p[i].fd == signal_fd)
                                handle_signal(r, signal_fd);
                        else
                                handle_exit(r);
                }
                check_timers(r);
        }
}

static _noreturn_ void child_exec(Runner *r, char **argv, char **envp, const int child_fds[N_CHILD_FDS]) {
        static const int targets[N_CHILD_FDS] = {
                STDOUT_FILENO, STDERR_FILENO, FD_JSON_STATUS, FD_INIT_STATUS, FD_LIFELINE, FD_SECCOMP,
        };
        int moved[N_CHILD_FDS], null_fd, k;
        sigset_t empty;

        sigemptyset(&empty);
        sigprocmask(SIG_SETMASK, &empty, NULL);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGHUP, SIG_DFL);

        /* If the worker is killed outright, bwrap goes too (and the sandbox's init notices its
         * lifeline closing). */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                _exit(120);
        /* Out of our process group: a Ctrl-C at a terminal is a cancel for us to handle, not a
         * signal that kills bwrap behind our back. */
        (void) setpgid(0, 0);

        /* A lab member: bwrap (without --unshare-net) stays in the namespace it starts in. */
        if (r->netns_fd >= 0 && setns(r->netns_fd, CLONE_NEWNET) < 0) {
                dprintf(STDERR_FILENO, "gateway-worker: cannot join the lab's network namespace: %s\n", strerror(errno));
                _exit(120);
        }
        /* A program job's network namespace, made by its result endpoint: loopback only. */
        if (r->endpoint && setns(result_endpoint_netns_fd(r->endpoint), CLONE_NEWNET) < 0) {
                dprintf(child_fds[1], "gateway-worker: cannot join the job's network namespace: %s\n", strerror(errno));
                _exit(120);
        }

        /* Out of the way of the target numbers first, then into place (dup2 clears CLOEXEC). */
        for (int i = 0; i < N_CHILD_FDS; i++)
                if ((moved[i] = fcntl(child_fds[i], F_DUPFD, 10)) < 0)
                        _exit(120);
        for (int i = 0; i < N_CHILD_FDS; i++)
                if (dup2(moved[i], targets[i]) < 0)
                        _exit(120);
        null_fd = open("/dev/null", O_RDONLY);
        if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0)
                _exit(120);
        if (syscall(SYS_close_range, N_CHILD_FDS + 1, ~0U, 0) < 0)
                for (int fd = N_CHILD_FDS + 1; fd < 1024; fd++)
                        close(fd);

        /* A new, anonymous session keyring for the sandbox, here because the job's init already
         * runs under the seccomp filter, which refuses keyctl(). Without one, the job's key
         * lookups would fall through to the session keyring we inherited or, lacking that, to
         * the submitting user's own session keyring on the host. (The job cannot name a keyring
         * itself either way: the filter refuses the keyring calls.) ENOSYS: no keyrings in this
         * kernel, nothing to keep apart. */
        if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0 && errno != ENOSYS) {
                dprintf(STDERR_FILENO, "gateway-worker: cannot create a session keyring: %s\n", strerror(errno));
                _exit(120);
        }

        k = job_cgroup_enter(r->cgroup);
        if (k < 0) {
                dprintf(STDERR_FILENO, "gateway-worker: cannot apply resource limits: %s\n", strerror(-k));
                _exit(120);
        }
        execve(argv[0], argv, envp);
        dprintf(STDERR_FILENO, "gateway-worker: cannot execute %s: %s\n", argv[0], strerror(errno));
        _exit(127);
}

static int make_pipe(int p[2]) {
        return pipe2(p, O_CLOEXEC) < 0 ? -errno : 0;
}

static int spawn(Runner *r, char **argv) {
        int out[2] = { -1, -1 }, err[2] = { -1, -1 }, js[2] = { -1, -1 }, is[2] = { -1, -1 };
        int life[2] = { -1, -1 };
        int k;

        k = make_pipe(life);
        if (k >= 0)
                k = make_pipe(out);
        if (k >= 0)
                k = make_pipe(err);
        if (k >= 0)
                k = make_pipe(js);
        if (k >= 0)
                k = make_pipe(is);
        if (k >= 0) {
                r->bwrap_pid = fork();
                if (r->bwrap_pid < 0)
                        k = -errno;
                else if (r->bwrap_pid == 0)
                        child_exec(r, argv, r->env,
                                   (int[N_CHILD_FDS]) { out[1], err[1], js[1], is[1], life[0], r->seccomp_fd });
        }
        safe_close(life[0]);
        r->lifeline = life[1];
        safe_close(out[1]);
        safe_close(err[1]);
        safe_close(js[1]);
        safe_close(is[1]);
        r->fd_out = out[0];
        r->fd_err = err[0];
        r->fd_json = js[0];
        r->fd_init = is[0];
        if (k < 0)
                return k;

        /* poll() says "readable", but a read must never be able to stall the loop */
        (void) fcntl(r->fd_out, F_SETFL, O_NONBLOCK);
        (void) fcntl(r->fd_err, F_SETFL, O_NONBLOCK);
        (void) fcntl(r->fd_json, F_SETFL, O_NONBLOCK);
        (void) fcntl(r->fd_init, F_SETFL, O_NONBLOCK);

        r->bwrap_pidfd = pidfd_open_fd(r->bwrap_pid);
        if (r->bwrap_pidfd < 0) {
                k = r->bwrap_pidfd;
                r->bwrap_pidfd = -1;
                (void) kill(r->bwrap_pid, SIGKILL);
                (void) waitpid(r->bwrap_pid, NULL, 0);
                return k;
        }
        if (r->spec->timeout_usec > 0)
                r->deadline = now_usec() + r->spec->timeout_usec;
        return 0;
}

static void cgroup_name(const Runner *r, char *buf, size_t size) {
        const char *id = r->spec->id ?: "job";
        size_t n;

        n = (size_t) snprintf(buf, size, "gatewayd-job-");
        for (const char *p = id; *p && n + 1 < size - 16; p++)
                buf[n++] = (char) ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                                   (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ? *p : '_');
        snprintf(buf + n, size - n, "-%d", (int) getpid());
}

/* The job's environment: the spec's, and where its result files go (PlanQK's variable). */
static int build_env(Runner *r) {
        size_t n = strv_length(r->spec->env), k = 0;

        r->env = calloc(n + 2, sizeof(char *));
        if (!r->env)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (!strneq(r->spec->env[i], RESULT_FILES_ENV "=", strlen(RESULT_FILES_ENV) + 1) &&
                    !(r->env[k++] = strdup(r->spec->env[i])))
                        return -ENOMEM;
        if (r->results && !(r->env[k++] = strdup(RESULT_FILES_ENV "=" RESULT_FILES_PATH)))
                return -ENOMEM;
        return 0;
}

/* A tmpfs for the result files, bounded by the job's limits and, like /tmp and /dev/shm, by
 * part of its memory limit (its pages are charged to the job). */
static int prepare_results(Runner *r) {
        uint64_t size = r->spec->output_max;

        if (r->spec->output_max == 0 || r->spec->output_files == 0)
                return 0;
        if (r->spec->memory > 0)
                size = MIN(size, r->spec->memory / 4);
        return result_dir_mount(r->opts->runtime_dir, MAX(size, (uint64_t) 4096), r->spec->output_files,
                                r->spec->uid, r->spec->gid, &r->results);
}

static void results_note(void *userdata, const char *level, const char *message) {
        job_output_note(userdata, level, "%s", message);
}

/* The job has ended, every process of it is gone: its result files into the spool. Files the
 * spool had no room for are lost like a result that could not be stored: a job that succeeded
 * did not succeed for its user then (DISK_FULL). */
static int collect_results(Runner *r, JobOutcome *o) {
        ResultFilesStats st = {};
        int k;

        if (!r->results)
                return 0;
        result_dir_detach(r->results);
        k = result_files_copy(result_dir_fd(r->results), r->spool_fd, r->spec->output_max, r->spec->output_files,
                              results_note, r->output, &st);
        if (k < 0)
                return log_error_errno(k, "Cannot copy the job's result files: %m");
        log_debug("Result files: %" PRIu64 " kept (%" PRIu64 " bytes), %" PRIu64 " dropped.", st.files, st.bytes, st.dropped);
        if (st.spool_full && o->status && streq(o->status, "SUCCEEDED"))
                return set_error(o, "FAILED", "DISK_FULL", "The job succeeded, but the file system of the spool is full: "
                                 "not all of its result files could be stored (%" PRIu64 " kept).", st.files);
        return 0;
}

/* The host's file at path (symlinks followed as the host's resolver does: /etc/resolv.conf is
 * often systemd-resolved's stub-resolv.conf), for a job with network; *ret NULL where the host
 * has none, which the job then goes without. */
static int host_etc_file(const char *path, char **ret) {
        _cleanup_free_ char *p = NULL;
        struct stat st;

        *ret = NULL;
        p = realpath(path, NULL);
        if (!p)
                return errno == ENOMEM ? -ENOMEM : 0;
        if (stat(p, &st) < 0 || !S_ISREG(st.st_mode))
                return 0;
        *ret = TAKE_PTR(p);
        return 0;
}

/* A job with network (not a lab member: its instance gives it these) shares the host's network
 * namespace, so it gets the host's resolver configuration and hosts file, as a container with
 * the host's network gets them from Docker or Podman: the image's would name the name servers
 * of wherever it was built, and one without falls back to 127.0.0.1:53. The host's stub
 * resolver on 127.0.0.53 is reachable from the host's namespace. */
static int host_name_files(const Runner *r, char **ret_hosts, char **ret_resolv) {
        int k;

        *ret_hosts = *ret_resolv = NULL;
        if (!r->spec->network || r->spec->netns)
                return 0;
        k = host_etc_file("/etc/hosts", ret_hosts);
        if (k >= 0)
                k = host_etc_file("/etc/resolv.conf", ret_resolv);
        return k;
}

static int prepare(Runner *r, const char *spool_path, JobOutcome *o, char ***ret_argv) {
        _cleanup_free_ char *data = NULL, *params = NULL, *arguments = NULL, *host_hosts = NULL, *host_resolv = NULL,
                *root = NULL;
        JobLimits limits = {
                .memory = r->spec->memory,
                .pids = r->spec->pids ?: r->opts->default_pids,
                .cpus = r->spec->cpus,
                .group = r->spec->group,
                .group_memory = r->spec->group_memory,
                .group_pids = r->spec->group_pids,
        };
        SandboxParams sp;
        char name[128];
        int k;

        k = spool_prepare_input(r->spool_fd, r->spec->uid, r->spec->gid);
        if (errno_is_disk_full(k))
                return set_error(o, "FAILED", "DISK_FULL", "Cannot prepare the input files in %s/input: %s",
                                 spool_path, strerror(-k));
        if (k < 0)
                return set_error(o, "FAILED", "INVALID_JOB", "Cannot prepare the input files in %s/input: %s",
                                 spool_path, strerror(-k));

        /* With network the job reaches gatewayd itself; without, the endpoint is its way out. It
         * makes the job's network namespace while we mount and set up limits. */
        if (r->spec->program_token && !r->spec->network) {
                k = result_endpoint_start(r->spool_fd, r->spec->id ?: "", r->spec->program_token,
                                          r->opts->limits.result_max, &r->endpoint);
                if (k < 0)
                        return set_error(o, "FAILED", "SANDBOX_ERROR", "Cannot start the job's result endpoint: %s",
                                         strerror(-k));
        }

        k = image_mount_acquire(r->opts->runtime_dir, r->spec->image_path, &r->mount);
        if (k < 0)
                return set_error(o, "FAILED", "IMAGE_ERROR", "%s", image_mount_last_error());
        /* The program's squashfs is shared by its jobs like an image's. */
        if (r->spec->program_path) {
                k = image_mount_acquire(r->opts->runtime_dir, r->spec->program_path, &r->program_mount);
                if (k < 0)
                        return set_error(o, "FAILED", "PROGRAM_ERROR", "%s", image_mount_last_error());
        }

        cgroup_name(r, name, sizeof(name));
        k = job_cgroup_new(name, &limits, r->opts->use_cgroups, &r->cgroup);
        if (k < 0)
                return set_error(o, "FAILED", "INTERNAL_ERROR", "Cannot set up resource limits: %s", strerror(-k));
        log_debug("Limits: %s", job_cgroup_describe(r->cgroup));

        k = prepare_results(r);
        if (k < 0)
                return set_error(o, "FAILED", "SANDBOX_ERROR", "Cannot set up %s for the job's result files: %s",
                                 RESULT_FILES_PATH, strerror(-k));
        if (build_env(r) < 0)
                return -ENOMEM;

        /* No job runs without its filter. */
        k = job_seccomp_memfd(&r->seccomp_fd);
        if (k < 0)
                return set_error(o, "FAILED", "SANDBOX_ERROR", "Cannot prepare the sandbox's seccomp filter: %s",
                                 strerror(-k));

        if (r->spec->writable_image) {
                _cleanup_free_ char *error = NULL;

                k = lab_disk_mount(r->spec->writable_image, r->spec->writable_template, r->spec->writable_max,
                                   r->spec->writable, r->spec->uid, r->spec->gid, &error);
                if (k < 0)
                        return set_error(o, "FAILED", "SANDBOX_ERROR", "%s", error ?: strerror(-k));
        }
        if (r->spec->netns) {
                r->netns_fd = open(r->spec->netns, O_RDONLY | O_CLOEXEC);
                if (r->netns_fd < 0)
                        return set_error(o, "FAILED", "SANDBOX_ERROR", "Cannot open the lab's network namespace %s: %m",
                                         r->spec->netns);
        }
        if (r->endpoint) {
                k = result_endpoint_wait(r->endpoint);
                if (k < 0)
                        return set_error(o, "FAILED", "SANDBOX_ERROR", "Cannot set up the job's result endpoint: %s",
                                         strerror(-k));
        }

        if (asprintf(&data, "%s/input/data.json", spool_path) < 0 ||
            asprintf(&params, "%s/input/params.json", spool_path) < 0 ||
            (r->spec->program_path && asprintf(&arguments, "%s/input/arguments.json", spool_path) < 0))
                return -ENOMEM;
        k = host_name_files(r, &host_hosts, &host_resolv);
        if (k < 0)
                return k;
        sp = (SandboxParams) {
                .bwrap = r->opts->bwrap,
                .image_root = image_mount_root(r->mount),
                .init = r->opts->init,
                .data_path = data,
                .params_path = params,
                .program_root = r->program_mount ? image_mount_root(r->program_mount) : NULL,
                .arguments_path = arguments,
                .output_path = r->results ? result_dir_path(r->results) : NULL,
                .workdir = r->spec->workdir,
                .hostname = r->spec->hostname ?: "gatewayd-job",
                .hosts_path = r->spec->hosts ?: host_hosts,
                .resolv_path = r->spec->resolv ?: host_resolv,
                .writable_path = r->spec->writable,
                .network = r->spec->network,
                .netns_given = r->endpoint != NULL,
                /* /tmp's and /dev/shm's pages are charged to the job's memory cgroup, but
                 * killing processes does not free them: tmpfs that could fill the whole limit
                 * can wedge the cgroup's OOM handling (seen with cgroup v1). Half the limit for
                 * /tmp and a quarter for /dev/shm (semaphores, multiprocessing's shared memory)
                 * fail with ENOSPC first and leave the job room to run. */
                .tmp_size = r->spec->memory / 2,
                .shm_size = r->spec->memory / 4,
                .json_status_fd = FD_JSON_STATUS,
                .init_status_fd = FD_INIT_STATUS,
                .lifeline_fd = FD_LIFELINE,
                .seccomp_fd = FD_SECCOMP,
                .uid = r->spec->uid,
                .gid = r->spec->gid,
                .command = r->spec->argv,
        };
        k = sandbox_root_acquire(r->mount, sandbox_root_flags(&sp), &root);
        if (k < 0)
                /* the entry-by-entry root, as on a kernel without overlayfs */
                log_debug_errno(k, "No sandbox root of the image's own, binding its entries one by one: %m");
        sp.root = root;
        k = sandbox_build_argv(&sp, ret_argv);
        if (k < 0)
                return set_error(o, "FAILED", "SANDBOX_ERROR", "Cannot read the image's root directory: %s",
                                 strerror(-k));
        return 0;
}

static const char *signal_name(int sig) {
        const char *s = sigabbrev_np(sig);
        return s ?: "?";
}

static int fill_outcome(Runner *r, JobOutcome *o) {
        _cleanup_free_ char *tail = job_output_log_tail(r->output);
        const char *status;
        bool have_init = false;
        int v;

        r->init_buf[r->init_len] = 0;
        /* after "ready\n" (an older init has none) */
        status = r->init_ready ? strstr(r->init_buf, "ready\n") + strlen("ready\n") : r->init_buf;
        if (sscanf(status, "exited %d", &v) == 1) {
                o->exit_code = v;
                have_init = true;
        } else if (sscanf(status, "killed %d", &v) == 1) {
                o->signal = v;
                have_init = true;
        } else if (r->killed)
                o->signal = SIGKILL;
        /* else bwrap's own exit status is about the sandbox, not the job: no exitCode */

        if (r->stop == STOP_CANCEL)
                return set_error(o, "CANCELLED", "CANCELLED", "The job was cancelled.");
        if (r->stop == STOP_DISK_FULL)
                return set_error(o, "FAILED", "DISK_FULL", "The file system of the spool is full: the job's output "
                                 "could not be stored, so the job was stopped.\nLast lines of the log:\n%s",
                                 strempty(tail));
        if (r->stop == STOP_TIMEOUT)
                return set_error(o, "FAILED", "TIMEOUT", "Time limit of %.3g s exceeded.\nLast lines of the log:\n%s",
                                 (double) r->spec->timeout_usec / 1e6, strempty(tail));
        if (o->exit_code != 0 && job_cgroup_oom_killed(r->cgroup))
                return set_error(o, "FAILED", "OUT_OF_MEMORY", "Memory limit of %" PRIu64 " bytes exceeded.\nLast lines of the log:\n%s",
                                 r->spec->memory, strempty(tail));
        /* Our init reports every job it started, so silence from it means bwrap (or the init's
         * own privilege drop) failed, unless we killed it. */
        if (!have_init && !r->killed)
                return set_error(o, "FAILED", "SANDBOX_ERROR", "The sandbox could not be set up.\nLast lines of the log:\n%s",
                                 strempty(tail));
        if (o->exit_code == 0) {
                o->status = "SUCCEEDED";
                return 0;
        }
        if (o->signal > 0)
                return set_error(o, "FAILED", "EXIT_CODE", "Killed by signal %d (SIG%s).\nLast lines of the log:\n%s",
                                 o->signal, signal_name(o->signal), strempty(tail));
        return set_error(o, "FAILED", "EXIT_CODE", "Exited with code %d.\nLast lines of the log:\n%s",
                         o->exit_code, strempty(tail));
}

/* Runs the event loop until the sandbox is gone, then works out how the job ended. */
static int supervise(Runner *r, int signal_fd, JobOutcome *o) {
        int k;

        event_loop(r, signal_fd);
        job_output_end(r->output);
        if (r->stop == STOP_NONE && job_output_disk_full(r->output))
                r->stop = STOP_DISK_FULL;   /* the last partial line did not fit */
        if (!r->bwrap_exited) {
                kill_all(r);
                (void) waitpid(r->bwrap_pid, &r->bwrap_status, 0);
        }
        k = fill_outcome(r, o);
        /* Nothing of the job may outlive us, even if bwrap was killed by someone else and left
         * the sandbox behind. */
        if (r->sandbox_pidfd >= 0)
                (void) pidfd_signal(r->sandbox_pidfd, SIGKILL);
        if (r->cgroup)
                (void) job_cgroup_kill(r->cgroup, SIGKILL);
        return k;
}

/* save_result's result wins over a marker's: the serverless gateway's programs save their result
 * that way, and print what they like. The endpoint goes first, so nothing is saved after this. */
static void take_saved_result(Runner *r, JobOutcome *o) {
        char *saved = NULL;
        size_t len = 0;
        int k;

        if (!r->endpoint)
                return;
        r->endpoint = result_endpoint_stop(r->endpoint);
        k = result_endpoint_take_result(r->spool_fd, r->opts->limits.result_max, &saved, &len);
        if (k < 0) {
                job_output_note(r->output, "warning", "Cannot read the result saved by the job: %s", strerror(-k));
                return;
        }
        if (!saved)
                return;
        if (o->result)
                job_output_note(r->output, "notice", "The result saved by save_result replaces the one printed with a marker.");
        free(o->result);
        o->result = saved;
        o->result_len = len;
}

static void runner_done(Runner *r) {
        safe_close(r->fd_out);
        safe_close(r->fd_err);
        safe_close(r->fd_json);
        safe_close(r->fd_init);
        safe_close(r->bwrap_pidfd);
        safe_close(r->sandbox_pidfd);
        safe_close(r->lifeline);
        safe_close(r->seccomp_fd);
        /* Before the job's cgroup goes: its tmpfs pages are charged to it. */
        result_dir_free(r->results);
        safe_close(r->netns_fd);
        r->endpoint = result_endpoint_stop(r->endpoint);
        job_cgroup_free(r->cgroup);
        if (r->mount)
                (void) image_mount_release_linger(r->mount, r->opts->image_linger_sec);
        if (r->program_mount)
                (void) image_mount_release_linger(r->program_mount, r->opts->program_linger_sec);
        strv_free(r->env);
}

static void runner_done_call(void *userdata) {
        runner_done(userdata);
}

typedef struct LogFinish {
        JobOutput *output;
        uint64_t *dropped;
} LogFinish;

static void log_finish_call(void *userdata) {
        LogFinish *f = userdata;

        (void) job_output_finish_log(f->output, f->dropped);
}

int runner_run(const JobSpec *spec, int spool_fd, const char *spool_path, int signal_fd,
               const RunnerOptions *opts, JobOutcome *o, const RunnerCommit *commit, void *userdata) {
        _cleanup_strv_free_ char **argv = NULL;
        AsyncCall cleanup, log_finish;
        Runner r = {
                .spec = spec,
                .opts = opts,
                .spool_fd = spool_fd,
                .bwrap_pidfd = -1,
                .sandbox_pidfd = -1,
                .fd_out = -1, .fd_err = -1, .fd_json = -1, .fd_init = -1,
                .lifeline = -1,
                .seccomp_fd = -1,
                .netns_fd = -1,
        };
        const char *result;
        int k;

        *o = (JobOutcome) { .exit_code = -1 };
        k = job_output_open(spool_fd, &opts->limits, opts->log_max, opts->tail_lines, &r.output);
        if (k < 0)
                return k;

        k = prepare(&r, spool_path, o, &argv);
        if (o->status)
                /* failed before the job could start: say why in the job's own log too */
                job_output_note(r.output, "error", "%s", strna(o->error_detail));
        else if (k >= 0) {
                k = spawn(&r, argv);
                if (k < 0)
                        k = set_error(o, "FAILED", "SANDBOX_ERROR", "Cannot start %s: %s", opts->bwrap, strerror(-k));
                else
                        k = supervise(&r, signal_fd, o);
        }
        /* Nothing of the job runs any more: gatewayd hands its slot on while its result files are
         * collected (an unmount, a flush each) and the outcome is made durable below. */
        (void) events_emit_status("FINISHING", NULL);
        /* Whatever the outcome: a failed job's files may say why. */
        if (k >= 0)
                k = collect_results(&r, o);

        o->started_at = r.started_at;
        o->ended_at = now_realtime_usec();
        o->interim_count = job_output_interim_count(r.output);
        result = job_output_result(r.output, &o->result_len);
        if (result)
                o->result = strndup(result, o->result_len);
        take_saved_result(&r, o);
        /* Everything of the job is gone and the outcome is complete: the clean-up (unmounts,
         * cgroup removal, each a wait for the kernel) overlaps the outcome's flushes to disk.
         * It touches neither the log nor the outcome. */
        async_call_start(&cleanup, runner_done_call, &r);
        /* The log's flush and result.json's overlap (one journal commit instead of two); exit.json
         * commits both, so it waits for the log. The log's thread writes only o->log_dropped,
         * which result does not touch. */
        async_call_start(&log_finish, log_finish_call, &(LogFinish) { r.output, &o->log_dropped });
        if (k >= 0 && commit)
                k = commit->result(o, userdata);
        async_call_wait(&log_finish);
        if (k >= 0 && commit)
                k = commit->outcome(o, userdata);
        async_call_wait(&cleanup);
        job_output_free(r.output);
        return k < 0 ? k : 0;
}
