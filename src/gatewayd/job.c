/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "job.h"
#include "service.h"

static const char * const job_state_table[_JOB_STATE_MAX] = {
        [JOB_QUEUED] = "QUEUED",
        [JOB_PENDING] = "PENDING",
        [JOB_RUNNING] = "RUNNING",
        [JOB_SUCCEEDED] = "SUCCEEDED",
        [JOB_FAILED] = "FAILED",
        [JOB_CANCELLED] = "CANCELLED",
        [JOB_UNKNOWN] = "UNKNOWN",
};

const char *job_state_to_string(JobState s) {
        if (s < 0 || s >= _JOB_STATE_MAX)
                return NULL;
        return job_state_table[s];
}

JobState job_state_from_string(const char *s) {
        if (!s)
                return _JOB_STATE_INVALID;
        for (JobState i = 0; i < _JOB_STATE_MAX; i++)
                if (streq(job_state_table[i], s))
                        return i;
        return _JOB_STATE_INVALID;
}

const char *job_state_to_planqk(JobState s) {
        return s == JOB_QUEUED ? "PENDING" : job_state_to_string(s);
}

bool job_state_is_terminal(JobState s) {
        return s == JOB_SUCCEEDED || s == JOB_FAILED || s == JOB_CANCELLED || s == JOB_UNKNOWN;
}

bool job_state_transition_is_valid(JobState from, JobState to) {
        if (job_state_is_terminal(from))
                return false;
        switch (to) {
        case JOB_PENDING:
                /* Back from PENDING to QUEUED never happens: a slot once given is kept. */
                return from == JOB_QUEUED;
        case JOB_RUNNING:
                return from == JOB_PENDING;
        case JOB_SUCCEEDED:
                /* Only a worker reports success, and a worker runs only for an active job. */
                return job_state_is_active(from);
        case JOB_FAILED:
        case JOB_CANCELLED:
        case JOB_UNKNOWN:
                return true;
        default:
                return false;
        }
}

JobUpdate *job_update_dup(const JobUpdate *u) {
        JobUpdate *c = calloc(1, sizeof(JobUpdate));

        if (!c)
                return NULL;
        *c = *u;
        c->error_code = u->error_code ? strdup(u->error_code) : NULL;
        c->error_message = u->error_message ? strdup(u->error_message) : NULL;
        if ((u->error_code && !c->error_code) || (u->error_message && !c->error_message))
                return job_update_free(c);
        return c;
}

JobUpdate *job_update_free(JobUpdate *u) {
        if (!u)
                return NULL;
        free((char *) u->error_code);
        free((char *) u->error_message);
        return mfree(u);
}

Job *job_new(void) {
        Job *j = calloc(1, sizeof(Job));

        if (!j)
                return NULL;
        j->exit_code = -1;
        j->state = JOB_QUEUED;
        return j;
}

Job *job_free(Job *j) {
        if (!j)
                return NULL;
        if (j->platform_data_free)
                j->platform_data_free(j->platform_data);
        while (j->watches) {
                JobWatch *w = j->watches;
                j->watches = w->next;
                if (w->destroy)
                        w->destroy(w->userdata);
                free(w);
        }
        job_update_free(j->pending);
        free(j->image_request);
        free(j->id);
        free(j->service);
        free(j->program_id);
        free(j->program);
        free(j->program_provider);
        free(j->platform);
        free(j->subject);
        free(j->error_code);
        free(j->error_message);
        free(j->spool_dir);
        free(j->object_path);
        free(j);
        return NULL;
}

int job_id_new(char **ret) {
        uint8_t b[16];
        char *s;

        if (getrandom(b, sizeof(b), 0) != sizeof(b))
                return -errno ?: -EIO;
        b[6] = (b[6] & 0x0f) | 0x40;   /* version 4 */
        b[8] = (b[8] & 0x3f) | 0x80;   /* RFC 4122 variant */
        if (asprintf(&s, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                     b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                     b[10], b[11], b[12], b[13], b[14], b[15]) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

bool job_id_is_valid(const char *id) {
        /* Only what we generate: it is also a directory name and part of an object path. */
        if (!id || strlen(id) != 36)
                return false;
        for (size_t i = 0; i < 36; i++) {
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (id[i] != '-')
                                return false;
                } else if (!strchr("0123456789abcdef", id[i]))
                        return false;
        }
        return true;
}

static json_object *timestamp_or_null(uint64_t usec) {
        char buf[32];

        if (usec == 0)
                return NULL;
        return json_object_new_string(format_timestamp_iso(buf, sizeof(buf), usec));
}

json_object *job_to_planqk_json(const Job *j) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_string(j->id));
        json_object_object_add(o, "status", json_object_new_string(job_state_to_planqk(j->state)));
        json_object_object_add(o, "createdAt", timestamp_or_null(j->created_usec));
        json_object_object_add(o, "startedAt", timestamp_or_null(j->started_usec));
        json_object_object_add(o, "endedAt", timestamp_or_null(j->ended_usec));
        return o;
}

