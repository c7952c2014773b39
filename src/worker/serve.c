/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* "gateway-worker serve": the node agent. One process per connection to the node socket (an
 * Accept=yes socket unit), root, speaking JSON lines on stdin/stdout (docs/worker-serve.md). It
 * keeps the node's own job spool and image directory, starts jobs detached from the connection
 * (a transient systemd unit each, or a process in a session of its own) and streams their
 * events with sequence numbers, so that gatewayd can lose the connection and resume.
 *
 * Everything arriving on stdin is untrusted: lines are bounded, every field is checked, every
 * error is answered as an "error" event and the next request is read. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "build-config.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"
#include "serve-internal.h"
#include "serve.h"
#include "size-util.h"

#define DEFAULT_STATE_DIR "/var/lib/gateway-worker"
#define DEFAULT_SYSTEMD_RUN "/usr/bin/systemd-run"
#define DEFAULT_MAX_REQUEST (48 * 1024 * 1024)
#define DEFAULT_RUNTIME_DIR "/run/gateway-worker/mounts"
#define REQ_TAG_MAX 128

static void help(void) {
        printf("Usage: gateway-worker serve [OPTIONS...]\n"
               "\n"
               "The node agent of gatewayd: one process per connection to the node socket, on\n"
               "stdin/stdout, as root. Requests and answers are JSON lines (docs/worker-serve.md):\n"
               "hello, start, attach, cancel, remove, list, read, image-install, image-remove,\n"
               "image-list. Jobs are kept in STATE/jobs/ID/ (the spool of 'gateway-worker run') and\n"
               "run detached from the connection: as transient units gateway-job-ID when the node\n"
               "runs systemd, otherwise in a session of their own.\n"
               "\n"
               "Options:\n"
               "  -h --help                Show this help\n"
               "     --state-dir=DIR       Job spool and state (default: " DEFAULT_STATE_DIR ")\n"
               "     --image-dir=DIR       Images: ID.squashfs, ID.meta (default: STATE/images)\n"
               "     --slots=N             Jobs this node takes at once (default: CPU count)\n"
               "     --max-request=BYTES   Longest request line (default: 48M)\n"
               "     --launch=MODE         auto, systemd or detached (default: auto = systemd when\n"
               "                           the node was booted with it)\n"
               "     --systemd-run=PATH    (default: " DEFAULT_SYSTEMD_RUN ")\n"
               "     --worker=PATH         Runs a job: gateway-worker-run, or gateway-worker\n"
               "                           (default: next to this binary)\n"
               "     --runtime-dir=DIR     Where jobs share image mounts (run --runtime-dir; default:\n"
               "                           " DEFAULT_RUNTIME_DIR ")\n"
               "     --run-option=OPTION   Passed on to 'run' (repeatable), e.g. --kill-grace=5\n"
               "     --lost-after=SECONDS  A started job whose worker never appeared or vanished\n"
               "                           without exit.json is failed after this (default: 10)\n"
               "     --log-level=LEVEL     Diagnostics on stderr (default: info)\n");
}

/* gateway-worker-run next to us when it is there (no pull libraries to load), else ourselves. */
static int default_worker(ServeArgs *a) {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        char *p = NULL;

        if (n <= 0)
                return -errno;
        exe[n] = 0;
        if (asprintf(&p, "%s/gateway-worker-run", dirname(strdupa(exe))) < 0)
                return -ENOMEM;
        if (access(p, X_OK) >= 0) {
                a->worker = p;
                a->worker_needs_verb = false;
                return 0;
        }
        free(p);
        a->worker = strdup(exe);
        a->worker_needs_verb = true;
        return a->worker ? 0 : -ENOMEM;
}

