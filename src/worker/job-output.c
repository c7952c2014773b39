/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>

#include "spool-layout.h"
#include "events.h"
#include "job-log.h"
#include "job-output.h"
#include "json-util.h"
#include "line-splitter.h"
#include "log.h"
#include "spool-reserve.h"
#include "utf8.h"

/* Log events carry at most this much of a line; the log file has all of it. */
#define EVENT_LINE_MAX (64 * 1024)
/* A result line needs room for its marker as well as the result. */
#define MARKER_ROOM 64

struct JobOutput {
        JobLog *log;
        bool log_failed;
        bool disk_full;         /* a write to the spool failed for lack of space */
        MarkerParser *parser;
        int interim_fd;
        LineSplitter out, err;
        bool out_in_line, err_in_line;
};

void job_output_note(JobOutput *o, const char *level, const char *format, ...) {
        char buf[1024];
        va_list ap;

        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);
        if (o && o->log)
                (void) job_log_note(o->log, level, buf);
        (void) events_emit_log(level, "%s", buf);
}

static void on_marker_warning(const char *message, void *userdata) {
        job_output_note(userdata, "warning", "%s", message);
}

static int write_line(int fd, const char *s, size_t n) {
        _cleanup_free_ char *b = malloc(n + 1);
        ssize_t k;

        if (!b)
                return -ENOMEM;
        memcpy(b, s, n);
        b[n] = '\n';
        /* one write: interim.jsonl never holds half a line that a reader could take as whole */
        k = write(fd, b, n + 1);
        if (k < 0)
                return -errno;
        if (k != (ssize_t) (n + 1)) {
                /* short: the file system filled up in between; take the half line back */
                if (ftruncate(fd, lseek(fd, 0, SEEK_CUR) - k) < 0)
                        log_debug_errno(errno, "Cannot take back a partial line of interim.jsonl: %m");
                return -ENOSPC;
        }
        return 0;
}

static int on_interim(const char *json, size_t len, size_t index, void *userdata) {
        JobOutput *o = userdata;
        json_object *e;
        int k;

        k = write_line(o->interim_fd, json, len);
        if (errno_is_disk_full(k))
                o->disk_full = true;
        if (k < 0) {
                job_output_note(o, "warning", "Cannot append to interim.jsonl: %s", strerror(-k));
                return 0;
        }
        e = json_object_new_object();
        if (!e)
                return 0;
        json_object_object_add(e, "index", json_object_new_int64((int64_t) index));
        json_object_object_add(e, "result", json_parse_deep(json, NULL));
        (void) events_emit(WORKER_EVENT_INTERIM, e);
        return 0;
}

static void emit_line_event(const char *stream, const char *data, size_t len) {
        size_t n = MIN(len, (size_t) EVENT_LINE_MAX);
        _cleanup_free_ char *copy = malloc(n + 1);
        json_object *e;

        if (!copy)
                return;
        memcpy(copy, data, n);   /* not strndup: the line may hold NUL bytes */
        copy[n] = 0;
        utf8_sanitize(copy, n);
        e = json_object_new_object();
        if (!e)
                return;
        json_object_object_add(e, "stream", json_object_new_string(stream));
        json_object_object_add(e, "line", json_object_new_string_len(copy, (int) n));
        if (len > EVENT_LINE_MAX)
                json_object_object_add(e, "truncated", json_object_new_boolean(true));
        (void) events_emit(WORKER_EVENT_LOG, e);
}

static void log_piece(JobOutput *o, const char *data, size_t len, bool continued) {
        int k;

        if (o->log_failed)
                return;
        k = job_log_line(o->log, data, len, continued);
        if (errno_is_disk_full(k))
                o->disk_full = true;
        if (k < 0) {
                o->log_failed = true;
                log_warning_errno(k, "Cannot write the job log, it will be incomplete: %m");
        }
}

/* Only the start of an over-long line goes out as an event. */
static void line_event(const char *stream, bool *in_line, const char *data, size_t len, bool continued) {
        if (!*in_line)
                emit_line_event(stream, data, len);
        *in_line = continued;
}

static int on_stdout(const char *data, size_t len, bool continued, void *userdata) {
        JobOutput *o = userdata;

        line_event("stdout", &o->out_in_line, data, len, continued);
        log_piece(o, data, len, continued);
        return marker_parser_feed(o->parser, data, len, continued);
}

static int on_stderr(const char *data, size_t len, bool continued, void *userdata) {
        JobOutput *o = userdata;

        line_event("stderr", &o->err_in_line, data, len, continued);
        log_piece(o, data, len, continued);
        return 0;
}

int job_output_open(int spool_fd, const MarkerLimits *limits, uint64_t log_max, unsigned tail_lines,
                    JobOutput **ret) {
        JobOutput *o;
        int k;

        o = calloc(1, sizeof(*o));
        if (!o)
                return log_oom();
        o->interim_fd = -1;
        k = job_log_open(spool_fd, log_max, tail_lines, &o->log);
        if (k < 0) {
                job_output_free(o);
                return log_error_errno(k, "Cannot create the job log: %m");
        }
        o->interim_fd = openat(spool_fd, SPOOL_INTERIM,
                               O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (o->interim_fd < 0) {
                k = -errno;
                job_output_free(o);
                return log_error_errno(k, "Cannot create interim.jsonl: %m");
        }
        k = marker_parser_new(limits, on_interim, on_marker_warning, o, &o->parser);
        if (k < 0) {
                job_output_free(o);
                return log_oom();
        }
        line_splitter_init(&o->out, limits->result_max + MARKER_ROOM, on_stdout, o);
        line_splitter_init(&o->err, limits->result_max + MARKER_ROOM, on_stderr, o);
        *ret = o;
        return 0;
}

JobOutput *job_output_free(JobOutput *o) {
        if (!o)
                return NULL;
        safe_close(o->interim_fd);
        line_splitter_done(&o->out);
        line_splitter_done(&o->err);
        marker_parser_free(o->parser);
        job_log_free(o->log);
        return mfree(o);
}

int job_output_feed(JobOutput *o, JobStream stream, const char *data, size_t n) {
        int k;

        k = line_splitter_feed(stream == JOB_STDOUT ? &o->out : &o->err, data, n);
        if (k < 0)
                log_warning_errno(k, "Cannot process job output: %m");
        return k;
}

void job_output_end(JobOutput *o) {
        (void) line_splitter_flush(&o->out);
        (void) line_splitter_flush(&o->err);
        (void) marker_parser_finish(o->parser);
}

const char *job_output_result(const JobOutput *o, size_t *ret_len) {
        return marker_parser_result(o->parser, ret_len);
}

bool job_output_disk_full(const JobOutput *o) {
        return o->disk_full;
}

size_t job_output_interim_count(const JobOutput *o) {
        return marker_parser_interim_count(o->parser);
}

char *job_output_log_tail(const JobOutput *o) {
        return job_log_tail(o->log);
}

int job_output_finish_log(JobOutput *o, uint64_t *ret_dropped) {
        int k;

        k = job_log_finish(o->log);
        if (k < 0)
                log_warning_errno(k, "Cannot finish the job log: %m");
        *ret_dropped = job_log_dropped(o->log);
        return k;
}
