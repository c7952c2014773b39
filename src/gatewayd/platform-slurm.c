/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Jobs on a Slurm cluster through slurmrestd (issue 10, docs/slurm.md).
 *
 * A job gets a spool of its own under slurm.spoolDir (shared with the compute nodes): job.json,
 * a copy of its input, and slurm/ (the owner's) for Slurm's output. The batch script execs the
 * setuid launcher on that spool, which runs the unchanged `gateway-worker run` there. The
 * outcome is exit.json in that spool (written last); result, log and interim results are copied
 * back into the job's own spool, from which every surface serves them.
 *
 * Recovery: before the submit, slurm.json in the job's own spool records the submission (the
 * Slurm job's unique name gatewayd-<id>, its owner, limits); once slurmrestd answers, the Slurm
 * job id is added to it, before anything else is announced. A restart finds the job by id, or —
 * when only the intent was recorded — by name, and submits it again only when Slurm has no such
 * job after the longest time a lost submit could still take. */
#include <pwd.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <fcntl.h>
#include <dirent.h>

#include "build-config.h"
#include "fs-util.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "platform-local.h"
#include "platform.h"
#include "spool-exit.h"
#include "spool-interim.h"
#include "slurm-rest.h"
#include "slurm-script.h"
#include "spool-layout.h"

/* The job's record in its own spool (not in the Slurm spool, which users' jobs write to). */
#define SLURM_RECORD "slurm.json"
/* Slurm's output (slurmstepd writes it as the user) in SLURM_SPOOL/slurm/out. */
#define SLURM_OUT_DIR "slurm"
#define SLURM_OUT "slurm/out"

/* Slurm's own state: polled slowly when the spool tells us the rest (inotify), faster when it
 * cannot (a network file system changed by the nodes). */
#define POLL_LOCAL_USEC (1 * USEC_PER_SEC)
#define POLL_REMOTE_USEC (USEC_PER_SEC / 5)
#define POLL_WATCHED_USEC (5 * USEC_PER_SEC)
/* Log copies back into the job's spool, at most this often. */
#define LOG_COPY_USEC (USEC_PER_SEC / 10)
/* Waiting for slurmrestd (down, or refusing our tokens): retries of a submit, growing. */
#define RESUBMIT_FIRST_USEC (USEC_PER_SEC / 2)
#define RESUBMIT_MAX_USEC (5 * USEC_PER_SEC)
/* A submit whose answer was lost can still reach slurmctld until its attempts time out. */
#define SUBMIT_GRACE_USEC (45 * USEC_PER_SEC)
/* Slurm's time limit is a backstop behind the worker's own timeout. */
#define TIME_LIMIT_GRACE_USEC (60 * USEC_PER_SEC)
#define STATE_REFRESH_USEC (5 * USEC_PER_SEC)
#define OUT_TAIL_MAX 2048

static inline bool streq_ptr(const char *a, const char *b) {
        return a && b ? streq(a, b) : a == b;
}

typedef struct SlurmJob SlurmJob;

typedef struct SlurmPlatform {
        Platform *platform;
        SlurmRest *rest;
        char *spool_dir;                /* slurm.spoolDir, or <StateDirectory>/slurm */
        bool remote_spool;              /* the spool is on a network file system */
        SlurmJob *jobs;                 /* for the counts */

        /* The cluster's state, for the surfaces (refreshed by a timer, and by every answer). */
        sd_event_source *state_timer;
        SlurmRestRequest *ping_request, *partitions_request, *nodes_request;
        int reachable;                  /* -1 unknown */
        char *status;                   /* why not reachable, or the controller */
        char *version;
        json_object *partitions, *nodes;

        char **spools_left;             /* Slurm spools of concluded jobs still to remove */
        size_t n_spools_left;
} SlurmPlatform;

struct SlurmJob {
        SlurmPlatform *sp;
        Job *job;
        SlurmJob *prev, *next;

        char *user;                     /* who the job runs as on the cluster */
        char *name;                     /* gatewayd-<id> */
        char *spool;                    /* its Slurm spool */
        uint64_t time_limit_usec, memory_bytes;
        uint32_t slurm_id;              /* 0: not known (yet) */
        uint64_t recorded_usec;         /* when the intent was recorded (CLOCK_REALTIME) */

        SlurmRestRequest *request;      /* at most one in flight */
        sd_event_source *timer;         /* poll, or the next submit attempt */
        sd_event_source *inotify;       /* the Slurm spool, when local */
        sd_event_source *log_timer;
        uint64_t retry_usec;

        SlurmJobPhase phase;
        char *slurm_state;
        bool fate_unknown;              /* a submit may have queued it: find it before submitting */
        bool started;
        bool cancel_sent;
        bool exit_seen;                 /* exit.json is there */
        uint64_t log_size;
        unsigned ticks;
        uint64_t interim_offset;        /* of interim.jsonl announced so far */
        unsigned interim_index;
};

static void slurm_job_schedule(SlurmJob *s, uint64_t usec);
static void slurm_job_next(SlurmJob *s);

static void slurm_job_free(void *data) {
        SlurmJob *s = data;

        if (!s)
                return;
        if (s->sp) {
                if (s->prev)
                        s->prev->next = s->next;
                else if (s->sp->jobs == s)
                        s->sp->jobs = s->next;
                if (s->next)
                        s->next->prev = s->prev;
        }
        sd_event_source_disable_unref(s->timer);
        sd_event_source_disable_unref(s->inotify);
        sd_event_source_disable_unref(s->log_timer);
        slurm_rest_request_cancel(s->request);
        free(s->user);
        free(s->name);
        free(s->spool);
        free(s->slurm_state);
        free(s);
}

static SlurmJob *slurm_job_new(SlurmPlatform *sp, Job *j) {
        SlurmJob *s = calloc(1, sizeof(SlurmJob));

        if (!s)
                return NULL;
        s->sp = sp;
        s->job = j;
        s->phase = SLURM_JOB_PENDING;
        s->next = sp->jobs;
        if (sp->jobs)
                sp->jobs->prev = s;
        sp->jobs = s;
        if (asprintf(&s->name, "gatewayd-%s", j->id) < 0 ||
            asprintf(&s->spool, "%s/%s", sp->spool_dir, j->id) < 0) {
                s->name = s->spool = NULL;
                slurm_job_free(s);
                return NULL;
        }
        return s;
}

/* Hands the job over to the platform's callbacks: after on_exit() we hold nothing of it. */
static void slurm_job_detach(SlurmJob *s) {
        Job *j = s->job;

        j->platform_data = NULL;
        j->platform_data_free = NULL;
        slurm_job_free(s);
}

/* ---- the cluster's state ---------------------------------------------------------------- */

static void set_reachable(SlurmPlatform *sp, bool reachable, const char *status) {
        if (sp->reachable != (int) reachable || !streq_ptr(sp->status, status)) {
                if (!reachable)
                        log_warning("Platforms.%s: slurmrestd: %s", sp->platform->name, strna(status));
                else if (sp->reachable == 0)
                        log_info("Platforms.%s: slurmrestd answers again.", sp->platform->name);
        }
        sp->reachable = reachable;
        free(sp->status);
        sp->status = status ? strdup(status) : NULL;
}

/* Whether an error is slurmrestd or slurmctld being away (or refusing our tokens): then jobs wait
 * instead of failing. */
static bool error_is_transient(int error) {
        return error == -ECONNREFUSED || error == -ETIMEDOUT || error == -EIO || error == -ECOMM ||
                error == -EHOSTDOWN || error == -ENOMEM || error == -EMSGSIZE;
}

/* ---- the record in the job's own spool ---------------------------------------------------- */

static int record_write(SlurmJob *s) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        const char *text;

        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "name", json_object_new_string(s->name));
        json_object_object_add(o, "user", json_object_new_string(s->user));
        json_object_object_add(o, "spool", json_object_new_string(s->spool));
        json_object_object_add(o, "timeLimit", json_object_new_int64((int64_t) s->time_limit_usec));
        json_object_object_add(o, "memory", json_object_new_int64((int64_t) s->memory_bytes));
        json_object_object_add(o, "recordedAt", json_object_new_int64((int64_t) s->recorded_usec));
        if (s->slurm_id > 0)
                json_object_object_add(o, "slurmJobId", json_object_new_int64(s->slurm_id));
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        /* Flushed: it is what keeps a restart from queueing the job a second time. */
        return write_file_atomic(s->job->spool_dir, SLURM_RECORD, text, strlen(text));
}

