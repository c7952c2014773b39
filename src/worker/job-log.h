/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The job log: SPOOLDIR/log, the job's stdout and stderr (whole lines, in arrival order) plus the
 * worker's own notes. It keeps the last max_size bytes, and never takes more than that of the
 * disk: while the job runs, "log" is rotated to "log.old" whenever it would grow past half the
 * limit, so the two segments together stay within it; job_log_finish() cuts the tail of both
 * together into the final "log", behind a one-line truncation notice, all within the limit. If
 * the disk is too full for that, the current segment is kept as "log" and "log.old" dropped. A
 * reader tailing "log" while the job runs sees the current segment. It also remembers the last
 * few lines for error messages. */

typedef struct JobLog JobLog;

int job_log_open(int dir_fd, uint64_t max_size, size_t tail_lines, JobLog **ret);
JobLog *job_log_free(JobLog *l);
static inline void job_log_freep(JobLog **l) {
        job_log_free(*l);
}
#define _cleanup_job_log_ __attribute__((cleanup(job_log_freep)))

/* One piece of a line as delivered by the line splitter: a "\n" follows unless continued. */
int job_log_line(JobLog *l, const char *data, size_t len, bool continued);
/* A note from the worker itself, marked as such. */
int job_log_note(JobLog *l, const char *level, const char *message);

/* Writes the final "log" (truncated if needed) and removes "log.old". */
int job_log_finish(JobLog *l);

/* The remembered last lines joined with "\n" (never NULL unless out of memory). */
char *job_log_tail(const JobLog *l);
uint64_t job_log_dropped(const JobLog *l);
