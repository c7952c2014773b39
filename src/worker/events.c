/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <time.h>

#include "events.h"
#include "log.h"

static int events_fd = STDOUT_FILENO;
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;
/* Set once the reader is gone (EPIPE) or stalled: the worker goes on without it, since
 * everything durable also lands in files (the run verb's spool). */
static bool events_broken;

/* How long a full pipe may block us (non-blocking fds only) before the reader counts as gone. */
static int events_stall_msec = 30000;

static uint64_t events_max_bytes, events_written;
static bool events_capped;

void events_set_max_bytes(uint64_t max) {
        events_max_bytes = max;
}

void events_set_stall_timeout(int msec) {
        events_stall_msec = msec;
}

void events_set_fd(int fd) {
        events_fd = fd;
}

static int64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* loop_write(), but a full non-blocking pipe is waited for, up to the stall timeout. */
static int write_events(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd pfd = { .fd = fd, .events = POLLOUT };
                                int r = poll(&pfd, 1, events_stall_msec);
                                if (r < 0 && errno != EINTR)
                                        return -errno;
                                if (r == 0)
                                        return -ETIMEDOUT;
                                continue;
                        }
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int events_emit(WorkerEventKind kind, json_object *fields) {
        _cleanup_free_ char *line = NULL;
        size_t len;
        int r;

        r = worker_event_format(kind, fields, (uint64_t) now_usec(), &line, &len);
        if (r < 0)
                return r;

        pthread_mutex_lock(&events_lock);
        if (events_max_bytes > 0 && kind != WORKER_EVENT_DONE && events_written + len + 1 > events_max_bytes) {
                static const char note[] = "{\"event\":\"log\",\"level\":\"warning\",\"message\":"
                        "\"[gateway-worker] Event limit reached: no further log and interim events (the log file has them).\"}\n";
                r = 0;
                if (!events_capped && !events_broken) {
                        events_capped = true;
                        r = write_events(events_fd, note, sizeof(note) - 1);
                        if (r == -EPIPE || r == -ETIMEDOUT)
                                events_broken = true;
                }
                pthread_mutex_unlock(&events_lock);
                return r;
        }
        events_written += len + 1;
        if (events_broken)
                r = -EPIPE;
        else {
                r = write_events(events_fd, line, len);
                if (r == -EPIPE || r == -ETIMEDOUT)
                        events_broken = true;
        }
        pthread_mutex_unlock(&events_lock);
        return r;
}

int events_emit_log(const char *level, const char *format, ...) {
        char buf[4096];
        va_list ap;
        json_object *o;

        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "level", json_object_new_string(level));
        json_object_object_add(o, "message", json_object_new_string(buf));
        return events_emit(WORKER_EVENT_LOG, o);
}

int events_emit_status(const char *status, const char *message) {
        json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "status", json_object_new_string(status));
        if (message)
                json_object_object_add(o, "message", json_object_new_string(message));
        return events_emit(WORKER_EVENT_STATUS, o);
}

static char *first_error = NULL;

static _printf_(3, 0) int record_error(bool replace, int error, const char *format, va_list ap) {
        char buf[2048];

        errno = abs(error);
        vsnprintf(buf, sizeof(buf), format, ap);

        pthread_mutex_lock(&events_lock);
        if (!first_error || replace) {
                free(first_error);
                first_error = strdup(buf);
        }
        pthread_mutex_unlock(&events_lock);

        return log_error_errno(error, "%s", buf);
}

int worker_error_errno(int error, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = record_error(false, error, format, ap);
        va_end(ap);
        return r;
}

int worker_error_replace_errno(int error, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = record_error(true, error, format, ap);
        va_end(ap);
        return r;
}

void worker_error_clear(void) {
        pthread_mutex_lock(&events_lock);
        first_error = mfree(first_error);
        pthread_mutex_unlock(&events_lock);
}

const char *worker_error_message(void) {
        const char *s;

        pthread_mutex_lock(&events_lock);
        s = first_error;
        pthread_mutex_unlock(&events_lock);
        return s;
}