static int record_read(SlurmJob *s) {
        _cleanup_free_ char *text = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *v;
        int r;

        r = job_read_spool_file(s->job, SLURM_RECORD, 64 * 1024, &text, NULL);
        if (r < 0)
                return r;
        o = json_tokener_parse(text);
        if (!o || !json_object_is_type(o, json_type_object) ||
            !json_object_object_get_ex(o, "user", &v) || !json_object_is_type(v, json_type_string))
                return -EBADMSG;
        s->user = strdup(json_object_get_string(v));
        if (!s->user)
                return -ENOMEM;
        if (json_object_object_get_ex(o, "timeLimit", &v))
                s->time_limit_usec = (uint64_t) MAX(json_object_get_int64(v), 0);
        if (json_object_object_get_ex(o, "memory", &v))
                s->memory_bytes = (uint64_t) MAX(json_object_get_int64(v), 0);
        if (json_object_object_get_ex(o, "recordedAt", &v))
                s->recorded_usec = (uint64_t) MAX(json_object_get_int64(v), 0);
        if (json_object_object_get_ex(o, "slurmJobId", &v))
                s->slurm_id = (uint32_t) MAX(json_object_get_int64(v), 0);
        return 0;
}

/* ---- the Slurm spool ------------------------------------------------------------------------ */

