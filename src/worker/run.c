/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>

#include "size-util.h"
#include "spool-layout.h"
#include "build-config.h"
#include "events.h"
#include "job-log.h"
#include "job-spec.h"
#include "log.h"
#include "run.h"
#include "runner.h"
#include "spool.h"
#include "spool-reserve.h"

#define DEFAULT_RUNTIME_DIR "/run/gatewayd/worker"
#define DEFAULT_BWRAP "/usr/bin/bwrap"
#define INIT_NAME "gateway-job-init"

typedef struct RunArgs {
        const char *spool;
        const char *pid_file;
        int events_fd;
        int events_timeout_msec;
        RunnerOptions runner;
        char *init;
} RunArgs;

static void help(void) {
        printf("Usage: gateway-worker run [OPTIONS...] SPOOLDIR\n"
               "\n"
               "Runs one job of gatewayd in a sandbox and writes its outcome to the spool directory.\n"
               "\n"
               "SPOOLDIR holds job.json (image, command, environment, limits, uid/gid; see\n"
               "docs/worker-run.md) and input/data.json and input/params.json (created as {} when\n"
               "missing). The image's squashfs is loop-mounted read-only, nosuid, nodev (shared with\n"
               "concurrent jobs of the same image), and the job runs under bubblewrap with its own\n"
               "mount, pid, ipc, uts and (unless the job asks for network) net namespaces, a read-only\n"
               "root, a private /tmp, the input at /var/input, as the job's uid/gid (uid 0 runs as\n"
               "nobody), with no new privileges, within its memory, pids, CPU and time limits.\n"
               "Files the job writes to /var/runtime/output ($OUTPUT_DIRECTORY, a tmpfs bounded by\n"
               "resources.outputMax and outputFiles) are copied to SPOOLDIR/output/ when it ends.\n"
               "\n"
               "The job's stdout and stderr become SPOOLDIR/log. Lines on stdout starting with\n"
               "'PlanQK:Job:Result: JSON', blocks between two 'PlanQK:Job:MultilineResult' lines, and\n"
               "'PlanQK:Job:InterimResult: JSON' set the result (the first valid one wins) and append\n"
               "interim results. The worker writes SPOOLDIR/result.json, interim.jsonl, log and, last,\n"
               "exit.json: {status, exitCode, signal, error{code,detail}, startedAt, endedAt, ...}.\n"
               "While running it holds a lock on SPOOLDIR/worker.pid, which names its pid.\n"
               "\n"
               "Progress is reported as JSON lines on stdout (or --events-fd): status (RUNNING), log\n"
               "(one per output line), interim, and done. A reader that goes away does not stop the\n"
               "job. SIGTERM or SIGINT cancels the job: it gets SIGTERM, then SIGKILL after the grace\n"
               "period, and the job ends CANCELLED. Must run as root.\n"
               "\n"
               "Options:\n"
               "  -h --help                  Show this help\n"
               "     --events-fd=FD          Write events to FD instead of stdout\n"
               "     --events-max=BYTES      Write at most this much of events, then only done\n"
               "                             (default: no limit)\n"
               "     --events-timeout=SECONDS\n"
               "                             Give up on an events reader that accepts nothing for\n"
               "                             this long (default: 30)\n"
               "     --pid-file=PATH         Lock file naming the worker's pid\n"
               "                             (default: SPOOLDIR/worker.pid)\n"
               "     --runtime-dir=DIR       Where shared image mounts live\n"
               "                             (default: " DEFAULT_RUNTIME_DIR ")\n"
               "     --bwrap=PATH            bubblewrap binary (default: " DEFAULT_BWRAP ")\n"
               "     --init=PATH             The sandbox init, " INIT_NAME " (default: next to\n"
               "                             this binary, else " LIBEXECDIR "/" INIT_NAME ")\n"
               "     --result-max=BYTES      Largest accepted result (default: 16M)\n"
               "     --interim-max=BYTES     Largest accepted interim result (default: 1M)\n"
               "     --interim-count-max=N   Interim results kept per job (default: 10000)\n"
               "     --log-max=BYTES         Log size kept, the end of it (default: 50M)\n"
               "     --log-tail-lines=N      Log lines quoted in error details (default: 20)\n"
               "     --kill-grace=SECONDS    Between SIGTERM and SIGKILL on timeout or cancel\n"
               "                             (default: 10)\n"
               "     --default-pids=N        pids limit when job.json sets none; 0: none\n"
               "                             (default: 4096)\n"
               "     --no-cgroups            Use rlimits only, even where cgroups are available\n"
               "     --program-linger=SECONDS\n"
               "                             Keep a program's squashfs mounted this long after its\n"
               "                             last job, for the next one (default: 0)\n"
               "     --image-linger=SECONDS  The same for the job's image (default: 0)\n"
               "     --log-level=LEVEL       Worker diagnostics on stderr (default: info)\n"
               "\n"
               "BYTES take a K, M or G suffix (powers of 1024).\n"
               "\n"
               "Exit status: 0 when exit.json was written for a job that could be run (whatever its\n"
               "outcome), 2 when job.json was invalid (exit.json says INVALID_JOB), 1 when the spool\n"
               "could not be used (bad arguments, not root, already finished, locked by another\n"
               "worker, not writable).\n");
}

