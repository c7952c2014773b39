/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The node's job spool, STATE/jobs/ID/: the layout of "gateway-worker run" (job.json, input/,
 * worker.pid, log, interim.jsonl, result.json, exit.json) plus what serve keeps beside it:
 *
 *   launch.json    written (O_EXCL) right before the job is launched: a job is launched at most once
 *   events.jsonl   the worker's events (its stdout), one per line; line N has sequence number N
 *   worker.log     the worker's diagnostics when it runs detached (under systemd: the journal)
 *
 * A job directory appears by an atomic rename(RENAME_NOREPLACE) of a complete staging directory,
 * so a second start of the same id — from this connection, another one or another serve — finds
 * it and never runs the job again. */
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <dirent.h>

#include "fs-util.h"
#include "job-spec.h"
#include "json-util.h"
#include "log.h"
#include "result-files.h"
#include "serve-internal.h"
#include "spool.h"
#include "spool-layout.h"
#include "time-util.h"

#define INPUT_MAX (16 * 1024 * 1024)
#define SPEC_MAX (1024 * 1024)
#define READ_CHUNK_MAX (1024 * 1024)
#define RESULT_MAX (17 * 1024 * 1024)
#define INTERIM_INLINE_MAX (4 * 1024 * 1024)
#define LOG_TAIL_MAX (64 * 1024)
#define EVENT_LINE_MAX (8 * 1024 * 1024)
#define LIST_MAX 100000
#define SERVE_EVENTS_MAX "64M"
#define OUTPUT_INLINE_MAX (16 * 1024 * 1024)

typedef enum JobState {
        JOB_STARTING,   /* launched, no worker seen yet */
        JOB_RUNNING,    /* a worker holds worker.pid */
        JOB_FINISHED,   /* exit.json, and no worker any more */
} JobState;

static const char *job_state_to_string(JobState st) {
        return st == JOB_STARTING ? "starting" : st == JOB_RUNNING ? "running" : "finished";
}

/* Which process holds an flock on the file, from /proc/locks. Probing with flock() ourselves
 * would make a worker that is just starting fail its own LOCK_EX|LOCK_NB. */
static pid_t flock_holder(int dir_fd, const char *name) {
        _cleanup_fclose_ FILE *f = NULL;
        char line[256], want[64];
        struct stat st;

        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                return 0;
        snprintf(want, sizeof(want), "%02x:%02x:%" PRIu64, major(st.st_dev), minor(st.st_dev), (uint64_t) st.st_ino);
        f = fopen("/proc/locks", "re");
        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f)) {
                char type[16], dev[64];
                int pid;

                /* "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; waiters have "->" first. */
                if (sscanf(line, "%*d: %15s %*s %*s %d %63s", type, &pid, dev) != 3)
                        continue;
                if (streq(type, "FLOCK") && streq(dev, want) && pid > 0)
                        return (pid_t) pid;
        }
        return 0;
}

static bool file_exists_at(int dir_fd, const char *name) {
        return faccessat(dir_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) >= 0;
}

/* The worker never came or vanished without committing: commit a failure in its place, so the
 * job has an end that every later reader sees the same. */
static int mark_lost(int dir_fd, const char *why) {
        _cleanup_(json_object_putp) json_object *j = json_object_new_object(), *e = json_object_new_object();
        const char *text;
        int r;

        if (!j || !e)
                return -ENOMEM;
        json_object_object_add(e, "code", json_object_new_string("WORKER_LOST"));
        json_object_object_add(e, "detail", json_object_new_string(why));
        json_object_object_add(j, "status", json_object_new_string("FAILED"));
        json_object_object_add(j, "exitCode", NULL);
        json_object_object_add(j, "signal", NULL);
        json_object_object_add(j, "error", json_object_get(e));
        json_object_object_add(j, "startedAt", NULL);
        json_object_object_add(j, "endedAt", NULL);
        json_object_object_add(j, "hasResult", json_object_new_boolean(false));
        json_object_object_add(j, "interimCount", json_object_new_int(0));
        json_object_object_add(j, "logDroppedBytes", json_object_new_int(0));
        if (!file_exists_at(dir_fd, "result.json")) {
                r = spool_write_atomic_deferred(dir_fd, "result.json", "null", 4);
                if (r < 0)
                        return r;
        }
        text = json_text(j);
        return spool_write_atomic(dir_fd, "exit.json", text, strlen(text));
}