/* A small file (exit.json) whole; the buffer is sized by the file, never by max. */
static int read_file_at(int dfd, const char *name, size_t max, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t n = 0, size;

        fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        size = (size_t) MIN((uint64_t) st.st_size, (uint64_t) max);
        buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        while (n < size) {
                ssize_t k = read(fd, buf + n, size - n);
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

/* Copies from_dfd/name to to_dfd/name (at most max bytes, in chunks: logs can be large) through
 * a temporary file and a rename, so readers never see a partial copy. */
static int copy_file_at(int from_dfd, const char *name, int to_dfd, mode_t mode, uint64_t max, bool sync) {
        _cleanup_close_ int in = -1, out = -1;
        _cleanup_free_ char *tmp = NULL;
        char buf[64 * 1024];
        struct stat st;
        uint64_t left = max;
        int r = 0;

        in = openat(from_dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (in < 0)
                return -errno;
        if (fstat(in, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (asprintf(&tmp, ".%s.copy", name) < 0)
                return -ENOMEM;
        out = openat(to_dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (out < 0)
                return -errno;
        while (left > 0) {
                ssize_t k = read(in, buf, (size_t) MIN((uint64_t) sizeof(buf), left));
                if (k < 0) {
                        r = -errno;
                        break;
                }
                if (k == 0)
                        break;
                r = loop_write(out, buf, (size_t) k);
                if (r < 0)
                        break;
                left -= (uint64_t) k;
        }
        if (r >= 0 && fchmod(out, mode) < 0)
                r = -errno;
        if (r >= 0 && sync && fsync(out) < 0)
                r = -errno;
        if (r >= 0 && renameat(to_dfd, tmp, to_dfd, name) < 0)
                r = -errno;
        if (r < 0)
                (void) unlinkat(to_dfd, tmp, 0);
        return r;
}

static int read_spool_file(SlurmJob *s, const char *name, size_t max, char **ret, size_t *ret_size) {
        _cleanup_close_ int dfd = open(s->spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (dfd < 0)
                return -errno;
        return read_file_at(dfd, name, max, ret, ret_size);
}

/* A file the worker wrote in the Slurm spool into the job's own spool, where it is served. */
static void copy_back(SlurmJob *s, const char *name) {
        _cleanup_close_ int from = -1, to = -1;
        int r;

        from = open(s->spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        to = open(s->job->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (from < 0 && errno == ENOENT)
                return;
        r = from < 0 || to < 0 ? -errno : copy_file_at(from, name, to, 0600, UINT64_MAX, /* sync= */ false);
        if (r < 0 && r != -ENOENT)
                log_warning_errno(r, "Job %s: cannot copy %s from %s: %m", s->job->id, name, s->spool);
}

/* The job's result files (the worker's output/): regular files directly inside, within the
 * configured OutputMax/OutputFiles, through a staging directory renamed into place whole. */
static void copy_back_output(SlurmJob *s) {
        const Config *c = s->job->manager->config;
        _cleanup_close_ int from = -1, to = -1, out = -1;
        uint64_t left = c->output_max, files = c->output_files;
        struct dirent *de;
        DIR *d;
        int r = 0;

        from = open(s->spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        to = open(s->job->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (from < 0 || to < 0)
                return;
        r = openat(from, SPOOL_OUTPUT_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (r < 0 || !(d = fdopendir(r))) {
                safe_close(r);
                return;
        }
        (void) rm_rf_at(to, ".output.partial");
        if (mkdirat(to, ".output.partial", 0750) < 0 ||
            (out = openat(to, ".output.partial", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0)
                r = -errno;
        while (r >= 0 && (de = readdir(d))) {
                struct stat st;

                if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISREG(st.st_mode))
                        continue;
                if (files == 0 || (uint64_t) st.st_size > left) {
                        log_warning("Job %s: result file %s over OutputMax/OutputFiles, not kept.", s->job->id, de->d_name);
                        continue;
                }
                r = copy_file_at(dirfd(d), de->d_name, out, 0640, left, /* sync= */ false);
                if (r >= 0) {
                        files--;
                        left -= (uint64_t) st.st_size;
                }
        }
        closedir(d);
        if (r >= 0) {
                (void) rm_rf_at(to, SPOOL_OUTPUT_DIR);
                if (renameat(to, ".output.partial", to, SPOOL_OUTPUT_DIR) < 0)
                        r = -errno;
        }
        if (r < 0) {
                log_warning_errno(r, "Job %s: cannot copy the result files from %s: %m", s->job->id, s->spool);
                (void) rm_rf_at(to, ".output.partial");
        }
}

/* The worker keeps these within the configured limits (ResultMax, LogMax, ...). */
static void copy_back_all(SlurmJob *s) {
        copy_back_output(s);
        copy_back(s, SPOOL_RESULT);
        copy_back(s, SPOOL_INTERIM);
        copy_back(s, SPOOL_LOG_OLD);
        copy_back(s, SPOOL_LOG);
        copy_back(s, SPOOL_EXIT);
}

/* The end of Slurm's output: where the launcher says why it refused a job. */
static char *out_tail(SlurmJob *s) {
        _cleanup_free_ char *path = NULL, *buf = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        ssize_t n;
        off_t from;

        if (asprintf(&path, "%s/" SLURM_OUT, s->spool) < 0)
                return NULL;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
                return NULL;
        buf = malloc(OUT_TAIL_MAX + 1);
        if (!buf)
                return NULL;
        from = st.st_size > OUT_TAIL_MAX ? st.st_size - OUT_TAIL_MAX : 0;
        n = pread(fd, buf, OUT_TAIL_MAX, from);
        if (n <= 0)
                return NULL;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
                n--;
        buf[n] = 0;
        return TAKE_PTR(buf);
}

/* mkdirat() with exactly this mode, whatever the umask; an existing one is made so. */
static int make_dir_at(int dfd, const char *name, mode_t mode, uid_t uid, gid_t gid, int *ret_fd) {
        _cleanup_close_ int fd = -1;
        struct stat st;

        if (mkdirat(dfd, name, mode) < 0 && errno != EEXIST)
                return -errno;
        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0)
                return -errno;
        if ((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0)
                return -errno;
        if (ret_fd)
                *ret_fd = TAKE_FD(fd);
        return 0;
}

/* The submission's input (regular files) into the Slurm spool's input/: root's, 0700 (the
 * worker, as root, hands it to the job's uid inside the sandbox). */
static int copy_input(Job *j, int spool_fd) {
        _cleanup_free_ char *from = NULL;
        _cleanup_close_ int to = -1;
        DIR *d;
        struct dirent *de;
        int r = 0;

        if (!(from = spool_path(j->spool_dir, SPOOL_INPUT_DIR)))
                return -ENOMEM;
        r = make_dir_at(spool_fd, SPOOL_INPUT_DIR, 0700, 0, 0, &to);
        if (r < 0)
                return r;
        d = opendir(from);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                int k;

                if (de->d_name[0] == '.')
                        continue;
                k = copy_file_at(dirfd(d), de->d_name, to, 0600, UINT64_MAX, /* sync= */ true);
                if (k == -ELOOP || k == -EBADFD)
                        continue;  /* gatewayd writes only regular files there */
                if (k < 0) {
                        r = k;
                        break;
                }
        }
        closedir(d);
        return r;
}

/* The Slurm spool as the launcher demands it: root's and not writable by others (so only
 * gatewayd can have written job.json), traversable (slurmstepd enters it as the user), with
 * slurm/ for Slurm's output owned by the user. */
static int prepare_spool(SlurmJob *s, json_object *spec, GwError *e) {
        const char *root = s->sp->spool_dir;
        _cleanup_close_ int root_fd = -1, fd = -1;
        struct passwd *pw = getpwnam(s->user);
        const char *text;
        int r;

        if (!pw)
                return gw_error_set(e, GW_ERROR_INTERNAL, "User %s is unknown to this system.", s->user);
        root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return gw_error_set_errno(e, -errno, "Cannot open slurm.spoolDir %s: %m", root);
        /* A spool left by an attempt that never reached Slurm is made anew. */
        (void) rm_rf_at(root_fd, s->job->id);
        r = make_dir_at(root_fd, s->job->id, 0711, 0, 0, &fd);
        if (r >= 0)
                r = copy_input(s->job, fd);
        if (r >= 0)
                r = make_dir_at(fd, SLURM_OUT_DIR, 0700, pw->pw_uid, pw->pw_gid, NULL);
        if (r >= 0) {
                text = json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
                r = write_file_atomic_at_full(fd, SPOOL_JOB_SPEC, text, strlen(text), 0600,
                                              WRITE_FILE_SYNC | WRITE_FILE_SYNC_DIR);
        }
        if (r < 0)
                return gw_error_set_errno(e, r, "Cannot prepare the Slurm spool %s: %s", s->spool, strerror(-r));
        return 0;
}

/* Announces the interim results the worker appended since the last look, as the local
 * platform's event pipe would have (the D-Bus signal, followers). */
static void announce_interim(SlurmJob *s) {
        spool_interim_announce(s->job, s->spool, &s->interim_offset, &s->interim_index);
}

/* ---- the outcome ------------------------------------------------------------------------- */

/* Everything of the job is in its own spool now: the Slurm spool goes (a late write of the
 * worker's, after exit.json, matters to nobody). */
static void remove_spool(SlurmJob *s) {
        SlurmPlatform *sp = s->sp;
        char **l;
        int r = rm_rf(s->spool);

        if (r >= 0 || r == -ENOENT)
                return;
        /* The step's last writes race with us (the worker, slurmstepd): once more later. */
        log_debug_errno(r, "Job %s: cannot remove its Slurm spool %s yet: %m", s->job->id, s->spool);
        l = realloc(sp->spools_left, (sp->n_spools_left + 2) * sizeof(char *));
        if (!l)
                return;
        sp->spools_left = l;
        if ((l[sp->n_spools_left] = strdup(s->spool)))
                sp->n_spools_left++;
        l[sp->n_spools_left] = NULL;
}

static void remove_spools_left(SlurmPlatform *sp) {
        size_t k = 0;

        for (size_t i = 0; i < sp->n_spools_left; i++) {
                int r = rm_rf(sp->spools_left[i]);

                if (r >= 0 || r == -ENOENT)
                        free(sp->spools_left[i]);
                else
                        sp->spools_left[k++] = sp->spools_left[i];
        }
        sp->n_spools_left = k;
        if (sp->spools_left)
                sp->spools_left[k] = NULL;
}

static const char *error_code_of_state(const char *state) {
        if (streq_ptr(state, "TIMEOUT"))
                return "TIMEOUT";
        if (streq_ptr(state, "OUT_OF_MEMORY"))
                return "OUT_OF_MEMORY";
        if (streq_ptr(state, "NODE_FAIL"))
                return "NODE_FAIL";
        return "SLURM_FAILED";
}

static void conclude_as(SlurmJob *s, JobState state, const char *code, const char *what) {
        _cleanup_free_ char *tail = out_tail(s), *msg = NULL;
        Job *j = s->job;

        if (tail && asprintf(&msg, "%s (Slurm job %u). Slurm's output ends with:\n%s", what, s->slurm_id, tail) < 0)
                msg = NULL;
        else if (!tail && asprintf(&msg, "%s (Slurm job %u).", what, s->slurm_id) < 0)
                msg = NULL;
        copy_back_all(s);
        announce_interim(s);
        remove_spool(s);
        log_info("Job %s: %s (Slurm job %u, %s).", j->id, job_state_to_string(state), s->slurm_id, strna(s->slurm_state));
        slurm_job_detach(s);
        j->platform_callbacks->on_exit(j, state, -1, code, msg ?: what, 0, 0);
}

/* exit.json decides, except that Slurm's time limit beats a CANCELLED the worker recorded when
 * Slurm's SIGTERM reached it. Returns false if there is no exit.json. */
static bool conclude_from_exit(SlurmJob *s) {
        _cleanup_free_ char *text = NULL;
        _cleanup_(spool_exit_done) SpoolExit e = {};
        Job *j = s->job;

        /* The copy in the job's own spool: concluded once already, and gatewayd stopped before
         * it stored the outcome (the Slurm spool is gone then). */
        if (read_spool_file(s, SPOOL_EXIT, 1024 * 1024, &text, NULL) < 0 &&
            job_read_spool_file(j, SPOOL_EXIT, 1024 * 1024, &text, NULL) < 0)
                return false;
        if (spool_exit_parse(text, &e) < 0) {
                conclude_as(s, JOB_UNKNOWN, "WORKER_LOST", "exit.json of the worker is unreadable");
                return true;
        }
        /* Slurm signals every process of the step: the worker may record its SIGTERM as a
         * cancel, or the job's own death by it as a failure. Slurm's reason decides. */
        if ((e.state == JOB_CANCELLED || e.state == JOB_FAILED) && streq_ptr(s->slurm_state, "TIMEOUT")) {
                conclude_as(s, JOB_FAILED, "TIMEOUT", "The job reached the Slurm time limit");
                return true;
        }
        if (e.state == JOB_FAILED && streq_ptr(s->slurm_state, "CANCELLED")) {
                conclude_as(s, JOB_CANCELLED, "CANCELLED", "The Slurm job was cancelled");
                return true;
        }
        copy_back_all(s);
        announce_interim(s);
        remove_spool(s);
        log_info("Job %s: %s (Slurm job %u).", j->id, job_state_to_string(e.state), s->slurm_id);
        /* The callback may free what e's JSON holds: copy nothing out of it after. */
        {
                _cleanup_free_ char *c = e.code ? strdup(e.code) : NULL, *d = e.detail ? strdup(e.detail) : NULL;

                slurm_job_detach(s);
                j->platform_callbacks->on_exit(j, e.state, e.exit_code, c, d, e.started_usec, e.ended_usec);
        }
        return true;
}

/* What Slurm says of an ended job, when exit.json has nothing to say. */
static void conclude_from_slurm(SlurmJob *s) {
        if (conclude_from_exit(s))
                return;
        switch (s->phase) {
        case SLURM_JOB_CANCELLED:
                conclude_as(s, JOB_CANCELLED, "CANCELLED", s->job->cancel_requested ? "Cancelled" : "The Slurm job was cancelled");
                break;
        case SLURM_JOB_FAILED:
                conclude_as(s, JOB_FAILED, error_code_of_state(s->slurm_state),
                            slurm_job_state_reason(s->slurm_state) ?: "The Slurm job failed");
                break;
        default:
                conclude_as(s, JOB_UNKNOWN, "WORKER_LOST", "The Slurm job ended without the worker recording an outcome");
        }
}

/* ---- watching: Slurm, and the spool ---------------------------------------------------------- */

static void announce_started(SlurmJob *s, uint64_t usec) {
        if (s->started)
                return;
        s->started = true;
        s->job->platform_callbacks->on_started(s->job, usec);
}

static int on_log_timer(sd_event_source *es, uint64_t usec, void *userdata) {
        SlurmJob *s = userdata;

        copy_back(s, SPOOL_LOG);
        copy_back(s, SPOOL_INTERIM);
        announce_interim(s);
        s->job->platform_callbacks->on_log(s->job);
        return 0;
}

static void log_changed(SlurmJob *s) {
        if (s->log_timer) {
                (void) sd_event_source_set_enabled(s->log_timer, SD_EVENT_ONESHOT);
                return;
        }
        (void) sd_event_add_time_relative(s->job->manager->event, &s->log_timer, CLOCK_MONOTONIC, LOG_COPY_USEC, 0,
                                          on_log_timer, s);
}

/* A CANCELLED or FAILED outcome gatewayd did not cause may be Slurm's doing (scancel, the time
 * limit): its final state says. */
static bool exit_status_needs_slurm(const char *text) {
        _cleanup_(json_object_putp) json_object *o = json_tokener_parse(text);
        const char *status = json_get_string(o, "status");

        return streq_ptr(status, "CANCELLED") || streq_ptr(status, "FAILED");
}

/* exit.json appeared: the outcome, unless the worker recorded a cancel or failure nobody here
 * asked for (Slurm's time limit, or scancel), which Slurm's final state explains. */
static void exit_appeared(SlurmJob *s) {
        _cleanup_free_ char *text = NULL;

        if (s->exit_seen)
                return;
        s->exit_seen = true;
        if (!s->job->cancel_requested && read_spool_file(s, SPOOL_EXIT, 1024 * 1024, &text, NULL) >= 0 &&
            exit_status_needs_slurm(text)) {
                slurm_job_schedule(s, 0);  /* ask Slurm now */
                return;
        }
        (void) conclude_from_exit(s);
}

static int on_spool_event(sd_event_source *es, const struct inotify_event *ev, void *userdata) {
        SlurmJob *s = userdata;

        if (ev->len == 0)
                return 0;
        if (streq(ev->name, SPOOL_EXIT))
                exit_appeared(s);
        else if (streq(ev->name, SPOOL_WORKER_PID))
                announce_started(s, 0);
        else if (streq(ev->name, SPOOL_LOG) || streq(ev->name, SPOOL_INTERIM))
                log_changed(s);
        return 0;
}

static bool exit_present(SlurmJob *s) {
        _cleanup_free_ char *path = spool_path(s->spool, SPOOL_EXIT);

        return path && access(path, F_OK) >= 0;
}

/* Without inotify (a network file system): a look at the spool on each poll. */
static bool spool_poll(SlurmJob *s) {
        _cleanup_free_ char *exit_path = NULL, *log_path = NULL;
        struct stat st;

        if (!(exit_path = spool_path(s->spool, SPOOL_EXIT)) || !(log_path = spool_path(s->spool, SPOOL_LOG)))
                return false;
        if (stat(log_path, &st) >= 0 && (uint64_t) st.st_size != s->log_size) {
                s->log_size = (uint64_t) st.st_size;
                log_changed(s);
        }
        if (!s->exit_seen && access(exit_path, F_OK) >= 0) {
                exit_appeared(s);
                return true;
        }
        return false;
}

static int watch_spool(SlurmJob *s) {
        int r;

        if (s->sp->remote_spool || s->inotify)
                return 0;
        r = sd_event_add_inotify(s->job->manager->event, &s->inotify, s->spool,
                                 IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY | IN_ONLYDIR, on_spool_event, s);
        if (r < 0)
                return log_warning_errno(r, "Job %s: cannot watch %s, polling it: %m", s->job->id, s->spool);
        (void) sd_event_source_set_description(s->inotify, "slurm-spool");
        return 0;
}

static void on_job_info(SlurmRest *r, int error, const SlurmJobInfo *info, const char *message, void *userdata) {
        SlurmJob *s = userdata;

        s->request = NULL;
        if (error == -ESRCH) {
                /* Purged after MinJobAge: it ended, the spool says how. */
                set_reachable(s->sp, true, NULL);
                if (s->job->cancel_requested && !conclude_from_exit(s))
                        conclude_as(s, JOB_CANCELLED, "CANCELLED", "Cancelled");
                else if (!s->job->cancel_requested)
                        conclude_from_slurm(s);
                return;
        }
        if (error < 0) {
                if (error_is_transient(error))
                        set_reachable(s->sp, false, message);
                log_debug("Job %s: Slurm job %u: %s", s->job->id, s->slurm_id, strna(message));
                slurm_job_schedule(s, RESUBMIT_MAX_USEC);
                return;
        }
        set_reachable(s->sp, true, NULL);
        free(s->slurm_state);
        s->slurm_state = info->state ? strdup(info->state) : NULL;
        if (!s->exit_seen && exit_present(s)) {
                /* Written before the watch began (a restart), or missed: the same as an event. */
                if (info->phase >= 0)
                        s->phase = info->phase;
                exit_appeared(s);
                return;
        }
        if (info->phase >= 0)
                s->phase = info->phase;
        if (s->phase == SLURM_JOB_RUNNING)
                announce_started(s, info->start_time > 0 ? (uint64_t) info->start_time * USEC_PER_SEC : 0);
        if (s->phase == SLURM_JOB_COMPLETED || s->phase == SLURM_JOB_FAILED || s->phase == SLURM_JOB_CANCELLED) {
                conclude_from_slurm(s);
                return;
        }
        slurm_job_next(s);
}

static void on_cancelled(SlurmRest *r, int error, const char *message, void *userdata) {
        SlurmJob *s = userdata;

        s->request = NULL;
        if (error < 0 && error != -ESRCH) {
                log_warning("Job %s: cannot cancel Slurm job %u: %s", s->job->id, s->slurm_id, strna(message));
                if (error_is_transient(error))
                        set_reachable(s->sp, false, message);
                s->cancel_sent = false;  /* again on the next poll */
                slurm_job_schedule(s, RESUBMIT_MAX_USEC);
                return;
        }
        /* Slurm killed the step (SIGKILL): the job has ended, unless it had finished already. */
        if (!conclude_from_exit(s))
                conclude_as(s, JOB_CANCELLED, "CANCELLED", "Cancelled");
}

static void on_submitted(SlurmRest *r, int error, uint32_t job_id, const char *message, void *userdata);
static void on_found(SlurmRest *r, int error, const SlurmJobInfo *info, const char *message, void *userdata);

static int submit(SlurmJob *s) {
        const ConfigPlatform *c = s->sp->platform->config;
        _cleanup_free_ char *script = NULL, *out = NULL;
        SlurmJobDesc d;
        int r;

        r = slurm_script_generate(&(SlurmScriptParams) {
                                          .job_id = s->job->id,
                                          .launcher = c->slurm_launcher ?: LIBEXECDIR "/gateway-slurm-launch",
                                          .spool_dir = s->spool,
                                  }, &script);
        if (r < 0)
                return r;
        if (asprintf(&out, "%s/" SLURM_OUT, s->spool) < 0)
                return -ENOMEM;
        d = (SlurmJobDesc) {
                .name = s->name,
                .script = script,
                .partition = c->slurm_partition,
                .account = c->slurm_account,
                .cwd = s->spool,
                .standard_output = out,
                .standard_error = out,
                .time_limit_usec = s->time_limit_usec,
                .memory_bytes = s->memory_bytes,
                .comment = s->job->id,
        };
        /* From here on a restart cannot tell whether Slurm has the job. */
        s->fate_unknown = true;
        return slurm_rest_submit(s->sp->rest, s->user, &d, on_submitted, s, &s->request);
}

/* The next step for a job, by what is known of it: cancel, find, submit or poll. */
static void slurm_job_next_now(SlurmJob *s) {
        int r;

        if (s->request)
                return;
        if (s->slurm_id > 0 && s->job->cancel_requested && !s->cancel_sent) {
                s->cancel_sent = true;
                r = slurm_rest_cancel(s->sp->rest, s->user, s->slurm_id, on_cancelled, s, &s->request);
        } else if (s->slurm_id > 0) {
                /* A network spool is looked at on every tick, Slurm asked on every fifth. */
                if (s->sp->remote_spool) {
                        if (spool_poll(s))
                                return;
                        if (++s->ticks % (POLL_LOCAL_USEC / POLL_REMOTE_USEC) != 0 && !s->exit_seen) {
                                slurm_job_next(s);
                                return;
                        }
                }
                r = slurm_rest_job(s->sp->rest, s->user, s->slurm_id, on_job_info, s, &s->request);
        } else if (s->fate_unknown)
                r = slurm_rest_find_job(s->sp->rest, s->user, s->name, on_found, s, &s->request);
        else if (s->job->cancel_requested) {
                conclude_as(s, JOB_CANCELLED, "CANCELLED", "Cancelled before Slurm queued it");
                return;
        } else
                r = submit(s);
        if (r < 0) {
                log_warning_errno(r, "Job %s: cannot send a request to slurmrestd: %m", s->job->id);
                slurm_job_schedule(s, RESUBMIT_MAX_USEC);
        }
}

static int on_timer(sd_event_source *es, uint64_t usec, void *userdata) {
        slurm_job_next_now(userdata);
        return 0;
}

static void slurm_job_schedule(SlurmJob *s, uint64_t usec) {
        int r;

        if (!s->timer) {
                r = sd_event_add_time_relative(s->job->manager->event, &s->timer, CLOCK_MONOTONIC, usec, 0, on_timer, s);
                if (r < 0) {
                        log_error_errno(r, "Job %s: cannot arm a timer: %m", s->job->id);
                        return;
                }
                (void) sd_event_source_set_description(s->timer, "slurm-job");
                return;
        }
        (void) sd_event_source_set_time_relative(s->timer, usec);
        (void) sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
}

/* The regular poll of a submitted job. With the spool watched, a running job's changes come
 * from there; Slurm is asked less often then (its own failures, a node lost). */
static void slurm_job_next(SlurmJob *s) {
        /* Waiting for Slurm's final word on a CANCELLED or FAILED exit.json: soon. */
        slurm_job_schedule(s, s->sp->remote_spool || s->exit_seen ? POLL_REMOTE_USEC :
                              s->started && s->inotify ? POLL_WATCHED_USEC : POLL_LOCAL_USEC);
}

/* slurmrestd is away or refuses us: the job waits (PENDING), the platform says why. */
static void retry_later(SlurmJob *s, const char *message) {
        set_reachable(s->sp, false, message);
        s->retry_usec = s->retry_usec ? MIN(s->retry_usec * 2, RESUBMIT_MAX_USEC) : RESUBMIT_FIRST_USEC;
        slurm_job_schedule(s, s->retry_usec);
}

static void adopt(SlurmJob *s, uint32_t id) {
        int r;

        s->slurm_id = id;
        s->fate_unknown = false;
        s->retry_usec = 0;
        r = record_write(s);
        if (r < 0)
                /* The intent is recorded: a restart finds the job by its name. */
                log_warning_errno(r, "Job %s: cannot record Slurm job %u: %m", s->job->id, id);
        log_info("Job %s: Slurm job %u (%s, as %s).", s->job->id, id, s->name, s->user);
        (void) watch_spool(s);
        slurm_job_next_now(s);   /* a cancel that came meanwhile goes out now */
        if (!s->request)
                slurm_job_next(s);
}

static void on_submitted(SlurmRest *r, int error, uint32_t job_id, const char *message, void *userdata) {
        SlurmJob *s = userdata;

        s->request = NULL;
        if (error == 0) {
                set_reachable(s->sp, true, NULL);
                adopt(s, job_id);
                return;
        }
        if (error_is_transient(error)) {
                /* -ECONNREFUSED/-ECOMM never reached slurmctld; a timeout may have. */
                s->fate_unknown = error != -ECONNREFUSED && error != -ECOMM;
                retry_later(s, message);
                return;
        }
        /* Refused for good (an accepted-with-errors job was cancelled by the client already). */
        set_reachable(s->sp, true, NULL);
        if (job_id > 0)
                s->slurm_id = job_id;
        conclude_as(s, JOB_FAILED, "SLURM_SUBMIT_FAILED", message ?: "Slurm refused the job");
}

static void on_found(SlurmRest *r, int error, const SlurmJobInfo *info, const char *message, void *userdata) {
        SlurmJob *s = userdata;
        uint64_t now = realtime_now_usec();

        s->request = NULL;
        if (error == 0) {
                set_reachable(s->sp, true, NULL);
                adopt(s, info->job_id);
                return;
        }
        if (error != -ENOENT) {
                retry_later(s, message);
                return;
        }
        set_reachable(s->sp, true, NULL);
        /* Not queued, or ended and purged: an outcome in the spool says which. */
        if (conclude_from_exit(s))
                return;
        /* Cancelled: a lost submit that still reaches slurmctld finds no spool (it goes with
         * the conclusion), so the launcher refuses to run it. */
        if (s->job->cancel_requested) {
                conclude_as(s, JOB_CANCELLED, "CANCELLED", "Cancelled before Slurm queued it");
                return;
        }
        /* A lost submit may still be on its way to slurmctld: only after its attempts have
         * timed out is "not found" final. */
        if (s->recorded_usec + SUBMIT_GRACE_USEC > now) {
                slurm_job_schedule(s, s->recorded_usec + SUBMIT_GRACE_USEC - now);
                return;
        }
        if (s->started) {
                conclude_as(s, JOB_UNKNOWN, "WORKER_LOST", "Slurm no longer knows the job and it left no outcome");
                return;
        }
        log_info("Job %s: Slurm has no job %s, submitting it.", s->job->id, s->name);
        s->fate_unknown = false;
        s->recorded_usec = now;
        if (record_write(s) < 0)
                log_warning("Job %s: cannot renew its Slurm record.", s->job->id);
        slurm_job_next_now(s);
}

/* ---- the vtable -------------------------------------------------------------------------- */

/* The account a job runs as on the cluster: its owner, root's jobs as nobody (as locally).
 * -ESRCH for a uid the system does not know: Slurm would keep its job pending forever. */
static int job_account(const Job *j, struct passwd **ret) {
        struct passwd *pw;

        errno = 0;
        pw = getpwuid(j->uid == 0 ? 65534 : j->uid);
        if (!pw)
                return errno > 0 ? -errno : -ESRCH;
        *ret = pw;
        return 0;
}

static uint64_t json_resource(json_object *spec, const char *key) {
        json_object *res, *v;

        if (!json_object_object_get_ex(spec, "resources", &res) || !json_object_object_get_ex(res, key, &v))
                return 0;
        return (uint64_t) MAX(json_object_get_int64(v), 0);
}

/* ---- program layers --------------------------------------------------------------------------- */

/* A program's layer lives beside the images, in the platform's image directory: the nodes share
 * it, and the launcher mounts nothing from anywhere else (docs/slurm.md). */
static int layer_path(Platform *p, const char *layer, char **ret) {
        const char *dir = p->config->local_image_dir;

        if (dir ? asprintf(ret, "%s/%s.squashfs", dir, layer) < 0 :
                  asprintf(ret, "%s/images/%s.squashfs", p->manager->state_dir, layer) < 0)
                return -ENOMEM;
        return 0;
}

/* A hard link when the state directory is on the shared file system, else a copy (root's, 0644
 * like an image; a program's squashfs is small: its artifact is bounded by ProgramArtifactMax). */
static int slurm_deploy_layer(Platform *p, const char *layer, const char *squashfs_path) {
        _cleanup_free_ char *to = NULL, *from_dir = NULL;
        _cleanup_close_ int from_fd = -1, to_fd = -1;
        const char *name;
        int r;

        r = layer_path(p, layer, &to);
        if (r < 0)
                return r;
        if (access(to, F_OK) >= 0 || link(squashfs_path, to) >= 0)
                return 0;
        name = strrchr(squashfs_path, '/');
        if (!name || !strneq(name + 1, layer, 64) || !(from_dir = strndup(squashfs_path, (size_t) (name - squashfs_path))))
                return -EINVAL;
        from_fd = open(from_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        *strrchr(to, '/') = 0;
        to_fd = open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (from_fd < 0 || to_fd < 0)
                return log_warning_errno(errno, "Platform %s: cannot copy program layer %s into %s: %m", p->name, layer, to);
        r = copy_file_at(from_fd, name + 1, to_fd, 0644, UINT64_MAX, /* sync= */ true);
        if (r < 0)
                return log_warning_errno(r, "Platform %s: cannot copy program layer %s into %s: %m", p->name, layer, to);
        return 0;
}

static int slurm_remove_layer(Platform *p, const char *layer) {
        _cleanup_free_ char *path = NULL;

        if (layer_path(p, layer, &path) < 0)
                return -ENOMEM;
        if (unlink(path) < 0 && errno != ENOENT)
                return log_warning_errno(errno, "Platform %s: cannot remove %s: %m", p->name, path);
        return 0;
}

/* The job names the copy in the image directory (made now if the upload's did not happen). */
static int job_spec_layer(Platform *p, const Service *svc, json_object *spec) {
        json_object *prog = json_get_typed(spec, "program", json_type_object);
        _cleanup_free_ char *path = NULL;
        int r;

        if (!svc->program_layer_id || !prog)
                return 0;
        r = layer_path(p, svc->program_layer_id, &path);
        if (r < 0)
                return r;
        if (access(path, F_OK) < 0) {
                r = slurm_deploy_layer(p, svc->program_layer_id, svc->program_layer);
                if (r < 0)
                        return r;
        }
        json_object_object_add(prog, "path", json_object_new_string(path));
        return 0;
}

static int slurm_start_job(Platform *p, Job *j, const Service *svc, const Image *image, GwError *e) {
        SlurmPlatform *sp = p->data;
        _cleanup_(json_object_putp) json_object *spec = NULL;
        struct passwd *pw;
        SlurmJob *s;
        uint64_t timeout;
        int r;

        r = job_account(j, &pw);
        if (r < 0) {
                /* Refused, not queued: Slurm would accept the job and keep it pending forever. */
                _cleanup_free_ char *msg = NULL;

                if (asprintf(&msg, "The job's owner (uid %u) is unknown to this system; Slurm cannot run it.",
                             (unsigned) j->uid) < 0)
                        msg = NULL;
                j->worker_started = true;
                j->platform_callbacks->on_exit(j, JOB_FAILED, -1, "UNKNOWN_USER", msg ?: "Unknown user.", 0, 0);
                return 0;
        }
        s = slurm_job_new(sp, j);
        if (!s)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        j->platform_data = s;
        j->platform_data_free = slurm_job_free;
        s->user = strdup(pw->pw_name);
        spec = platform_job_spec_json(j, svc, image);
        if (!s->user || !spec) {
                slurm_job_detach(s);
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        }
        /* The launcher runs only a job whose uid is the caller's: root's job is nobody's. */
        json_object_object_add(spec, "uid", json_object_new_int64(pw->pw_uid));
        json_object_object_add(spec, "gid", json_object_new_int64(pw->pw_gid));
        r = job_spec_layer(p, svc, spec);
        if (r < 0) {
                slurm_job_detach(s);
                return gw_error_set_errno(e, r, "Cannot put the program into the image directory: %s", strerror(-r));
        }
        timeout = json_resource(spec, "timeout") * USEC_PER_SEC;
        s->time_limit_usec = timeout > 0 ? timeout + TIME_LIMIT_GRACE_USEC : 0;
        s->memory_bytes = json_resource(spec, "memory");

        r = prepare_spool(s, spec, e);
        if (r < 0) {
                slurm_job_detach(s);
                return r;
        }
        s->recorded_usec = realtime_now_usec();
        r = record_write(s);
        if (r < 0) {
                slurm_job_detach(s);
                return gw_error_set_errno(e, r, "Cannot record the Slurm submission: %s", strerror(-r));
        }
        j->worker_started = true;
        slurm_job_next_now(s);
        return 0;
}

static int slurm_cancel_job(Platform *p, Job *j) {
        SlurmJob *s = j->platform_data;

        j->cancel_requested = true;
        if (!s)
                return 0;
        /* A submit in flight cancels once its answer (the id) is there; a job waiting for
         * slurmrestd ends at once unless it may have been queued. */
        if (!s->request) {
                (void) sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);
                slurm_job_next_now(s);
        } else if (s->slurm_id > 0 && !s->cancel_sent) {
                /* A poll in flight is dropped: the DELETE matters. */
                slurm_rest_request_cancel(s->request);
                s->request = NULL;
                slurm_job_next_now(s);
        }
        return 0;
}

/* The worker on the compute node takes saved-result.json from the Slurm spool, which gatewayd
 * shares: stored there as the worker's endpoint would. Only once the job runs (before, a spool
 * may still be made anew). */
static int slurm_save_result(Platform *p, Job *j, const char *json_text, PlatformResultSaved done, void *userdata) {
        SlurmJob *s = j->platform_data;

        if (!s)
                return -ESTALE;
        if (!s->started)
                return -EAGAIN;
        if (s->exit_seen)
                return -ESTALE;
        return spool_save_result(s->spool, json_text);
}

static int slurm_reattach_job(Platform *p, Job *j) {
        SlurmPlatform *sp = p->data;
        SlurmJob *s;
        int r;

        s = slurm_job_new(sp, j);
        if (!s)
                return -ENOMEM;
        j->platform_data = s;
        j->platform_data_free = slurm_job_free;
        r = record_read(s);
        if (r < 0) {
                /* Nothing was sent to Slurm: a PENDING job is started again by the caller. */
                slurm_job_detach(s);
                if (j->state != JOB_RUNNING)
                        return 0;
                j->worker_started = true;
                j->platform_callbacks->on_exit(j, JOB_UNKNOWN, -1, "WORKER_LOST",
                                               "The job was running, but left no Slurm record in its spool.", 0, 0);
                return 1;
        }
        j->worker_started = true;
        s->started = j->state == JOB_RUNNING;
        s->fate_unknown = s->slurm_id == 0;
        log_info("Job %s: re-attaching to %s %u.", j->id, s->name, s->slurm_id);
        if (s->slurm_id > 0)
                (void) watch_spool(s);
        slurm_job_next_now(s);
        return 1;
}

/* ---- the cluster's state, refreshed by a timer --------------------------------------------- */

static void on_ping(SlurmRest *r, int error, const SlurmPing *ping, const char *message, void *userdata) {
        SlurmPlatform *sp = userdata;

        sp->ping_request = NULL;
        if (error < 0) {
                set_reachable(sp, false, message);
                return;
        }
        set_reachable(sp, true, NULL);
        free(sp->version);
        sp->version = ping->version ? strdup(ping->version) : NULL;
}

static void on_partitions(SlurmRest *r, int error, const SlurmPartition *p, size_t n, const char *message,
                          void *userdata) {
        SlurmPlatform *sp = userdata;
        json_object *a;

        sp->partitions_request = NULL;
        if (error < 0)
                return;
        a = json_object_new_array();
        for (size_t i = 0; a && i < n; i++) {
                json_object *o = json_object_new_object();

                json_object_object_add(o, "name", json_object_new_string(strempty(p[i].name)));
                if (p[i].state)
                        json_object_object_add(o, "state", json_object_new_string(p[i].state));
                json_object_object_add(o, "nodes", json_object_new_int64(p[i].nodes));
                json_object_object_add(o, "cpus", json_object_new_int64(p[i].cpus));
                json_object_array_add(a, o);
        }
        json_object_put(sp->partitions);
        sp->partitions = a;
}

static void on_nodes(SlurmRest *r, int error, json_object *nodes, const char *message, void *userdata) {
        SlurmPlatform *sp = userdata;

        sp->nodes_request = NULL;
        if (error < 0)
                return;
        json_object_put(sp->nodes);
        sp->nodes = json_object_get(nodes);
}

static int on_state_timer(sd_event_source *es, uint64_t usec, void *userdata) {
        SlurmPlatform *sp = userdata;

        if (!sp->ping_request)
                (void) slurm_rest_ping(sp->rest, on_ping, sp, &sp->ping_request);
        if (!sp->partitions_request)
                (void) slurm_rest_partitions(sp->rest, on_partitions, sp, &sp->partitions_request);
        if (!sp->nodes_request)
                (void) slurm_rest_nodes(sp->rest, on_nodes, sp, &sp->nodes_request);
        remove_spools_left(sp);
        (void) sd_event_source_set_time_relative(es, STATE_REFRESH_USEC);
        return 0;
}

static bool fs_is_remote(const char *path) {
        struct statfs sfs;

        if (statfs(path, &sfs) < 0)
                return false;
        switch ((unsigned long) sfs.f_type) {
        case 0x6969:            /* NFS */
        case 0xFF534D42:        /* CIFS */
        case 0xFE534D42:        /* SMB2 */
        case 0x517B:            /* SMB */
        case 0x00C36400:        /* Ceph */
        case 0x0BD00BD0:        /* Lustre */
        case 0x47504653:        /* GPFS */
        case 0x5346414F:        /* AFS */
        case 0x19830326:        /* BeeGFS */
        case 0x65735546:        /* FUSE */
                return true;
        default:
                return false;
        }
}

static void slurm_done(Platform *p);

static int slurm_init_data(Platform *p) {
        const ConfigPlatform *c = p->config;
        SlurmRestConfig rc = {
                .url = c->slurm_url,
                .jwt_key_file = c->slurm_jwt_key,
                .token_file = c->slurm_token_file,
                .token_user = c->slurm_user,
        };
        SlurmPlatform *sp;
        int r;

        sp = calloc(1, sizeof(SlurmPlatform));
        if (!sp)
                return -ENOMEM;
        p->data = sp;
        sp->platform = p;
        sp->reachable = -1;
        if (c->slurm_spool_dir)
                sp->spool_dir = strdup(c->slurm_spool_dir);
        else if (asprintf(&sp->spool_dir, "%s/slurm", p->manager->state_dir) < 0)
                sp->spool_dir = NULL;
        if (!sp->spool_dir)
                return -ENOMEM;
        /* The launcher on the nodes wants it root's and not writable by others; users' job
         * steps must be able to pass through it. */
        r = mkdir_p(sp->spool_dir, 0755);
        if (r >= 0 && chmod(sp->spool_dir, 0755) < 0)
                r = -errno;
        if (r < 0)
                return log_error_errno(r, "Platforms.%s: cannot create slurm.spoolDir %s: %m", p->name, sp->spool_dir);
        /* "auto": inotify sees what the nodes write only where the files live (the gateway
         * exports the spool); a client of a network file system must look. */
        sp->remote_spool = c->slurm_spool_watch && !streq(c->slurm_spool_watch, "auto") ?
                streq(c->slurm_spool_watch, "poll") : fs_is_remote(sp->spool_dir);
        r = slurm_rest_new(p->manager->event, &rc, &sp->rest);
        if (r < 0)
                return log_error_errno(r, "Platforms.%s: cannot set up the slurmrestd client: %m", p->name);
        r = sd_event_add_time_relative(p->manager->event, &sp->state_timer, CLOCK_MONOTONIC, 0, 0, on_state_timer, sp);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(sp->state_timer, "slurm-state");
        (void) sd_event_source_set_enabled(sp->state_timer, SD_EVENT_ON);
        log_info("Platforms.%s: Slurm through slurmrestd at %s, spool %s (%s).", p->name, c->slurm_url,
                 sp->spool_dir, sp->remote_spool ? "polled" : "watched with inotify");
        return 0;
}

static int slurm_init(Platform *p) {
        int r = slurm_init_data(p);

        if (r < 0)
                slurm_done(p);  /* platform_new() undoes nothing of ours */
        return r;
}

static void slurm_done(Platform *p) {
        SlurmPlatform *sp = p->data;

        if (!sp)
                return;
        /* Jobs still held are freed by the registry; they must not point at us any more. */
        for (SlurmJob *s = sp->jobs; s; s = s->next)
                s->sp = NULL;
        sd_event_source_disable_unref(sp->state_timer);
        slurm_rest_free(sp->rest);   /* drops every request, ours and the jobs' */
        for (SlurmJob *s = sp->jobs; s; s = s->next)
                s->request = NULL;
        json_object_put(sp->partitions);
        json_object_put(sp->nodes);
        free(sp->spool_dir);
        strv_free(sp->spools_left);
        free(sp->status);
        free(sp->version);
        free(sp);
        p->data = NULL;
}

static json_object *slurm_report_nodes(Platform *p) {
        SlurmPlatform *sp = p->data;

        return sp->nodes ? json_object_get(sp->nodes) : json_object_new_array();
}

/* Added to the platform's fields on the surfaces (GET /v1/platforms, D-Bus, gatewayctl). */
static json_object *slurm_report_state(Platform *p) {
        SlurmPlatform *sp = p->data;
        json_object *o = json_object_new_object();
        unsigned queued = 0, running = 0;

        if (!o)
                return NULL;
        /* gatewayd's jobs on the cluster: queued (submitted or waiting for slurmrestd) and
         * running (the worker started) */
        for (SlurmJob *s = sp->jobs; s; s = s->next)
                if (s->started)
                        running++;
                else
                        queued++;
        json_object_object_add(o, "url", json_object_new_string(p->config->slurm_url));
        json_object_object_add(o, "reachable", sp->reachable < 0 ? NULL : json_object_new_boolean(sp->reachable));
        json_object_object_add(o, "status", json_object_new_string(sp->reachable < 0 ? "not contacted yet" :
                                                                    sp->reachable ? "reachable" : strempty(sp->status)));
        if (sp->version)
                json_object_object_add(o, "slurmVersion", json_object_new_string(sp->version));
        json_object_object_add(o, "apiVersion", json_object_new_string(slurm_rest_version(sp->rest)));
        json_object_object_add(o, "partitions", sp->partitions ? json_object_get(sp->partitions) : json_object_new_array());
        json_object_object_add(o, "queued", json_object_new_int64(queued));
        json_object_object_add(o, "running", json_object_new_int64(running));
        return o;
}

const PlatformVTable platform_slurm_vtable = {
        .kind = "slurm",
        .init = slurm_init,
        .done = slurm_done,
        .start_job = slurm_start_job,
        .cancel_job = slurm_cancel_job,
        .reattach_job = slurm_reattach_job,
        /* no deploy_image: images are converted into the platform's image directory, which
         * the nodes share; program layers are put there */
        .deploy_layer = slurm_deploy_layer,
        .remove_layer = slurm_remove_layer,
        .report_nodes = slurm_report_nodes,
        .report_state = slurm_report_state,
        .save_result = slurm_save_result,
};