static int parse_uint(const char *s, uint64_t max, uint64_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno || end == s || *end || s[0] == '-' || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_seconds(const char *s, double max, double *ret) {
        char *end;
        double d;

        errno = 0;
        d = strtod(s, &end);
        if (errno || end == s || *end || !(d >= 0 && d <= max))
                return -EINVAL;
        *ret = d;
        return 0;
}

static char *default_init(void) {
        char exe[PATH_MAX];
        ssize_t n;
        char *p = NULL;

        /* Running from the build tree (tests): the init is built next to us. */
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
                exe[n] = 0;
                if (asprintf(&p, "%s/" INIT_NAME, dirname(exe)) >= 0 && access(p, X_OK) >= 0)
                        return p;
                free(p);
        }
        return strdup(LIBEXECDIR "/" INIT_NAME);
}

static int parse_argv(int argc, char *argv[], RunArgs *a) {
        enum {
                ARG_EVENTS_FD = 0x100, ARG_EVENTS_TIMEOUT, ARG_EVENTS_MAX, ARG_PID_FILE, ARG_RUNTIME_DIR, ARG_BWRAP, ARG_INIT,
                ARG_RESULT_MAX, ARG_INTERIM_MAX, ARG_INTERIM_COUNT_MAX, ARG_LOG_MAX,
                ARG_LOG_TAIL_LINES, ARG_KILL_GRACE, ARG_DEFAULT_PIDS, ARG_NO_CGROUPS, ARG_LOG_LEVEL,
                ARG_PROGRAM_LINGER,
                ARG_IMAGE_LINGER,
        };
        static const struct option options[] = {
                { "help",              no_argument,       NULL, 'h' },
                { "events-fd",         required_argument, NULL, ARG_EVENTS_FD },
                { "events-timeout",    required_argument, NULL, ARG_EVENTS_TIMEOUT },
                { "events-max",        required_argument, NULL, ARG_EVENTS_MAX },
                { "pid-file",          required_argument, NULL, ARG_PID_FILE },
                { "runtime-dir",       required_argument, NULL, ARG_RUNTIME_DIR },
                { "bwrap",             required_argument, NULL, ARG_BWRAP },
                { "init",              required_argument, NULL, ARG_INIT },
                { "result-max",        required_argument, NULL, ARG_RESULT_MAX },
                { "interim-max",       required_argument, NULL, ARG_INTERIM_MAX },
                { "interim-count-max", required_argument, NULL, ARG_INTERIM_COUNT_MAX },
                { "log-max",           required_argument, NULL, ARG_LOG_MAX },
                { "log-tail-lines",    required_argument, NULL, ARG_LOG_TAIL_LINES },
                { "kill-grace",        required_argument, NULL, ARG_KILL_GRACE },
                { "default-pids",      required_argument, NULL, ARG_DEFAULT_PIDS },
                { "no-cgroups",        no_argument,       NULL, ARG_NO_CGROUPS },
                { "log-level",         required_argument, NULL, ARG_LOG_LEVEL },
                { "program-linger",    required_argument, NULL, ARG_PROGRAM_LINGER },
                { "image-linger",      required_argument, NULL, ARG_IMAGE_LINGER },
                {}
        };
        uint64_t v;
        double d = 0;
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                int r = 0;
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_EVENTS_FD:
                        r = parse_uint(optarg, INT_MAX, &v);
                        if (r >= 0 && fcntl((int) v, F_GETFD) < 0)
                                return log_error_errno(EBADF, "--events-fd=%s: not an open file descriptor.", optarg);
                        a->events_fd = (int) v;
                        break;
                case ARG_EVENTS_TIMEOUT:
                        r = parse_seconds(optarg, 3600, &d);
                        a->events_timeout_msec = (int) (d * 1000);
                        break;
                case ARG_EVENTS_MAX:
                        r = parse_size(optarg, &v);
                        if (r >= 0)
                                events_set_max_bytes(v);
                        break;
                case ARG_PID_FILE:
                        a->pid_file = optarg;
                        break;
                case ARG_RUNTIME_DIR:
                        a->runner.runtime_dir = optarg;
                        break;
                case ARG_BWRAP:
                        a->runner.bwrap = optarg;
                        break;
                case ARG_INIT:
                        r = free_and_strdup(&a->init, optarg);
                        break;
                case ARG_RESULT_MAX:
                        r = parse_size(optarg, &v);
                        a->runner.limits.result_max = (size_t) v;
                        if (r >= 0 && (v == 0 || v > SIZE_MAX / 2))
                                r = -EINVAL;
                        break;
                case ARG_INTERIM_MAX:
                        r = parse_size(optarg, &v);
                        a->runner.limits.interim_max = (size_t) v;
                        break;
                case ARG_INTERIM_COUNT_MAX:
                        r = parse_uint(optarg, SIZE_MAX, &v);
                        a->runner.limits.interim_count_max = (size_t) v;
                        break;
                case ARG_LOG_MAX:
                        r = parse_size(optarg, &a->runner.log_max);
                        if (r >= 0 && a->runner.log_max == 0)
                                r = -EINVAL;
                        break;
                case ARG_LOG_TAIL_LINES:
                        r = parse_uint(optarg, 10000, &v);
                        a->runner.tail_lines = (unsigned) v;
                        break;
                case ARG_KILL_GRACE:
                        r = parse_seconds(optarg, 86400, &d);
                        a->runner.kill_grace_usec = (uint64_t) (d * 1e6);
                        break;
                case ARG_DEFAULT_PIDS:
                        r = parse_uint(optarg, 4194304, &a->runner.default_pids);
                        break;
                case ARG_NO_CGROUPS:
                        a->runner.use_cgroups = false;
                        break;
                case ARG_PROGRAM_LINGER:
                        r = parse_uint(optarg, 86400, &v);
                        a->runner.program_linger_sec = (unsigned) v;
                        break;
                case ARG_IMAGE_LINGER:
                        r = parse_uint(optarg, 86400, &v);
                        a->runner.image_linger_sec = (unsigned) v;
                        break;
                case ARG_LOG_LEVEL:
                        r = log_parse_level(optarg);
                        if (r >= 0)
                                log_set_max_level(r);
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return log_error_errno(EINVAL, "Unhandled option.");
                }
                if (r < 0)
                        return log_error_errno(r, "Invalid value for %s: '%s'.", argv[optind - 1], optarg);
        }

        if (optind != argc - 1)
                return log_error_errno(EINVAL, "Expected exactly one argument, the spool directory. See 'gateway-worker run --help'.");
        a->spool = argv[optind];
        return 1;
}