static int job_state(Serve *s, int dir_fd, JobState *ret, pid_t *ret_pid) {
        pid_t holder = flock_holder(dir_fd, "worker.pid");
        struct stat st;
        uint64_t since;

        if (ret_pid)
                *ret_pid = holder;
        if (holder > 0) {
                *ret = JOB_RUNNING;     /* with exit.json: finishing (the done event, unlocking) */
                return 0;
        }
        if (file_exists_at(dir_fd, "exit.json")) {
                *ret = JOB_FINISHED;
                return 0;
        }
        if (fstatat(dir_fd, "launch.json", &st, AT_SYMLINK_NOFOLLOW) < 0 &&
            fstatat(dir_fd, "job.json", &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        since = (uint64_t) st.st_mtim.tv_sec * USEC_PER_SEC + (uint64_t) st.st_mtim.tv_nsec / 1000;
        if (now_realtime_usec() < since + (uint64_t) (s->args->lost_grace_sec * 1e6)) {
                *ret = JOB_STARTING;
                return 0;
        }
        /* Last look: it may have finished between the two checks above. */
        if (flock_holder(dir_fd, "worker.pid") > 0) {
                *ret = JOB_RUNNING;
                return 0;
        }
        if (!file_exists_at(dir_fd, "exit.json")) {
                int r = mark_lost(dir_fd, file_exists_at(dir_fd, "worker.pid")
                                  ? "The worker ended without writing exit.json (killed, or the node restarted)."
                                  : "The worker never started (or died before it took the spool).");
                if (r < 0)
                        return r;
        }
        *ret = JOB_FINISHED;
        return 0;
}

static int open_job(Serve *s, const char *id) {
        return openat(s->jobs_fd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
}

/* The "job" field of a request, checked; answers the error itself (returns NULL then). */
static const char *request_job_id(Serve *s, json_object *req, int *ret_r) {
        const char *id = json_get_string(req, "job");

        *ret_r = 0;
        if (!serve_job_id_is_valid(id)) {
                *ret_r = serve_send_error(s, req, "BAD_REQUEST", "\"job\": expected a job id ([A-Za-z0-9][A-Za-z0-9_-]*, at most 128 characters).");
                return NULL;
        }
        return id;
}

/* The request's job, opened: its directory fd, or -1 when the request was answered with an
 * error (bad id, no such job), the answer's result then in *ret_r. */
static int request_job_open(Serve *s, json_object *req, const char **ret_id, int *ret_r) {
        const char *id;
        int fd;

        id = request_job_id(s, req, ret_r);
        if (!id)
                return -1;
        fd = open_job(s, id);
        if (fd < 0) {
                *ret_r = serve_send_error(s, req, "NOT_FOUND", "No job %s on this node.", id);
                return -1;
        }
        *ret_id = id;
        return fd;
}

static json_object *read_json_at(int dir_fd, const char *name, size_t max) {
        _cleanup_free_ char *text = NULL;
        size_t n;

        if (read_file_at(dir_fd, name, max, &text, &n) < 0)
                return NULL;
        return json_tokener_parse(text);
}

/* {"job", "state", and "exit" once finished}. */
static json_object *job_summary(Serve *s, const char *id, int dir_fd) {
        json_object *o = json_object_new_object();
        JobState st;
        int r;

        if (!o)
                return NULL;
        json_object_object_add(o, "job", json_object_new_string(id));
        r = job_state(s, dir_fd, &st, NULL);
        if (r < 0) {
                json_object_object_add(o, "state", json_object_new_string("unknown"));
                return o;
        }
        json_object_object_add(o, "state", json_object_new_string(job_state_to_string(st)));
        if (st == JOB_FINISHED)
                json_object_object_add(o, "exit", read_json_at(dir_fd, "exit.json", 65536));
        return o;
}

/* ---- start ---- */

/* A program job's layer is named by id too (spec.program.id): gatewayd sends it like an image,
 * into the image directory, and it becomes program.path here. */
static int resolve_program_layer(Serve *s, json_object *req, json_object *job) {
        _cleanup_free_ char *file = NULL, *path = NULL;
        json_object *prog = json_get_typed(job, "program", json_type_object);
        const char *layer;
        struct stat st;

        if (!prog || !json_object_object_get_ex(prog, "id", NULL))
                return 0;
        layer = json_get_string(prog, "id");
        if (!serve_image_id_is_valid(layer))
                return serve_send_error(s, req, "INVALID_JOB", "spec.program.id: expected 64 lowercase hex digits."), -EINVAL;
        if (json_object_object_get_ex(prog, "path", NULL))
                return serve_send_error(s, req, "INVALID_JOB", "spec.program: \"id\" or \"path\", not both."), -EINVAL;
        if (asprintf(&file, "%s.squashfs", layer) < 0 || asprintf(&path, "%s/%s", s->args->image_dir, file) < 0)
                return -ENOMEM;
        if (fstatat(s->image_fd, file, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                return serve_send_error(s, req, "PROGRAM_NOT_FOUND", "Program layer %s is not installed on this node.", layer), -ENOENT;
        json_object_object_add(prog, "path", json_object_new_string(path));
        json_object_object_del(prog, "id");
        return 0;
}

/* job.json as the worker reads it, from the request's spec: the image is named by id and must be
 * in the image directory; everything else is the worker's schema, checked by its own parser. */
static int build_job_json(Serve *s, json_object *req, const char *id, json_object **ret) {
        _cleanup_(json_object_putp) json_object *job = NULL, *image = NULL;
        _cleanup_job_spec_ JobSpec *spec = NULL;
        _cleanup_free_ char *error = NULL, *path = NULL, *file = NULL;
        json_object *in = json_get_typed(req, "spec", json_type_object), *in_image, *meta = NULL;
        const char *image_id;
        struct stat st;
        int r;

        if (!in)
                return serve_send_error(s, req, "BAD_REQUEST", "\"spec\": expected an object (job.json, with image.id)."), -EINVAL;
        if (strlen(json_text(in)) > SPEC_MAX)
                return serve_send_error(s, req, "TOO_LARGE", "\"spec\": larger than %d bytes.", SPEC_MAX), -EINVAL;
        in_image = json_get_typed(in, "image", json_type_object);
        if (!in_image)
                return serve_send_error(s, req, "INVALID_JOB", "spec.image: expected an object with \"id\"."), -EINVAL;
        json_object_object_foreach(in_image, k, v) {
                (void) v;
                if (!streq(k, "id") && !streq(k, "meta"))
                        return serve_send_error(s, req, "INVALID_JOB", "spec.image.%.64s: unknown key (only \"id\" and \"meta\").", k), -EINVAL;
        }
        image_id = json_get_string(in_image, "id");
        if (!serve_image_id_is_valid(image_id))
                return serve_send_error(s, req, "INVALID_JOB", "spec.image.id: expected 64 lowercase hex digits."), -EINVAL;
        json_object_object_get_ex(in_image, "meta", &meta);

        if (json_object_deep_copy(in, &job, NULL) < 0 || !(image = json_object_new_object()))
                return -ENOMEM;
        if (asprintf(&file, "%s.squashfs", image_id) < 0 ||
            asprintf(&path, "%s/%s", s->args->image_dir, file) < 0)
                return -ENOMEM;
        json_object_object_add(image, "path", json_object_new_string(path));
        if (meta)
                json_object_object_add(image, "meta", json_object_get(meta));
        json_object_object_add(job, "image", TAKE_PTR(image));
        json_object_object_add(job, "id", json_object_new_string(id));
        r = resolve_program_layer(s, req, job);
        if (r < 0)
                return r;

        r = job_spec_from_json(job, &spec, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return serve_send_error(s, req, "INVALID_JOB", "spec: %s", error ? error : "invalid"), -EINVAL;
        if (fstatat(s->image_fd, file, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                return serve_send_error(s, req, "IMAGE_NOT_FOUND", "Image %s is not installed on this node.", image_id), -ENOENT;
        *ret = TAKE_PTR(job);
        return 0;
}

static int check_input(Serve *s, json_object *req, json_object **ret) {
        json_object *input = NULL;

        *ret = NULL;
        if (!json_object_object_get_ex(req, "input", &input) || !input)
                return 0;
        if (!json_object_is_type(input, json_type_object))
                return serve_send_error(s, req, "BAD_REQUEST", "\"input\": expected an object."), -EINVAL;
        json_object_object_foreach(input, k, v) {
                if (!streq(k, "data.json") && !streq(k, "params.json") && !streq(k, "arguments.json"))
                        return serve_send_error(s, req, "BAD_REQUEST",
                                                "input.%.64s: unknown file (only data.json, params.json and arguments.json).", k), -EINVAL;
                if (!json_object_is_type(v, json_type_string))
                        return serve_send_error(s, req, "BAD_REQUEST", "input.%s: expected the file's text as a string.", k), -EINVAL;
                if (json_object_get_string_len(v) > INPUT_MAX)
                        return serve_send_error(s, req, "TOO_LARGE", "input.%s: larger than %d bytes.", k, INPUT_MAX), -EINVAL;
        }
        *ret = input;
        return 0;
}

static int write_staging(Serve *s, const char *tmp, json_object *job, json_object *input) {
        _cleanup_close_ int dir_fd = -1, input_fd = -1;
        const char *text = json_text(job);
        int r;

        r = rm_rf_at(s->jobs_fd, tmp);
        if (r < 0)
                return r;
        if (mkdirat(s->jobs_fd, tmp, 0700) < 0)
                return -errno;
        dir_fd = openat(s->jobs_fd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dir_fd < 0)
                return -errno;
        r = write_file_atomic_at_full(dir_fd, "job.json", text, strlen(text), 0600, WRITE_FILE_SYNC);
        if (r < 0)
                return r;
        if (mkdirat(dir_fd, "input", 0755) < 0)
                return -errno;
        input_fd = openat(dir_fd, "input", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (input_fd < 0)
                return -errno;
        if (input) {
                json_object_object_foreach(input, k, v) {
                        r = write_file_atomic_at_full(input_fd, k, json_object_get_string(v),
                                                      (size_t) json_object_get_string_len(v), 0600, WRITE_FILE_SYNC);
                        if (r < 0)
                                return r;
                }
        }
        r = openat(dir_fd, "events.jsonl", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (r < 0)
                return -errno;
        close(r);
        if (fsync(input_fd) < 0 || fsync(dir_fd) < 0)
                return -errno;
        return 0;
}

static bool startswith_run(const char *p) {
        return strneq(p, "/run/", 5) && p[5] && !strstr(p, "/../") && !strstr(p, "/./");
}

static char **worker_argv(Serve *s, const char *spool) {
        size_t n = 0, max = s->args->n_run_args + 6;
        char **argv = calloc(max, sizeof(char *));

        if (!argv)
                return NULL;
        argv[n++] = s->args->worker;
        if (s->args->worker_needs_verb)
                argv[n++] = (char *) "run";
        /* events.jsonl is kept on disk: bounded (a --run-option given later wins). */
        argv[n++] = (char *) "--events-max=" SERVE_EVENTS_MAX;
        argv[n++] = s->runtime_arg;
        for (size_t i = 0; i < s->args->n_run_args; i++)
                argv[n++] = s->args->run_args[i];
        argv[n++] = (char *) spool;
        argv[n] = NULL;
        return argv;
}

/* Without systemd: a grandchild in a session of its own, so that neither the connection's end
 * nor the end of this serve reaches it. Exec failures come back through a CLOEXEC pipe. */
/* An error message for the client; NULL if even that cannot be allocated (the caller then
 * answers with a generic one). */
_printf_(2, 3) static void set_error(char **ret_error, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        if (vasprintf(ret_error, format, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
}

static int launch_detached(Serve *s, int dir_fd, const char *spool, char **ret_error) {
        _cleanup_free_ char **argv = worker_argv(s, spool);
        int pipefd[2], err = 0, status, r;
        pid_t pid;
        ssize_t k;

        if (!argv)
                return -ENOMEM;
        if ((r = mkdir_p(s->args->runtime_dir, 0755)) < 0) {
                set_error(ret_error, "Cannot create %s: %s", s->args->runtime_dir, strerror(-r));
                return r;
        }
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                err = errno;
                close(pipefd[0]);
                close(pipefd[1]);
                return -err;
        }
        if (pid == 0) {
                sigset_t all;
                int null_fd, out_fd, err_fd;

                close(pipefd[0]);
                if (setsid() < 0)
                        _exit(1);
                pid = fork();
                if (pid != 0)
                        _exit(pid < 0 ? 1 : 0);

                sigemptyset(&all);
                (void) sigprocmask(SIG_SETMASK, &all, NULL);
                signal(SIGPIPE, SIG_DFL);
                null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                out_fd = openat(dir_fd, "events.jsonl", O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
                err_fd = openat(dir_fd, "worker.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (null_fd < 0 || out_fd < 0 || err_fd < 0 ||
                    dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
                        goto fail;
                /* Nothing of this connection may leak into the job's worker. */
                (void) syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
                if (chdir("/") < 0)
                        goto fail;
                umask(022);
                execv(argv[0], argv);
        fail:
                err = errno;
                (void) !write(pipefd[1], &err, sizeof(err));
                _exit(127);
        }
        close(pipefd[1]);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        do
                k = read(pipefd[0], &err, sizeof(err));
        while (k < 0 && errno == EINTR);
        close(pipefd[0]);
        if (k == (ssize_t) sizeof(err)) {
                set_error(ret_error, "Cannot execute %s: %s", argv[0], strerror(err));
                return -err;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                set_error(ret_error, "Cannot fork the worker.");
                return -ECHILD;
        }
        return 0;
}

/* Under systemd: a transient service gateway-job-ID, owned by the service manager (not by this
 * connection's unit), events appended to the spool by systemd itself. */
static int launch_systemd(Serve *s, const char *id, const char *spool, char **ret_error) {
        _cleanup_free_ char **wargv = worker_argv(s, spool);
        _cleanup_free_ char *unit = NULL, *desc = NULL, *out = NULL;
        char errbuf[2048];
        const char *argv[32 + 64];
        size_t n = 0, got = 0;
        int pipefd[2], status, r;
        pid_t pid;

        _cleanup_free_ char *runtime_rel = NULL;

        if (startswith_run(s->args->runtime_dir) &&
            asprintf(&runtime_rel, "RuntimeDirectory=%s", s->args->runtime_dir + 5) < 0)
                return -ENOMEM;
        if (!runtime_rel && (r = mkdir_p(s->args->runtime_dir, 0755)) < 0) {
                set_error(ret_error, "Cannot create %s: %s", s->args->runtime_dir, strerror(-r));
                return r;
        }
        if (!wargv || asprintf(&unit, "--unit=gateway-job-%s", id) < 0 ||
            asprintf(&desc, "--description=gatewayd job %s", id) < 0 ||
            asprintf(&out, "StandardOutput=append:%s/events.jsonl", spool) < 0)
                return -ENOMEM;
        argv[n++] = s->args->systemd_run;
        argv[n++] = unit;
        argv[n++] = desc;
        argv[n++] = "--collect";
        argv[n++] = "--quiet";
        argv[n++] = "--service-type=exec";
        /* SIGTERM to the worker only: it cancels the job and still commits exit.json. */
        argv[n++] = "--property=KillMode=mixed";
        argv[n++] = "--property=SendSIGHUP=no";
        /* The worker makes cgroups for its job below its own. */
        argv[n++] = "--property=Delegate=yes";
        argv[n++] = "--property=StandardInput=null";
        argv[n++] = "--property";
        argv[n++] = out;
        argv[n++] = "--property=StandardError=journal";
        /* Under ProtectSystem=strict this serve cannot create it: the job's unit does, and
         * keeps it (it holds the mounts other jobs share). */
        if (runtime_rel) {
                argv[n++] = "--property";
                argv[n++] = runtime_rel;
                argv[n++] = "--property=RuntimeDirectoryPreserve=yes";
        }
        argv[n++] = "--";
        for (char **w = wargv; *w && n < ELEMENTSOF(argv) - 1; w++)
                argv[n++] = *w;
        argv[n] = NULL;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                close(pipefd[0]);
                close(pipefd[1]);
                return -errno;
        }
        if (pid == 0) {
                int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(null_fd, 1) < 0 || dup2(pipefd[1], 2) < 0)
                        _exit(127);
                signal(SIGPIPE, SIG_DFL);
                execv(argv[0], (char **) argv);
                fprintf(stderr, "Cannot execute %s: %m\n", argv[0]);
                _exit(127);
        }
        close(pipefd[1]);
        for (;;) {
                ssize_t k = read(pipefd[0], errbuf + got, sizeof(errbuf) - 1 - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                got += (size_t) k;
                if (got == sizeof(errbuf) - 1)
                        break;
        }
        errbuf[got] = 0;
        close(pipefd[0]);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                errbuf[strcspn(errbuf, "\n")] = 0;
                set_error(ret_error, "systemd-run failed: %s", got ? errbuf : "no message");
                return -EIO;
        }
        return 0;
}

static int answer_existing(Serve *s, json_object *req, const char *id, int dir_fd) {
        json_object *o = job_summary(s, id, dir_fd);

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "created", json_object_new_boolean(false));
        return serve_send(s, "started", req, o);
}

int serve_job_start(Serve *s, json_object *req) {
        _cleanup_(json_object_putp) json_object *job = NULL;
        _cleanup_free_ char *tmp = NULL, *spool = NULL, *error = NULL;
        _cleanup_close_ int dir_fd = -1;
        json_object *input, *o;
        const char *id, *launch_text;
        JobState st;
        int r;

        id = request_job_id(s, req, &r);
        if (!id)
                return r;
        dir_fd = open_job(s, id);
        if (dir_fd >= 0)
                return answer_existing(s, req, id, dir_fd);

        r = build_job_json(s, req, id, &job);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return 0;
        r = check_input(s, req, &input);
        if (r < 0)
                return 0;

        if (asprintf(&tmp, ".new-%s-%d", id, (int) getpid()) < 0 ||
            asprintf(&spool, "%s/jobs/%s", s->state_path, id) < 0)
                return -ENOMEM;
        r = write_staging(s, tmp, job, input);
        if (r < 0) {
                (void) rm_rf_at(s->jobs_fd, tmp);
                return serve_send_error(s, req, "IO_ERROR", "Cannot write the job's spool: %s.", strerror(-r));
        }
        if (renameat2(s->jobs_fd, tmp, s->jobs_fd, id, RENAME_NOREPLACE) < 0) {
                r = -errno;
                (void) rm_rf_at(s->jobs_fd, tmp);
                if (r == -EEXIST && (dir_fd = open_job(s, id)) >= 0)
                        return answer_existing(s, req, id, dir_fd);     /* a concurrent start won */
                return serve_send_error(s, req, "IO_ERROR", "Cannot create the job's spool: %s.", strerror(-r));
        }
        (void) fsync(s->jobs_fd);
        dir_fd = open_job(s, id);
        if (dir_fd < 0)
                return serve_send_error(s, req, "IO_ERROR", "Cannot open the job's spool: %m.");

        /* The point of no return: from here the job is launched at most once. */
        launch_text = s->args->launch == LAUNCH_SYSTEMD ? "{\"mode\":\"systemd\"}" : "{\"mode\":\"detached\"}";
        r = openat(dir_fd, "launch.json", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (r < 0)
                return r == -1 && errno == EEXIST ? answer_existing(s, req, id, dir_fd)
                                                  : serve_send_error(s, req, "IO_ERROR", "Cannot write launch.json: %m.");
        if (loop_write(r, launch_text, strlen(launch_text)) < 0 || fsync(r) < 0) {
                close(r);
                return serve_send_error(s, req, "IO_ERROR", "Cannot write launch.json: %m.");
        }
        close(r);

        r = s->args->launch == LAUNCH_SYSTEMD ? launch_systemd(s, id, spool, &error)
                                              : launch_detached(s, dir_fd, spool, &error);
        if (r < 0) {
                /* It never ran: take the spool back so that a later start can try again. */
                log_error("Cannot launch job %s: %s", id, strna(error));
                (void) rm_rf_at(s->jobs_fd, id);
                return serve_send_error(s, req, "LAUNCH_FAILED", "Cannot launch the job: %s", error ? error : strerror(-r));
        }

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "job", json_object_new_string(id));
        if (job_state(s, dir_fd, &st, NULL) < 0)
                st = JOB_STARTING;
        json_object_object_add(o, "state", json_object_new_string(job_state_to_string(st)));
        json_object_object_add(o, "created", json_object_new_boolean(true));
        if (s->args->launch == LAUNCH_SYSTEMD) {
                char unit[160];
                snprintf(unit, sizeof(unit), "gateway-job-%s.service", id);
                json_object_object_add(o, "unit", json_object_new_string(unit));
        }
        return serve_send(s, "started", req, o);
}

/* ---- cancel, remove, list, read ---- */

static int signal_worker(pid_t pid, int dir_fd) {
        _cleanup_close_ int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);

        if (pidfd < 0)
                return -errno;
        /* The pid still names the lock holder now that we hold its pidfd: no recycled pid. */
        if (flock_holder(dir_fd, "worker.pid") != pid)
                return -ESRCH;
        if (syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0) < 0)
                return -errno;
        return 0;
}

int serve_job_cancel(Serve *s, json_object *req) {
        _cleanup_close_ int dir_fd = -1;
        const char *id;
        json_object *o;
        bool signalled = false;
        JobState st;
        pid_t pid;
        int r;

        dir_fd = request_job_open(s, req, &id, &r);
        if (dir_fd < 0)
                return r;

        /* A job just launched has no worker to signal yet: give it a moment to appear. */
        for (unsigned i = 0; i < 300; i++) {
                r = job_state(s, dir_fd, &st, &pid);
                if (r < 0)
                        return serve_send_error(s, req, "IO_ERROR", "Cannot read the job's state: %s.", strerror(-r));
                if (st != JOB_STARTING)
                        break;
                (void) poll(NULL, 0, 10);
        }
        if (st == JOB_RUNNING) {
                r = signal_worker(pid, dir_fd);
                signalled = r >= 0;
                if (r < 0 && r != -ESRCH)
                        return serve_send_error(s, req, "IO_ERROR", "Cannot signal the worker: %s.", strerror(-r));
        }
        o = job_summary(s, id, dir_fd);
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "signalled", json_object_new_boolean(signalled));
        return serve_send(s, "cancel", req, o);
}

/* save-result {job, result: "<JSON text>"}: a result that a holder of the job's token saved
 * through gatewayd (docs/programs.md), written where the job's result endpoint writes it (the
 * spool's saved-result.json): the worker takes it when the job ends, the last save winning.
 * Only while the worker runs and has not written the outcome. */
int serve_job_save_result(Serve *s, json_object *req) {
        _cleanup_(json_object_putp) json_object *parsed = NULL, *spec = NULL;
        _cleanup_close_ int dir_fd = -1;
        const char *id, *text, *reason;
        json_object *o;
        size_t offset;
        JobState st;
        int r;

        dir_fd = request_job_open(s, req, &id, &r);
        if (dir_fd < 0)
                return r;
        text = json_get_string(req, "result");
        if (!text || strlen(text) > RESULT_MAX ||
            json_parse_untrusted(text, strlen(text), &parsed, &offset, &reason) < 0)
                return serve_send_error(s, req, "BAD_REQUEST", "\"result\": expected JSON text of at most %d bytes.", RESULT_MAX);
        /* Only a program job's worker takes a saved result (it runs the result endpoint). */
        spec = read_json_at(dir_fd, "job.json", SPEC_MAX);
        if (!json_get_typed(spec, "program", json_type_object))
                return serve_send_error(s, req, "NOT_A_PROGRAM", "Job %s is not a program's: it takes no saved result.", id);
        r = job_state(s, dir_fd, &st, NULL);
        if (r < 0)
                return serve_send_error(s, req, "IO_ERROR", "Cannot read the job's state: %s.", strerror(-r));
        if (st == JOB_STARTING)
                return serve_send_error(s, req, "NOT_RUNNING", "Job %s does not run yet.", id);
        if (st != JOB_RUNNING || file_exists_at(dir_fd, "exit.json"))
                return serve_send_error(s, req, "FINISHED", "Job %s has finished.", id);
        r = spool_write_atomic(dir_fd, SPOOL_SAVED_RESULT, text, strlen(text));
        if (r < 0)
                return serve_send_error(s, req, "IO_ERROR", "Cannot store the result: %s.", strerror(-r));
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "job", json_object_new_string(id));
        return serve_send(s, "result-saved", req, o);
}

int serve_job_remove(Serve *s, json_object *req) {
        _cleanup_close_ int dir_fd = -1;
        const char *id;
        json_object *o;
        JobState st;
        int r;

        dir_fd = request_job_open(s, req, &id, &r);
        if (dir_fd < 0)
                return r;
        r = job_state(s, dir_fd, &st, NULL);
        if (r < 0)
                return serve_send_error(s, req, "IO_ERROR", "Cannot read the job's state: %s.", strerror(-r));
        if (st != JOB_FINISHED)
                return serve_send_error(s, req, "CONFLICT", "Job %s has not finished (%s); cancel it first.", id, job_state_to_string(st));
        r = rm_rf_at(s->jobs_fd, id);
        if (r < 0)
                return serve_send_error(s, req, "IO_ERROR", "Cannot remove the job's spool: %s.", strerror(-r));
        (void) fsync(s->jobs_fd);
        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "job", json_object_new_string(id));
        return serve_send(s, "removed", req, o);
}

static json_object *collect_jobs(Serve *s, bool only_unfinished) {
        json_object *a = json_object_new_array();
        _cleanup_close_ int fd = dup(s->jobs_fd);
        DIR *d;
        struct dirent *de;
        size_t n = 0;

        if (!a || fd < 0)
                return a;
        d = fdopendir(TAKE_FD(fd));
        if (!d)
                return a;
        rewinddir(d);
        while ((de = readdir(d)) && n < LIST_MAX) {
                _cleanup_close_ int dir_fd = -1;
                json_object *o;
                JobState st;

                if (!serve_job_id_is_valid(de->d_name))
                        continue;
                dir_fd = open_job(s, de->d_name);
                if (dir_fd < 0)
                        continue;
                if (only_unfinished) {
                        if (job_state(s, dir_fd, &st, NULL) < 0 || st == JOB_FINISHED)
                                continue;
                        json_object_array_add(a, json_object_new_string(de->d_name));
                } else if ((o = job_summary(s, de->d_name, dir_fd)))
                        json_object_array_add(a, o);
                n++;
        }
        closedir(d);
        return a;
}

/* Staging directories of a start whose serve died before the rename (.new-<id>-<pid>): the job
 * never existed, the directory is garbage. One of a live serve is left alone. */
void serve_jobs_cleanup(Serve *s) {
        _cleanup_close_ int fd = dup(s->jobs_fd);
        struct dirent *de;
        DIR *d;

        if (fd < 0 || !(d = fdopendir(TAKE_FD(fd))))
                return;
        rewinddir(d);
        while ((de = readdir(d))) {
                const char *dash = strrchr(de->d_name, '-');
                char *end;
                long pid;

                if (!strneq(de->d_name, ".new-", 5) || !dash)
                        continue;
                errno = 0;
                pid = strtol(dash + 1, &end, 10);
                if (errno || *end || pid <= 0 || (kill((pid_t) pid, 0) < 0 && errno == ESRCH))
                        (void) rm_rf_at(s->jobs_fd, de->d_name);
        }
        closedir(d);
}

json_object *serve_running_jobs(Serve *s) {
        return collect_jobs(s, true);
}

int serve_job_list(Serve *s, json_object *req) {
        json_object *o = json_object_new_object();

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "jobs", collect_jobs(s, false));
        return serve_send(s, "jobs", req, o);
}

int serve_job_read(Serve *s, json_object *req) {
        static const char * const files[] = { "log", "log.old", "interim.jsonl", "result.json", "exit.json", "events.jsonl", NULL };
        _cleanup_close_ int dir_fd = -1, fd = -1;
        _cleanup_free_ char *buf = NULL, *b64 = NULL;
        json_object *v, *o;
        const char *id, *file = json_get_string(req, "file");
        int64_t offset = 0, length = READ_CHUNK_MAX;
        struct stat st;
        ssize_t n;
        bool known = false;
        int r;

        id = request_job_id(s, req, &r);
        if (!id)
                return r;
        for (size_t i = 0; file && files[i]; i++)
                known = known || streq(file, files[i]);
        if (!known)
                return serve_send_error(s, req, "BAD_REQUEST", "\"file\": one of log, log.old, interim.jsonl, result.json, exit.json, events.jsonl.");
        if (json_object_object_get_ex(req, "offset", &v)) {
                if (!json_object_is_type(v, json_type_int) || (offset = json_object_get_int64(v)) < 0)
                        return serve_send_error(s, req, "BAD_REQUEST", "\"offset\": expected a non-negative integer.");
        }
        if (json_object_object_get_ex(req, "length", &v)) {
                if (!json_object_is_type(v, json_type_int) || (length = json_object_get_int64(v)) <= 0 || length > READ_CHUNK_MAX)
                        return serve_send_error(s, req, "BAD_REQUEST", "\"length\": expected an integer from 1 to %d.", READ_CHUNK_MAX);
        }
        dir_fd = open_job(s, id);
        if (dir_fd < 0)
                return serve_send_error(s, req, "NOT_FOUND", "No job %s on this node.", id);
        fd = openat(dir_fd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return serve_send_error(s, req, "NOT_FOUND", "Job %s has no %s.", id, file);
        buf = malloc((size_t) length);
        if (!buf)
                return -ENOMEM;
        do
                n = pread(fd, buf, (size_t) length, offset);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return serve_send_error(s, req, "IO_ERROR", "Cannot read %s: %m.", file);
        b64 = base64_encode(buf, (size_t) n);
        o = json_object_new_object();
        if (!b64 || !o)
                return -ENOMEM;
        json_object_object_add(o, "job", json_object_new_string(id));
        json_object_object_add(o, "file", json_object_new_string(file));
        json_object_object_add(o, "offset", json_object_new_int64(offset));
        json_object_object_add(o, "size", json_object_new_int64(st.st_size));
        json_object_object_add(o, "data", json_object_new_string(b64));
        json_object_object_add(o, "eof", json_object_new_boolean(offset + n >= st.st_size));
        return serve_send(s, "data", req, o);
}

/* ---- attach: following a job's events ---- */

struct Attach {
        Attach *next;
        char *job;
        json_object *req;
        int dir_fd;
        int events_fd;
        int wd;
        uint64_t from;          /* events up to this sequence number are not sent */
        uint64_t seq;           /* sequence number of the last complete line read */
        uint64_t offset;        /* in events.jsonl */
        char *partial;          /* a line not complete yet */
        size_t partial_len;
        bool skipping;          /* inside an overlong line */
        bool check;             /* something changed: look at the job's state */
        usec_t last_check;
        bool finished;
};

static Attach *attach_free(Serve *s, Attach *a) {
        if (!a)
                return NULL;
        if (a->wd >= 0)
                (void) inotify_rm_watch(s->inotify_fd, a->wd);
        safe_close(a->dir_fd);
        safe_close(a->events_fd);
        json_object_put(a->req);
        free(a->partial);
        free(a->job);
        free(a);
        return NULL;
}

void serve_attaches_free(Serve *s) {
        while (s->attaches) {
                Attach *a = s->attaches;
                s->attaches = a->next;
                attach_free(s, a);
        }
        s->n_attaches = 0;
}

bool serve_attaches_active(const Serve *s) {
        return s->attaches != NULL;
}

void serve_attaches_on_inotify(Serve *s, int wd) {
        for (Attach *a = s->attaches; a; a = a->next)
                if (a->wd == wd)
                        a->check = true;
}

static int send_event_line(Serve *s, Attach *a, const char *line, size_t len) {
        _cleanup_(json_object_putp) json_object *ev = NULL;
        const char *reason = NULL;
        char event[32];
        const char *name;
        size_t off = 0;

        a->seq++;
        if (a->seq <= a->from)
                return 0;
        if (json_parse_untrusted(line, len, &ev, &off, &reason) < 0 || !json_object_is_type(ev, json_type_object) ||
            !(name = json_get_string(ev, "event")) || strlen(name) >= sizeof(event)) {
                /* Keep the numbering: the line becomes a note. */
                json_object_put(ev);
                ev = json_object_new_object();
                if (!ev)
                        return -ENOMEM;
                json_object_object_add(ev, "level", json_object_new_string("warning"));
                json_object_object_add(ev, "message", json_object_new_string("[gateway-worker serve] unreadable event line in events.jsonl"));
                name = "log";
        }
        snprintf(event, sizeof(event), "%s", name);
        json_object_object_del(ev, "event");
        json_object_object_del(ev, "req");
        json_object_object_add(ev, "job", json_object_new_string(a->job));
        json_object_object_add(ev, "seq", json_object_new_uint64(a->seq));
        return serve_send(s, event, a->req, TAKE_PTR(ev));
}

static int partial_append(Attach *a, const char *p, size_t n) {
        char *b;

        if (a->skipping)
                return 0;
        if (a->partial_len + n > EVENT_LINE_MAX) {
                a->skipping = true;
                return 0;
        }
        b = realloc(a->partial, a->partial_len + n + 1);
        if (!b)
                return -ENOMEM;
        memcpy(b + a->partial_len, p, n);
        a->partial = b;
        a->partial_len += n;
        a->partial[a->partial_len] = 0;
        return 0;
}

/* Reads events.jsonl from where it stopped; returns 1 at its end, 0 when output is full. */
static int attach_read(Serve *s, Attach *a) {
        char buf[65536];

        if (a->events_fd < 0) {
                a->events_fd = openat(a->dir_fd, "events.jsonl", O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
                if (a->events_fd < 0)
                        return errno == ENOENT ? 1 : -errno;
        }
        while (!serve_output_full(s)) {
                ssize_t n = pread(a->events_fd, buf, sizeof(buf), (off_t) a->offset);
                size_t start = 0;
                int r;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return 1;
                a->offset += (uint64_t) n;
                for (;;) {
                        char *nl = memchr(buf + start, '\n', (size_t) n - start);
                        size_t k;

                        if (!nl) {
                                r = partial_append(a, buf + start, (size_t) n - start);
                                if (r < 0)
                                        return r;
                                break;
                        }
                        k = (size_t) (nl - (buf + start));
                        r = partial_append(a, buf + start, k);
                        if (r < 0)
                                return r;
                        r = send_event_line(s, a, a->skipping ? "" : (a->partial ?: ""), a->skipping ? 0 : a->partial_len);
                        if (r < 0)
                                return r;
                        a->partial_len = 0;
                        a->skipping = false;
                        start += k + 1;
                }
        }
        return 0;
}

/* The job's result files (the worker's output/), inline as {name: base64}, at most
 * OUTPUT_INLINE_MAX bytes of them (the worker kept them within the job's own limits); files
 * beyond it are named in outputDropped. */
static void add_output(json_object *o, int dir_fd) {
        _cleanup_close_ int fd = openat(dir_fd, "output", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        json_object *files, *dropped;
        size_t left = OUTPUT_INLINE_MAX;
        struct dirent *de;
        DIR *d;

        if (fd < 0 || !(d = fdopendir(fd)))
                return;
        TAKE_FD(fd);
        files = json_object_new_object();
        dropped = json_object_new_array();
        while (files && dropped && (de = readdir(d))) {
                _cleanup_free_ char *buf = NULL, *b64 = NULL;
                size_t n = 0;

                if (!result_file_name_ok(de->d_name))
                        continue;
                if (read_file_at(dirfd(d), de->d_name, left, &buf, &n) < 0 || !(b64 = base64_encode(buf, n))) {
                        json_object_array_add(dropped, json_object_new_string(de->d_name));
                        continue;
                }
                left -= n;
                json_object_object_add(files, de->d_name, json_object_new_string(b64));
        }
        closedir(d);
        json_object_object_add(o, "output", files);
        json_object_object_add(o, "outputDropped", dropped);
}

static int send_finished(Serve *s, Attach *a) {
        _cleanup_free_ char *interim = NULL, *tail = NULL, *b64 = NULL;
        json_object *o = json_object_new_object(), *arr;
        _cleanup_close_ int log_fd = -1;
        size_t n = 0;
        struct stat st;

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "job", json_object_new_string(a->job));
        json_object_object_add(o, "seq", json_object_new_uint64(a->seq + 1));
        json_object_object_add(o, "exit", read_json_at(a->dir_fd, "exit.json", 65536));
        json_object_object_add(o, "result", read_json_at(a->dir_fd, "result.json", RESULT_MAX));
        add_output(o, a->dir_fd);

        if (fstatat(a->dir_fd, "interim.jsonl", &st, AT_SYMLINK_NOFOLLOW) >= 0 && S_ISREG(st.st_mode)) {
                json_object_object_add(o, "interimSize", json_object_new_int64(st.st_size));
                if (st.st_size <= INTERIM_INLINE_MAX && read_file_at(a->dir_fd, "interim.jsonl", INTERIM_INLINE_MAX, &interim, &n) >= 0 &&
                    (arr = json_object_new_array())) {
                        for (char *line = interim, *nl; line < interim + n; line = nl + 1) {
                                nl = strchrnul(line, '\n');
                                *nl = 0;
                                if (*line)
                                        json_object_array_add(arr, json_tokener_parse(line));
                        }
                        json_object_object_add(o, "interim", arr);
                }
        } else
                json_object_object_add(o, "interimSize", json_object_new_int(0));

        log_fd = openat(a->dir_fd, "log", O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (log_fd >= 0 && fstat(log_fd, &st) >= 0 && S_ISREG(st.st_mode)) {
                size_t want = (size_t) MIN((off_t) LOG_TAIL_MAX, st.st_size);
                ssize_t k;

                tail = malloc(want + 1);
                if (!tail) {
                        json_object_put(o);
                        return -ENOMEM;
                }
                k = pread(log_fd, tail, want, st.st_size - (off_t) want);
                b64 = base64_encode(tail, k > 0 ? (size_t) k : 0);
                json_object_object_add(o, "logSize", json_object_new_int64(st.st_size));
                json_object_object_add(o, "logTail", b64 ? json_object_new_string(b64) : NULL);
        } else {
                json_object_object_add(o, "logSize", json_object_new_int(0));
                json_object_object_add(o, "logTail", json_object_new_string(""));
        }
        return serve_send(s, "finished", a->req, o);
}

static int attach_pump(Serve *s, Attach *a) {
        usec_t now;
        JobState st;
        int r;

        r = attach_read(s, a);
        if (r <= 0)
                return r;
        /* At the end of what was written so far: has the job ended? */
        now = now_realtime_usec();
        if (!a->check && now < a->last_check + USEC_PER_SEC)
                return 0;
        a->check = false;
        a->last_check = now;
        r = job_state(s, a->dir_fd, &st, NULL);
        if (r < 0 || st != JOB_FINISHED)
                return 0;
        /* Lines written between our last read and the worker's end. */
        do
                r = attach_read(s, a);
        while (r == 0 && !serve_output_full(s));
        if (r <= 0)
                return r;
        a->finished = true;
        return send_finished(s, a);
}

int serve_attaches_pump(Serve *s) {
        for (Attach **p = &s->attaches; *p;) {
                Attach *a = *p;
                int r;

                if (serve_output_full(s))
                        return 0;
                r = attach_pump(s, a);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        (void) serve_send_error(s, a->req, "IO_ERROR", "Cannot follow job %s: %s.", a->job, strerror(-r));
                        a->finished = true;
                }
                if (a->finished) {
                        *p = a->next;
                        attach_free(s, a);
                        s->n_attaches--;
                } else
                        p = &a->next;
        }
        return 0;
}

int serve_job_attach(Serve *s, json_object *req) {
        _cleanup_free_ char *path = NULL;
        json_object *v, *o;
        const char *id;
        int64_t from = 0;
        Attach *a;
        JobState st;
        int r;

        id = request_job_id(s, req, &r);
        if (!id)
                return r;
        if (json_object_object_get_ex(req, "from", &v)) {
                if (!json_object_is_type(v, json_type_int) || (from = json_object_get_int64(v)) < 0)
                        return serve_send_error(s, req, "BAD_REQUEST", "\"from\": expected a non-negative integer (the last sequence number seen).");
        }
        /* One follower per job and connection: a new attach replaces the old one. */
        for (Attach **p = &s->attaches; *p; p = &(*p)->next)
                if (streq((*p)->job, id)) {
                        Attach *old = *p;
                        *p = old->next;
                        attach_free(s, old);
                        s->n_attaches--;
                        break;
                }
        if (s->n_attaches >= SERVE_MAX_ATTACHES)
                return serve_send_error(s, req, "TOO_MANY", "At most %d jobs may be followed on one connection.", SERVE_MAX_ATTACHES);

        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->events_fd = -1;
        a->wd = -1;
        a->from = (uint64_t) from;
        a->check = true;
        a->job = strdup(id);
        a->req = json_object_new_object();
        if (!a->job || !a->req) {
                attach_free(s, a);
                return -ENOMEM;
        }
        if (json_object_object_get_ex(req, "req", &v))
                json_object_object_add(a->req, "req", json_object_get(v));
        a->dir_fd = open_job(s, id);
        if (a->dir_fd < 0) {
                attach_free(s, a);
                return serve_send_error(s, req, "NOT_FOUND", "No job %s on this node.", id);
        }
        if (asprintf(&path, "%s/jobs/%s", s->state_path, id) < 0) {
                attach_free(s, a);
                return -ENOMEM;
        }
        a->wd = inotify_add_watch(s->inotify_fd, path, IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_ONLYDIR);
        r = job_state(s, a->dir_fd, &st, NULL);

        o = json_object_new_object();
        if (!o) {
                attach_free(s, a);
                return -ENOMEM;
        }
        json_object_object_add(o, "job", json_object_new_string(id));
        json_object_object_add(o, "from", json_object_new_int64(from));
        json_object_object_add(o, "state", json_object_new_string(r < 0 ? "unknown" : job_state_to_string(st)));
        r = serve_send(s, "attached", req, o);
        a->next = s->attaches;
        s->attaches = a;
        s->n_attaches++;
        return r;
}