static int parse_argv(int argc, char *argv[], ServeArgs *a) {
        enum {
                ARG_STATE_DIR = 0x100, ARG_IMAGE_DIR, ARG_SLOTS, ARG_MAX_REQUEST, ARG_LAUNCH,
                ARG_SYSTEMD_RUN, ARG_WORKER, ARG_RUN_OPTION, ARG_LOST_AFTER, ARG_LOG_LEVEL, ARG_RUNTIME_DIR,
        };
        static const struct option options[] = {
                { "help",        no_argument,       NULL, 'h' },
                { "state-dir",   required_argument, NULL, ARG_STATE_DIR },
                { "image-dir",   required_argument, NULL, ARG_IMAGE_DIR },
                { "slots",       required_argument, NULL, ARG_SLOTS },
                { "max-request", required_argument, NULL, ARG_MAX_REQUEST },
                { "launch",      required_argument, NULL, ARG_LAUNCH },
                { "systemd-run", required_argument, NULL, ARG_SYSTEMD_RUN },
                { "worker",      required_argument, NULL, ARG_WORKER },
                { "run-option",  required_argument, NULL, ARG_RUN_OPTION },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "lost-after",  required_argument, NULL, ARG_LOST_AFTER },
                { "log-level",   required_argument, NULL, ARG_LOG_LEVEL },
                {}
        };
        char *end;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                r = 0;
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_STATE_DIR:
                        a->state_dir = optarg;
                        break;
                case ARG_IMAGE_DIR:
                        r = free_and_strdup(&a->image_dir, optarg);
                        break;
                case ARG_SLOTS: {
                        unsigned long v;
                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno || end == optarg || *end || v == 0 || v > 100000)
                                r = -EINVAL;
                        a->slots = (unsigned) v;
                        break;
                }
                case ARG_MAX_REQUEST: {
                        uint64_t v;

                        r = parse_size(optarg, &v);
                        if (r >= 0 && (v == 0 || v > (UINT64_C(1) << 30)))
                                r = -EINVAL;
                        a->max_request = (size_t) v;
                        break;
                }
                case ARG_LAUNCH:
                        if (streq(optarg, "auto"))
                                a->launch = LAUNCH_AUTO;
                        else if (streq(optarg, "systemd"))
                                a->launch = LAUNCH_SYSTEMD;
                        else if (streq(optarg, "detached"))
                                a->launch = LAUNCH_DETACHED;
                        else
                                r = -EINVAL;
                        break;
                case ARG_SYSTEMD_RUN:
                        a->systemd_run = optarg;
                        break;
                case ARG_WORKER:
                        r = free_and_strdup(&a->worker, optarg);
                        /* "gateway-worker" itself needs the verb; anything else is taken as a runner. */
                        a->worker_needs_verb = streq(basename(strdupa(optarg)), "gateway-worker");
                        break;
                case ARG_RUN_OPTION: {
                        char **l = realloc(a->run_args, (a->n_run_args + 2) * sizeof(char *));
                        if (!l)
                                return log_oom();
                        a->run_args = l;
                        if (!strneq(optarg, "--", 2))
                                r = -EINVAL;
                        else if (!(l[a->n_run_args] = strdup(optarg)))
                                return log_oom();
                        else
                                l[++a->n_run_args] = NULL;
                        break;
                }
                case ARG_RUNTIME_DIR:
                        if (optarg[0] != '/')
                                r = -EINVAL;
                        a->runtime_dir = optarg;
                        break;
                case ARG_LOST_AFTER:
                        errno = 0;
                        a->lost_grace_sec = strtod(optarg, &end);
                        if (errno || end == optarg || *end || !(a->lost_grace_sec >= 0 && a->lost_grace_sec <= 86400))
                                r = -EINVAL;
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
        if (optind != argc)
                return log_error_errno(EINVAL, "serve takes no arguments. See 'gateway-worker serve --help'.");
        if (a->state_dir[0] != '/' || (a->image_dir && a->image_dir[0] != '/'))
                return log_error_errno(EINVAL, "--state-dir= and --image-dir= must be absolute paths.");
        return 1;
}

/* ---- output ---- */