static void format_time(int64_t usec, char *buf, size_t size) {
        time_t t = (time_t) (usec / 1000000);
        struct tm tm;

        gmtime_r(&t, &tm);
        snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (usec / 1000 % 1000));
}

static json_object *time_or_null(int64_t usec) {
        char buf[64];

        if (usec <= 0)
                return NULL;
        format_time(usec, buf, sizeof(buf));
        return json_object_new_string(buf);
}

static json_object *exit_json(const JobOutcome *o) {
        json_object *j = json_object_new_object(), *e = NULL;

        if (!j)
                return NULL;
        json_object_object_add(j, "status", json_object_new_string(o->status));
        json_object_object_add(j, "exitCode", o->exit_code >= 0 ? json_object_new_int(o->exit_code) : NULL);
        json_object_object_add(j, "signal", o->signal > 0 ? json_object_new_int(o->signal) : NULL);
        if (o->error_code) {
                e = json_object_new_object();
                json_object_object_add(e, "code", json_object_new_string(o->error_code));
                json_object_object_add(e, "detail", json_object_new_string(strempty(o->error_detail)));
        }
        json_object_object_add(j, "error", e);
        json_object_object_add(j, "startedAt", time_or_null(o->started_at));
        json_object_object_add(j, "endedAt", time_or_null(o->ended_at));
        json_object_object_add(j, "hasResult", json_object_new_boolean(o->result != NULL));
        json_object_object_add(j, "interimCount", json_object_new_int64((int64_t) o->interim_count));
        json_object_object_add(j, "logDroppedBytes", json_object_new_int64((int64_t) o->log_dropped));
        return j;
}

