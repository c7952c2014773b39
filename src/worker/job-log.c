/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "spool-layout.h"
#include "job-log.h"
#include "fs-util.h"
#include "macro.h"
#include "utf8.h"

#define TAIL_LINE_MAX 1024
/* When cutting the head, the kept part starts after a newline if one is this close. */
#define CUT_SEARCH_MAX (64 * 1024)

struct JobLog {
        int dir_fd;
        int fd;
        uint64_t max_size;
        uint64_t cur_size;      /* bytes in "log" */
        uint64_t old_size;      /* bytes in "log.old" */
        uint64_t dropped;       /* bytes of rotated-away segments and of the final cut */
        bool rotated;

        char **tail;            /* ring of the last lines */
        size_t tail_n, tail_next;
        bool tail_in_line;      /* the last piece was continued */
};

static int open_segment(JobLog *l) {
        l->fd = openat(l->dir_fd, SPOOL_LOG, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (l->fd < 0)
                return -errno;
        l->cur_size = 0;
        return 0;
}

int job_log_open(int dir_fd, uint64_t max_size, size_t tail_lines, JobLog **ret) {
        JobLog *l;
        int r;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->dir_fd = dir_fd;
        l->fd = -1;
        l->max_size = MAX(max_size, (uint64_t) 1);
        l->tail_n = tail_lines;
        if (tail_lines > 0) {
                l->tail = calloc(tail_lines, sizeof(char *));
                if (!l->tail) {
                        job_log_free(l);
                        return -ENOMEM;
                }
        }
        (void) unlinkat(dir_fd, SPOOL_LOG_OLD, 0);
        r = open_segment(l);
        if (r < 0) {
                job_log_free(l);
                return r;
        }
        *ret = l;
        return 0;
}

JobLog *job_log_free(JobLog *l) {
        if (!l)
                return NULL;
        safe_close(l->fd);
        for (size_t i = 0; i < l->tail_n; i++)
                free(l->tail[i]);
        free(l->tail);
        return mfree(l);
}

static int rotate(JobLog *l) {
        if (renameat(l->dir_fd, SPOOL_LOG, l->dir_fd, SPOOL_LOG_OLD) < 0)
                return -errno;
        l->fd = safe_close(l->fd);
        if (l->rotated)
                l->dropped += l->old_size;
        l->old_size = l->cur_size;
        l->rotated = true;
        return open_segment(l);
}

/* Each segment holds at most half the limit, so that "log" and "log.old" together never exceed
 * it: the limit bounds what the job can take of the disk, not only what readers get. */
static uint64_t segment_max(const JobLog *l) {
        return MAX(l->max_size / 2, (uint64_t) 1);
}

static int log_write(JobLog *l, const char *p, size_t n) {
        uint64_t seg = segment_max(l);
        int r;

        if (n > seg) {
                /* Only the end of a piece longer than a segment can be kept. */
                l->dropped += n - seg;
                p += n - seg;
                n = (size_t) seg;
        }
        if (l->cur_size > 0 && l->cur_size + n > seg) {
                r = rotate(l);
                if (r < 0)
                        return r;
        }
        while (n > 0) {
                ssize_t k = write(l->fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;   /* what was written of it is counted: the file has it */
                }
                l->cur_size += (uint64_t) k;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static void tail_remember(JobLog *l, const char *data, size_t len) {
        char *s;

        if (l->tail_n == 0)
                return;
        len = MIN(len, (size_t) TAIL_LINE_MAX);
        s = strndup(data, len);
        if (!s)
                return;  /* only used for error messages */
        utf8_sanitize(s, strlen(s));
        free(l->tail[l->tail_next]);
        l->tail[l->tail_next] = s;
        l->tail_next = (l->tail_next + 1) % l->tail_n;
}

int job_log_line(JobLog *l, const char *data, size_t len, bool continued) {
        int r;

        if (!l->tail_in_line)
                tail_remember(l, data, len);
        l->tail_in_line = continued;

        /* One write per line, so a reader following the file sees whole lines. */
        if (!continued) {
                _cleanup_free_ char *b = malloc(len + 1);
                if (!b)
                        return -ENOMEM;
                memcpy(b, data, len);
                b[len] = '\n';
                r = log_write(l, b, len + 1);
        } else
                r = log_write(l, data, len);
        return r;
}

int job_log_note(JobLog *l, const char *level, const char *message) {
        _cleanup_free_ char *s = NULL;
        int n;

        n = asprintf(&s, "[gateway-worker] %s: %s", level, message);
        if (n < 0)
                return -ENOMEM;
        return job_log_line(l, s, (size_t) n, false);
}

static int copy_range(int from, uint64_t offset, uint64_t n, int to) {
        char buf[64 * 1024];

        while (n > 0) {
                ssize_t k = pread(from, buf, MIN(n, (uint64_t) sizeof(buf)), (off_t) offset);
                int r;
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;   /* the file shrank under us */
                r = loop_write(to, buf, (size_t) k);
                if (r < 0)
                        return r;
                offset += (uint64_t) k;
                n -= (uint64_t) k;
        }
        return 0;
}

/* How many bytes after skip to skip more, so the kept part starts on a line. */
static uint64_t skip_to_line(int fd, uint64_t skip, uint64_t size) {
        char buf[4096];
        uint64_t off = skip;

        while (off < size && off - skip < CUT_SEARCH_MAX) {
                ssize_t k = pread(fd, buf, MIN(size - off, (uint64_t) sizeof(buf)), (off_t) off);
                char *nl;
                if (k <= 0)
                        break;
                nl = memchr(buf, '\n', (size_t) k);
                if (nl)
                        return off + (uint64_t) (nl - buf) + 1 - skip;
                off += (uint64_t) k;
        }
        return 0;
}

static char *truncation_notice(uint64_t dropped, uint64_t kept, uint64_t max) {
        char *s;

        if (asprintf(&s, "[gateway-worker] Log truncated: the first %" PRIu64 " bytes were dropped, the last %" PRIu64
                     " bytes follow (limit %" PRIu64 " bytes).\n", dropped, kept, max) < 0)
                return NULL;
        return s;
}

/* The disk is too full to write the merged log: keep the current segment as it is, give the
 * space of the older one back, and say so at the end (a short append, after space was freed). */
static int finish_in_place(JobLog *l) {
        _cleanup_close_ int fd = -1;
        char note[256];
        int n;

        (void) unlinkat(l->dir_fd, SPOOL_LOG_TMP, 0);
        if (l->rotated && unlinkat(l->dir_fd, SPOOL_LOG_OLD, 0) >= 0)
                l->dropped += l->old_size;
        l->old_size = 0;
        fd = openat(l->dir_fd, SPOOL_LOG, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        n = snprintf(note, sizeof(note),
                     "[gateway-worker] Log truncated: the file system is full; %" PRIu64 " earlier bytes were dropped.\n",
                     l->dropped);
        (void) loop_write(fd, note, (size_t) n);
        return fsync(fd) < 0 ? -errno : 0;
}

int job_log_finish(JobLog *l) {
        _cleanup_close_ int old_fd = -1, cur_fd = -1, tmp_fd = -1;
        _cleanup_free_ char *notice = NULL;
        uint64_t total, skip = 0, skip_old, skip_cur, want;
        size_t n = 0;
        int r;

        if (l->fd < 0)
                return -EBADF;
        total = l->old_size + l->cur_size;
        if (!l->rotated && l->dropped == 0) {
                r = fsync(l->fd) < 0 ? -errno : 0;
                l->fd = safe_close(l->fd);
                return r;
        }
        l->fd = safe_close(l->fd);

        if (l->rotated) {
                old_fd = openat(l->dir_fd, SPOOL_LOG_OLD, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (old_fd < 0)
                        return -errno;
        }
        cur_fd = openat(l->dir_fd, SPOOL_LOG, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (cur_fd < 0)
                return -errno;

        /* The notice counts against the limit too: cut until notice and kept part fit (the
         * notice's numbers change with the cut, hence a few rounds). */
        want = l->max_size;
        for (unsigned round = 0; round < 8; round++) {
                skip = total > want ? total - want : 0;
                skip_old = MIN(skip, l->old_size);
                skip_cur = skip - skip_old;
                if (skip_old < l->old_size)
                        skip_old += skip_to_line(old_fd, skip_old, l->old_size);
                else
                        skip_cur += skip_to_line(cur_fd, skip_cur, l->cur_size);
                skip = skip_old + skip_cur;
                free(notice);
                notice = truncation_notice(l->dropped + skip, total - skip, l->max_size);
                if (!notice)
                        return -ENOMEM;
                n = strlen(notice);
                if (n + total - skip <= l->max_size || n >= l->max_size)
                        break;
                want = total - skip - (n + total - skip - l->max_size);
        }
        skip_old = MIN(skip, l->old_size);
        skip_cur = skip - skip_old;
        l->dropped += skip;

        tmp_fd = openat(l->dir_fd, SPOOL_LOG_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
        if (tmp_fd < 0)
                r = -errno;
        else {
                r = loop_write(tmp_fd, notice, n);
                if (r >= 0 && old_fd >= 0)
                        r = copy_range(old_fd, skip_old, l->old_size - skip_old, tmp_fd);
                if (r >= 0)
                        r = copy_range(cur_fd, skip_cur, l->cur_size - skip_cur, tmp_fd);
                if (r >= 0 && fsync(tmp_fd) < 0)
                        r = -errno;
                /* The rotated part is in the merged copy now: drop it before the copy takes the
                 * log's name, so that log and log.old never hold more than LogMax together. */
                if (r >= 0 && l->rotated)
                        (void) unlinkat(l->dir_fd, SPOOL_LOG_OLD, 0);
                if (r >= 0 && renameat(l->dir_fd, SPOOL_LOG_TMP, l->dir_fd, SPOOL_LOG) < 0)
                        r = -errno;
        }
        if (r == -ENOSPC || r == -EDQUOT) {
                l->dropped -= skip;
                return finish_in_place(l);
        }
        if (r < 0) {
                (void) unlinkat(l->dir_fd, SPOOL_LOG_TMP, 0);
                return r;
        }
        return 0;
}

char *job_log_tail(const JobLog *l) {
        size_t total = 1;
        char *s, *p;

        for (size_t i = 0; i < l->tail_n; i++)
                if (l->tail[i])
                        total += strlen(l->tail[i]) + 1;
        s = p = malloc(total);
        if (!s)
                return NULL;
        *p = 0;
        for (size_t k = 0; k < l->tail_n; k++) {
                const char *t = l->tail[(l->tail_next + k) % l->tail_n];
                if (!t)
                        continue;
                if (p != s)
                        *p++ = '\n';
                p = stpcpy(p, t);
        }
        return s;
}

uint64_t job_log_dropped(const JobLog *l) {
        return l->dropped;
}