static int out_append(Serve *s, const char *p, size_t n) {
        if (s->out_broken)
                return -EPIPE;
        if (s->out_off > 0 && s->out_off == s->out_len)
                s->out_off = s->out_len = 0;
        if (s->out_len + n + 1 > s->out_size) {
                size_t size = MAX(s->out_size * 2, s->out_len + n + 1 + 65536);
                char *b;

                /* Compact before growing. */
                if (s->out_off > 0) {
                        memmove(s->out, s->out + s->out_off, s->out_len - s->out_off);
                        s->out_len -= s->out_off;
                        s->out_off = 0;
                }
                if (s->out_len + n + 1 > s->out_size) {
                        b = realloc(s->out, size);
                        if (!b)
                                return -ENOMEM;
                        s->out = b;
                        s->out_size = size;
                }
        }
        memcpy(s->out + s->out_len, p, n);
        s->out_len += n;
        s->out[s->out_len++] = '\n';
        return 0;
}

int serve_send(Serve *s, const char *event, json_object *req, json_object *fields) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        json_object *tag;
        const char *text;

        if (!o) {
                json_object_put(fields);
                return -ENOMEM;
        }
        json_object_object_add(o, "event", json_object_new_string(event));
        if (req && json_object_object_get_ex(req, "req", &tag))
                json_object_object_add(o, "req", json_object_get(tag));
        if (fields) {
                json_object_object_foreach(fields, k, v)
                        json_object_object_add(o, k, json_object_get(v));
                json_object_put(fields);
        }
        text = json_text(o);
        return out_append(s, text, strlen(text));
}

int serve_send_error(Serve *s, json_object *req, const char *code, const char *format, ...) {
        char buf[1024];
        va_list ap;
        json_object *o = json_object_new_object();
        const char *op = json_get_string(req, "op");

        if (!o)
                return -ENOMEM;
        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);
        if (op && strlen(op) <= 32)
                json_object_object_add(o, "op", json_object_new_string(op));
        json_object_object_add(o, "code", json_object_new_string(code));
        json_object_object_add(o, "message", json_object_new_string(buf));
        return serve_send(s, "error", req, o);
}

static int flush_output(Serve *s) {
        while (s->out_off < s->out_len) {
                ssize_t k = write(STDOUT_FILENO, s->out + s->out_off, s->out_len - s->out_off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        s->out_broken = true;
                        return -errno;
                }
                s->out_off += (size_t) k;
        }
        s->out_off = s->out_len = 0;
        return 0;
}

/* ---- helpers shared by the handlers ---- */