static int outcome_disk_full(JobOutcome *o, const char *detail) {
        o->status = "FAILED";
        free(o->error_code);
        free(o->error_detail);
        o->error_code = strdup("DISK_FULL");
        o->error_detail = strdup(detail);
        return o->error_code && o->error_detail ? 0 : -ENOMEM;
}

/* The error detail quotes the log's last lines: cut it (at a character boundary) until exit.json
 * fits into the space reserved for it. */
static void shorten_detail(JobOutcome *o) {
        size_t n;

        if (!o->error_detail)
                return;
        n = strlen(o->error_detail) / 2;
        while (n > 0 && ((unsigned char) o->error_detail[n] & 0xc0) == 0x80)
                n--;
        o->error_detail[n] = 0;
}

static int write_exit_json(int spool_fd, int reserve_fd, JobOutcome *o, json_object **ret) {
        json_object *j = NULL;
        const char *s;
        int r;

        for (;;) {
                json_object_put(j);
                j = exit_json(o);
                if (!j)
                        return log_oom();
                s = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
                if (reserve_fd < 0 || strlen(s) <= SPOOL_RESERVE_SIZE || !o->error_detail || !*o->error_detail)
                        break;
                shorten_detail(o);
        }
        /* Into the reserved blocks: this works however full the file system is. */
        r = reserve_fd >= 0 ? reserve_file_commit(spool_fd, reserve_fd, SPOOL_RESERVE_NAME, SPOOL_EXIT, s, strlen(s))
                            : -EBADF;
        if (r < 0)
                r = spool_write_atomic(spool_fd, SPOOL_EXIT, s, strlen(s));
        if (r < 0) {
                json_object_put(j);
                return log_error_errno(r, "Cannot write exit.json: %m");
        }
        *ret = j;
        return 0;
}

/* result.json: flushed and in place before exit.json names the job finished. */
static int commit_result(int spool_fd, JobOutcome *o) {
        int r;

        r = o->result ? spool_write_atomic_deferred(spool_fd, SPOOL_RESULT, o->result, o->result_len)
                      : spool_write_atomic_deferred(spool_fd, SPOOL_RESULT, "null", 4);
        if (errno_is_disk_full(r)) {
                /* No result.json reads as "no result". A job that succeeded but whose result is
                 * lost did not succeed for its user. */
                log_error_errno(r, "Cannot write result.json: %m");
                if (o->result && o->status && streq(o->status, "SUCCEEDED") &&
                    outcome_disk_full(o, "The job succeeded, but the file system of the spool is full: its result could not be stored.") < 0)
                        return log_oom();
                o->result = mfree(o->result);
        } else if (r < 0)
                return log_error_errno(r, "Cannot write result.json: %m");
        return 0;
}

/* exit.json (the commit point), then the done event. */
static int commit_exit(int spool_fd, int reserve_fd, JobOutcome *o) {
        json_object *j = NULL;
        int r;

        r = write_exit_json(spool_fd, reserve_fd, o, &j);
        if (r < 0)
                return r;
        (void) events_emit(WORKER_EVENT_DONE, j);
        return 0;
}

