/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "markers.h"

/* Everything a job prints, taken apart: stdout and stderr are split into lines that go to the
 * job log (job-log.h) and out as "log" events; stdout also goes through the marker parser
 * (markers.h), whose interim results are appended to interim.jsonl and sent as "interim" events
 * at once, and whose warnings become worker notes in the log. Write errors of the log or
 * interim.jsonl are reported and otherwise ignored, except that running out of space is
 * remembered (job_output_disk_full()): the runner stops the job then. */

typedef enum JobStream {
        JOB_STDOUT,
        JOB_STDERR,
} JobStream;

typedef struct JobOutput JobOutput;

int job_output_open(int spool_fd, const MarkerLimits *limits, uint64_t log_max, unsigned tail_lines,
                    JobOutput **ret);
JobOutput *job_output_free(JobOutput *o);

int job_output_feed(JobOutput *o, JobStream stream, const char *data, size_t n);
/* A note of the worker: into the log (if o is not NULL) and out as a "log" event. */
void job_output_note(JobOutput *o, const char *level, const char *format, ...) __attribute__((format(printf, 3, 4)));
/* End of both streams: flushes partial lines, closes an open multiline block. */
void job_output_end(JobOutput *o);

const char *job_output_result(const JobOutput *o, size_t *ret_len);
size_t job_output_interim_count(const JobOutput *o);
/* Whether a write to the log or interim.jsonl failed for lack of space (ENOSPC, EDQUOT). */
bool job_output_disk_full(const JobOutput *o);
char *job_output_log_tail(const JobOutput *o);
/* Writes the final log (truncated as needed); returns the bytes dropped via *ret_dropped. */
int job_output_finish_log(JobOutput *o, uint64_t *ret_dropped);