json_object *job_to_json(const Job *j) {
        json_object *o = json_object_new_object(), *err = NULL;

        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_string(j->id));
        json_object_object_add(o, "service", json_object_new_string(j->service));
        if (j->program)
                json_object_object_add(o, "program", json_object_new_string(j->program));
        if (j->program_provider)
                json_object_object_add(o, "programProvider", json_object_new_string(j->program_provider));
        json_object_object_add(o, "platform", json_object_new_string(j->platform));
        json_object_object_add(o, "status", json_object_new_string(job_state_to_string(j->state)));
        json_object_object_add(o, "uid", json_object_new_int64(j->uid));
        json_object_object_add(o, "gid", json_object_new_int64(j->gid));
        json_object_object_add(o, "createdAt", timestamp_or_null(j->created_usec));
        json_object_object_add(o, "startedAt", timestamp_or_null(j->started_usec));
        json_object_object_add(o, "endedAt", timestamp_or_null(j->ended_usec));
        json_object_object_add(o, "exitCode", j->exit_code >= 0 ? json_object_new_int(j->exit_code) : NULL);
        if (j->error_code || j->error_message) {
                err = json_object_new_object();
                json_object_object_add(err, "code", j->error_code ? json_object_new_string(j->error_code) : NULL);
                json_object_object_add(err, "message", j->error_message ? json_object_new_string(j->error_message) : NULL);
        }
        json_object_object_add(o, "error", err);
        return o;
}

int job_watch_add(Job *j, JobWatchCallback callback, void (*destroy)(void *userdata), void *userdata) {
        JobWatch *w = calloc(1, sizeof(JobWatch));

        if (!w)
                return -ENOMEM;
        *w = (JobWatch) { .callback = callback, .destroy = destroy, .userdata = userdata, .next = j->watches };
        j->watches = w;
        return 0;
}

void job_watch_remove(Job *j, JobWatchCallback callback, void *userdata) {
        for (JobWatch **p = &j->watches; *p; p = &(*p)->next)
                if ((*p)->callback == callback && (*p)->userdata == userdata) {
                        JobWatch *w = *p;
                        *p = w->next;
                        if (w->destroy)
                                w->destroy(w->userdata);
                        free(w);
                        return;
                }
}

void job_notify_watches(Job *j) {
        JobWatch *w, *next;

        /* A callback may remove its own watch (and only its own). */
        for (w = j->watches; w; w = next) {
                next = w->next;
                w->callback(w->userdata);
        }
}

uint64_t realtime_now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* Opens a regular file of the job's spool (never through a symlink the job might have left). */
static int open_spool_file(const Job *j, const char *name, struct stat *st) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;

        if (asprintf(&path, "%s/%s", j->spool_dir, name) < 0)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        if (fstat(fd, st) < 0)
                return -errno;
        if (!S_ISREG(st->st_mode))
                return -EBADF;
        return TAKE_FD(fd);
}

int job_read_spool_file(const Job *j, const char *name, size_t max, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        size_t n = 0;

        fd = open_spool_file(j, name, &st);
        if (fd < 0)
                return fd;
        if ((uint64_t) st.st_size > max)
                return -EFBIG;
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        while (n < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + n, (size_t) st.st_size - n);
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

int job_read_spool_tail(const Job *j, const char *name, size_t max, char **ret) {
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        off_t start;
        ssize_t n;
        char *p;

        fd = open_spool_file(j, name, &st);
        if (fd < 0)
                return fd;
        start = st.st_size > (off_t) max ? st.st_size - (off_t) max : 0;
        buf = malloc((size_t) (st.st_size - start) + 1);
        if (!buf)
                return -ENOMEM;
        n = pread(fd, buf, (size_t) (st.st_size - start), start);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        /* Started inside a line: drop that partial line. */
        p = buf;
        if (start > 0) {
                p = strchr(buf, '\n');
                p = p ? p + 1 : buf + n;
        }
        memmove(buf, p, strlen(p) + 1);
        *ret = TAKE_PTR(buf);
        return 0;
}