bool serve_job_id_is_valid(const char *id) {
        size_t n;

        /* A directory name and part of a unit name: gatewayd's ids (UUIDs) and alike. */
        if (!id)
                return false;
        n = strlen(id);
        if (n == 0 || n > 128 || !strchr("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", id[0]))
                return false;
        return strspn(id, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-") == n;
}

bool serve_image_id_is_valid(const char *id) {
        /* The hex part of the platform manifest's sha256 digest, as gatewayd names images. */
        return id && strlen(id) == 64 && strspn(id, "0123456789abcdef") == 64;
}

char *base64_encode(const void *data, size_t size) {
        static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const uint8_t *p = data;
        char *out = malloc((size + 2) / 3 * 4 + 1), *o = out;
        size_t i;

        if (!out)
                return NULL;
        for (i = 0; i + 2 < size; i += 3) {
                *o++ = tbl[p[i] >> 2];
                *o++ = tbl[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
                *o++ = tbl[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
                *o++ = tbl[p[i + 2] & 63];
        }
        if (i < size) {
                *o++ = tbl[p[i] >> 2];
                if (i + 1 < size) {
                        *o++ = tbl[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
                        *o++ = tbl[(p[i + 1] & 15) << 2];
                } else {
                        *o++ = tbl[(p[i] & 3) << 4];
                        *o++ = '=';
                }
                *o++ = '=';
        }
        *o = 0;
        return out;
}

int read_file_at(int dir_fd, const char *name, size_t max, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t n = 0;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADF;
        if ((uint64_t) st.st_size > max)
                return -EFBIG;
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        while (n < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + n, (size_t) st.st_size - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = n;
        return 0;
}

/* ---- requests ---- */

static int handle_hello(Serve *s, json_object *req) {
        json_object *o = json_object_new_object();
        struct statvfs sv;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "version", json_object_new_string(GATEWAYD_VERSION));
        json_object_object_add(o, "protocol", json_object_new_int(SERVE_PROTOCOL_VERSION));
        json_object_object_add(o, "cpus", json_object_new_int64(cpus > 0 ? cpus : 1));
        json_object_object_add(o, "slots", json_object_new_int64(s->args->slots ?: (cpus > 0 ? cpus : 1)));
        json_object_object_add(o, "imageDir", json_object_new_string(s->args->image_dir));
        if (fstatvfs(s->image_fd, &sv) >= 0)
                json_object_object_add(o, "freeDisk", json_object_new_int64((int64_t) ((uint64_t) sv.f_bavail * sv.f_frsize)));
        if (fstatvfs(s->state_fd, &sv) >= 0)
                json_object_object_add(o, "freeStateDisk", json_object_new_int64((int64_t) ((uint64_t) sv.f_bavail * sv.f_frsize)));
        json_object_object_add(o, "launch", json_object_new_string(s->args->launch == LAUNCH_SYSTEMD ? "systemd" : "detached"));
        json_object_object_add(o, "maxRequest", json_object_new_int64((int64_t) s->args->max_request));
        json_object_object_add(o, "running", serve_running_jobs(s));
        return serve_send(s, "hello", req, o);
}

static const struct {
        const char *op;
        int (*handler)(Serve *s, json_object *req);
} handlers[] = {
        { "hello",         handle_hello },
        { "start",         serve_job_start },
        { "attach",        serve_job_attach },
        { "cancel",        serve_job_cancel },
        { "remove",        serve_job_remove },
        { "list",          serve_job_list },
        { "read",          serve_job_read },
        { "save-result",   serve_job_save_result },
        { "image-install", serve_image_install },
        { "image-remove",  serve_image_remove },
        { "image-list",    serve_image_list },
};

static int handle_line(Serve *s, const char *line, size_t len) {
        _cleanup_(json_object_putp) json_object *req = NULL;
        const char *reason = NULL, *op;
        size_t offset = 0;
        json_object *tag;
        int r;

        if (len == 0 || line[strspn(line, " \t\r")] == 0)
                return 0;       /* blank lines are allowed (e.g. keepalives) */
        r = json_parse_untrusted(line, len, &req, &offset, &reason);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return serve_send_error(s, NULL, "BAD_REQUEST", "Malformed JSON at byte %zu: %s.", offset, reason);
        if (!json_object_is_type(req, json_type_object)) {
                json_object_put(TAKE_PTR(req));
                return serve_send_error(s, NULL, "BAD_REQUEST", "A request is a JSON object.");
        }
        /* An invalid tag is dropped, so that it is never echoed. */
        if (json_object_object_get_ex(req, "req", &tag) &&
            !(json_object_is_type(tag, json_type_int) ||
              (json_object_is_type(tag, json_type_string) && json_object_get_string_len(tag) <= REQ_TAG_MAX))) {
                json_object_object_del(req, "req");
                return serve_send_error(s, req, "BAD_REQUEST", "\"req\": expected an integer or a string of at most %d bytes.", REQ_TAG_MAX);
        }
        op = json_get_string(req, "op");
        if (!op)
                return serve_send_error(s, req, "BAD_REQUEST", "\"op\": missing or not a string.");
        for (size_t i = 0; i < ELEMENTSOF(handlers); i++)
                if (streq(op, handlers[i].op))
                        return handlers[i].handler(s, req);
        json_object_object_del(req, "op");      /* not echoed either: it may be anything */
        return serve_send_error(s, req, "UNKNOWN_OP", "Unknown op. Known: hello, start, attach, cancel, remove, list, read, save-result, image-install, image-remove, image-list.");
}

/* ---- the connection ---- */

typedef struct Input {
        char *buf;
        size_t len, size;
        bool skipping;          /* inside a line that was too long: dropped up to its newline */
        bool eof;
} Input;

static int input_read(Serve *s, Input *in) {
        ssize_t k;
        size_t start = 0;
        int r;

        if (in->size - in->len < 65536) {
                size_t size = MAX(in->size * 2, in->len + 65536);
                size = MIN(size, s->args->max_request + 65536 + 1);
                if (size > in->size) {
                        char *b = realloc(in->buf, size);
                        if (!b)
                                return -ENOMEM;
                        in->buf = b;
                        in->size = size;
                }
        }
        k = read(STDIN_FILENO, in->buf + in->len, in->size - in->len);
        if (k < 0) {
                if (errno == EINTR || errno == EAGAIN)
                        return 0;
                in->eof = true;
                return 0;
        }
        if (k == 0) {
                in->eof = true;
                if (in->len > 0 && !in->skipping)
                        /* A last request without its newline still counts. */
                        (void) handle_line(s, in->buf, in->len);
                in->len = 0;
                return 0;
        }
        in->len += (size_t) k;

        for (;;) {
                char *nl = memchr(in->buf + start, '\n', in->len - start);
                size_t n;

                if (!nl)
                        break;
                n = (size_t) (nl - (in->buf + start));
                *nl = 0;
                if (in->skipping)
                        in->skipping = false;
                else if (n > s->args->max_request) {
                        r = serve_send_error(s, NULL, "TOO_LARGE", "Request line longer than %zu bytes.", s->args->max_request);
                        if (r < 0)
                                return r;
                } else {
                        r = handle_line(s, in->buf + start, n);
                        if (r < 0)
                                return r;
                }
                start += n + 1;
        }
        memmove(in->buf, in->buf + start, in->len - start);
        in->len -= start;
        if (in->len > s->args->max_request) {
                /* Too long already: stop keeping it, answer now and drop the rest of the line. */
                if (!in->skipping) {
                        r = serve_send_error(s, NULL, "TOO_LARGE", "Request line longer than %zu bytes.", s->args->max_request);
                        if (r < 0)
                                return r;
                }
                in->skipping = true;
                in->len = 0;
        }
        return 0;
}

static int serve_open(Serve *s) {
        _cleanup_free_ char *path = NULL;

        if (mkdir_p(s->args->state_dir, 0755) < 0)
                return log_error_errno(errno, "Cannot create %s: %m", s->args->state_dir);
        path = realpath(s->args->state_dir, NULL);
        if (!path)
                return log_error_errno(errno, "Cannot resolve %s: %m", s->args->state_dir);
        s->state_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->state_fd < 0)
                return log_error_errno(errno, "Cannot open %s: %m", path);
        if (mkdirat(s->state_fd, "jobs", 0700) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Cannot create %s/jobs: %m", path);
        s->jobs_fd = openat(s->state_fd, "jobs", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (s->jobs_fd < 0)
                return log_error_errno(errno, "Cannot open %s/jobs: %m", path);
        if (!s->args->image_dir && asprintf(&s->args->image_dir, "%s/images", path) < 0)
                return log_oom();
        if (mkdir_p(s->args->image_dir, 0755) < 0)
                return log_error_errno(errno, "Cannot create %s: %m", s->args->image_dir);
        s->image_fd = open(s->args->image_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->image_fd < 0)
                return log_error_errno(errno, "Cannot open %s: %m", s->args->image_dir);
        s->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (s->inotify_fd < 0)
                return log_error_errno(errno, "inotify_init1: %m");
        s->state_path = TAKE_PTR(path);
        serve_jobs_cleanup(s);
        return 0;
}

static void drain_inotify(Serve *s) {
        char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));

        for (;;) {
                ssize_t k = read(s->inotify_fd, buf, sizeof(buf));
                if (k <= 0)
                        return;
                for (char *p = buf; p < buf + k;) {
                        struct inotify_event *e = (struct inotify_event *) p;
                        serve_attaches_on_inotify(s, e->wd);
                        p += sizeof(*e) + e->len;
                }
        }
}

/* Reads requests until the peer closes its side; then finishes the jobs it follows (so that
 * "echo '{...attach...}' | ssh node" works) and the output; ends when the peer is gone. */
static int serve_loop(Serve *s) {
        Input in = {};
        int r = 0;

        (void) fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
        (void) fcntl(STDOUT_FILENO, F_SETFL, fcntl(STDOUT_FILENO, F_GETFL) | O_NONBLOCK);

        for (;;) {
                struct pollfd pfd[3] = {
                        { .fd = -1, .events = POLLIN },
                        { .fd = -1, .events = POLLOUT },
                        { .fd = s->inotify_fd, .events = POLLIN },
                };
                bool pending;

                r = serve_attaches_pump(s);
                if (r < 0)
                        break;
                if (flush_output(s) < 0)
                        break;
                pending = s->out_off < s->out_len;
                if (in.eof && !pending && !serve_attaches_active(s))
                        break;

                if (!in.eof && !serve_output_full(s))
                        pfd[0].fd = STDIN_FILENO;
                /* Always watched: a peer that is gone entirely (POLLHUP) ends us even while
                 * followed jobs are quiet. A half-close (the peer's end of input) is no hang-up. */
                pfd[1].fd = STDOUT_FILENO;
                pfd[1].events = pending ? POLLOUT : 0;
                /* The timeout is for what inotify cannot tell: a worker that died. */
                r = poll(pfd, 3, serve_attaches_active(s) ? 1000 : -1);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        r = log_error_errno(errno, "poll: %m");
                        break;
                }
                if (pfd[1].revents & (POLLERR | POLLHUP)) {
                        s->out_broken = true;
                        break;
                }
                if (pfd[2].revents)
                        drain_inotify(s);
                if (pfd[0].revents) {
                        r = input_read(s, &in);
                        if (r < 0)
                                break;
                }
                r = 0;
        }
        free(in.buf);
        return r;
}

int verb_serve(int argc, char *argv[]) {
        ServeArgs a = {
                .state_dir = DEFAULT_STATE_DIR,
                .max_request = DEFAULT_MAX_REQUEST,
                .launch = LAUNCH_AUTO,
                .systemd_run = DEFAULT_SYSTEMD_RUN,
                .runtime_dir = DEFAULT_RUNTIME_DIR,
                .lost_grace_sec = 10,
        };
        Serve s = {
                .args = &a,
                .state_fd = -1, .jobs_fd = -1, .image_fd = -1, .inotify_fd = -1,
        };
        struct stat st;
        int r;

        r = parse_argv(argc, argv, &a);
        if (r <= 0)
                goto finish;
        if (geteuid() != 0) {
                r = log_error_errno(EPERM, "gateway-worker serve must run as root (it starts jobs and installs images).");
                goto finish;
        }
        if (a.launch == LAUNCH_AUTO)
                /* sd_booted(), without linking libsystemd for it. */
                a.launch = lstat("/run/systemd/system", &st) >= 0 && S_ISDIR(st.st_mode) ? LAUNCH_SYSTEMD : LAUNCH_DETACHED;
        if (!a.worker && (r = default_worker(&a)) < 0) {
                log_error_errno(r, "Cannot find the worker: %m");
                goto finish;
        }
        /* The peer going away must not kill us mid-write; we see EPIPE instead. */
        signal(SIGPIPE, SIG_IGN);
        if (asprintf(&s.runtime_arg, "--runtime-dir=%s", a.runtime_dir) < 0) {
                r = log_oom();
                goto finish;
        }
        r = serve_open(&s);
        if (r < 0)
                goto finish;
        r = serve_loop(&s);

finish:
        serve_attaches_free(&s);
        safe_close(s.state_fd);
        safe_close(s.jobs_fd);
        safe_close(s.image_fd);
        safe_close(s.inotify_fd);
        free(s.state_path);
        free(s.runtime_arg);
        free(s.out);
        free(a.image_dir);
        free(a.worker);
        strv_free(a.run_args);
        return r < 0 ? 1 : 0;
}