static int commit(int spool_fd, int reserve_fd, JobOutcome *o) {
        int r;

        r = commit_result(spool_fd, o);
        return r < 0 ? r : commit_exit(spool_fd, reserve_fd, o);
}

typedef struct CommitFds {
        int spool_fd, reserve_fd;
} CommitFds;

static int runner_commit_result(JobOutcome *o, void *userdata) {
        CommitFds *c = userdata;

        return commit_result(c->spool_fd, o);
}

static int runner_commit_exit(JobOutcome *o, void *userdata) {
        CommitFds *c = userdata;

        return commit_exit(c->spool_fd, c->reserve_fd, o);
}

static const RunnerCommit runner_commit = {
        .result = runner_commit_result,
        .outcome = runner_commit_exit,
};

static int setup_signals(void) {
        sigset_t mask;
        int fd;

        /* The events reader may vanish (gatewayd restarting): that must not kill us. Neither may
         * the loss of a controlling terminal. */
        signal(SIGPIPE, SIG_IGN);
        signal(SIGHUP, SIG_IGN);

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        return fd < 0 ? -errno : fd;
}

static void setup_events(int fd) {
        struct stat st;

        events_set_fd(fd);
        /* Never let a stalled reader block the loop that enforces time limits: events.c waits a
         * bounded time on a full pipe. Only for pipes and sockets: a terminal's O_NONBLOCK would
         * leak into the shell. */
        if (fstat(fd, &st) >= 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
                (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* A job that never ran still gets a log saying why, for whoever asks for its log. */
static void write_log_note(int spool_fd, const char *message) {
        _cleanup_job_log_ JobLog *l = NULL;

        if (job_log_open(spool_fd, 4096, 0, &l) < 0)
                return;
        (void) job_log_note(l, "error", message);
        (void) job_log_finish(l);
}

/* Without its reserve (or its pid in worker.pid) the job could fill the disk and then not record
 * how it ended: it is not started at all. */
static int run_disk_full(int spool_fd, int reserve_fd, const char *spool_path) {
        JobOutcome o = { .exit_code = -1 };
        int r;

        log_error("No space left in %s: not starting the job.", spool_path);
        r = outcome_disk_full(&o, "The file system of the spool is full: the job could not be started.");
        o.ended_at = now_realtime_usec();
        if (r >= 0)
                r = commit(spool_fd, reserve_fd, &o);
        job_outcome_done(&o);
        return r < 0 ? r : 0;
}

static int run_job(RunArgs *a, int spool_fd, int reserve_fd, const char *spool_path, int signal_fd) {
        _cleanup_job_spec_ JobSpec *spec = NULL;
        _cleanup_free_ char *error = NULL;
        JobOutcome o = { .exit_code = -1 };
        int r;

        r = job_spec_load(spool_fd, &spec, &error);
        if (r < 0) {
                if (r != -EINVAL)
                        return log_error_errno(r, "Cannot load job.json: %m");
                log_error("%s", error);
                write_log_note(spool_fd, error);
                o.status = "FAILED";
                o.error_code = strdup("INVALID_JOB");
                o.error_detail = TAKE_PTR(error);
                o.ended_at = now_realtime_usec();
                r = commit(spool_fd, reserve_fd, &o);
                job_outcome_done(&o);
                return r < 0 ? r : 2;
        }

        log_debug("Running job %s from %s as %u:%u.", strna(spec->id), spec->image_path,
                  (unsigned) spec->uid, (unsigned) spec->gid);
        r = runner_run(spec, spool_fd, spool_path, signal_fd, &a->runner, &o, &runner_commit,
                       &(CommitFds) { .spool_fd = spool_fd, .reserve_fd = reserve_fd });
        if (r >= 0)
                log_debug("Job ended %s.", o.status);
        job_outcome_done(&o);
        return r < 0 ? r : 0;
}

static int check_tools(const RunArgs *a) {
        if (geteuid() != 0)
                return log_error_errno(EPERM, "gateway-worker run must run as root (it mounts images and sets up sandboxes).");
        if (access(a->runner.bwrap, X_OK) < 0)
                return log_error_errno(errno, "Cannot execute bubblewrap at %s: %m", a->runner.bwrap);
        if (a->runner.init[0] != '/' || access(a->runner.init, R_OK) < 0)
                return log_error_errno(errno ?: EINVAL, "Cannot use the sandbox init at %s: %m", a->runner.init);
        return 0;
}

static int open_spool(const char *spool, char **ret_path, int *ret_fd) {
        _cleanup_free_ char *path = realpath(spool, NULL);
        int fd;

        if (!path)
                return log_error_errno(errno, "Cannot resolve spool directory %s: %m", spool);
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(errno, "Cannot open spool directory %s: %m", path);
        if (faccessat(fd, SPOOL_EXIT, F_OK, AT_SYMLINK_NOFOLLOW) >= 0) {
                close(fd);
                return log_error_errno(EEXIST, "Spool directory %s already has exit.json: the job has finished.", path);
        }
        *ret_path = TAKE_PTR(path);
        *ret_fd = fd;
        return 0;
}

int verb_run(int argc, char *argv[]) {
        RunArgs a = {
                .events_fd = STDOUT_FILENO,
                .events_timeout_msec = 30000,
                .pid_file = SPOOL_WORKER_PID,
                .runner = {
                        .bwrap = DEFAULT_BWRAP,
                        .runtime_dir = DEFAULT_RUNTIME_DIR,
                        .limits = {
                                .result_max = 16 * 1024 * 1024,
                                .interim_max = 1024 * 1024,
                                .interim_count_max = 10000,
                        },
                        .log_max = 50 * 1024 * 1024,
                        .tail_lines = 20,
                        .kill_grace_usec = 10 * 1000000ULL,
                        .default_pids = 4096,
                        .use_cgroups = true,
                },
        };
        _cleanup_free_ char *spool_path = NULL;
        _cleanup_close_ int spool_fd = -1, pid_fd = -1, signal_fd = -1, reserve_fd = -1;
        struct stat st;
        pid_t holder = 0;
        int r;

        r = parse_argv(argc, argv, &a);
        if (r <= 0)
                goto finish;
        if (!a.init && !(a.init = default_init())) {
                r = log_oom();
                goto finish;
        }
        a.runner.init = a.init;
        r = check_tools(&a);
        if (r < 0)
                goto finish;
        r = open_spool(a.spool, &spool_path, &spool_fd);
        if (r < 0)
                goto finish;

        pid_fd = spool_lock_pid_file(spool_fd, a.pid_file, &holder);
        if (pid_fd == -EBUSY) {
                r = log_error_errno(EBUSY, "Spool directory %s is in use by worker %d.", spool_path, (int) holder);
                goto finish;
        }
        if (pid_fd < 0) {
                r = log_error_errno(pid_fd, "Cannot create pid file %s: %m", a.pid_file);
                goto finish;
        }
        signal_fd = setup_signals();
        if (signal_fd < 0) {
                r = log_error_errno(signal_fd, "Cannot set up signal handling: %m");
                goto finish;
        }
        setup_events(a.events_fd);
        events_set_stall_timeout(a.events_timeout_msec);

        /* gatewayd made the reserve with the spool; a spool made by hand gets it now. */
        reserve_fd = reserve_file_at(spool_fd, SPOOL_RESERVE_NAME, SPOOL_RESERVE_SIZE);
        if (reserve_fd < 0 && !errno_is_disk_full(reserve_fd)) {
                r = log_error_errno(reserve_fd, "Cannot reserve space for exit.json in %s: %m", spool_path);
                goto finish;
        }
        if (reserve_fd < 0 || (fstat(pid_fd, &st) >= 0 && st.st_size == 0))
                r = run_disk_full(spool_fd, reserve_fd, spool_path);
        else
                r = run_job(&a, spool_fd, reserve_fd, spool_path, signal_fd);
        /* Only now: gatewayd treats "exit.json and no live worker.pid holder" as finished. */
        (void) unlinkat(spool_fd, a.pid_file, 0);

finish:
        free(a.init);
        return r < 0 ? 1 : r == 1 ? 0 : r;
}
