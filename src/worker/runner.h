/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "job-spec.h"
#include "markers.h"

/* Runs one job to its end: mounts the image, sets up limits, starts bwrap + gateway-job-init,
 * reads stdout/stderr into the log and the marker parser, streams events, enforces the time
 * limit and cancellation, and reports how it ended. The caller writes the spool's commit files. */

typedef struct RunnerOptions {
        const char *bwrap;
        const char *init;
        const char *runtime_dir;
        MarkerLimits limits;
        uint64_t log_max;
        unsigned tail_lines;
        uint64_t kill_grace_usec;
        uint64_t default_pids;
        bool use_cgroups;
        unsigned program_linger_sec;    /* a program's squashfs stays mounted this long after its last job */
        unsigned image_linger_sec;      /* the same for the job's image */
} RunnerOptions;

typedef struct JobOutcome {
        const char *status;             /* "SUCCEEDED", "FAILED", "CANCELLED" */
        int exit_code;                  /* -1: did not exit normally */
        int signal;                     /* 0: not killed by a signal */
        char *error_code;               /* NULL on success */
        char *error_detail;
        int64_t started_at, ended_at;   /* µs since the epoch; started_at 0: never started */
        char *result;                   /* raw JSON text, NULL: none */
        size_t result_len;
        size_t interim_count;
        uint64_t log_dropped;
} JobOutcome;

void job_outcome_done(JobOutcome *o);

/* Records the outcome in two steps: result, which writes result.json while the job's log is
 * flushed on another thread, and outcome (exit.json, the done event), called once both are on
 * disk with the log's final figures in o. What they return, runner_run() returns. */
typedef struct RunnerCommit {
        int (*result)(JobOutcome *o, void *userdata);
        int (*outcome)(JobOutcome *o, void *userdata);
} RunnerCommit;

/* signal_fd: a signalfd for SIGTERM/SIGINT (cancel). spool_path: absolute. Returns < 0 only when
 * the spool itself cannot be written; every failure of the job is an outcome. Once the outcome
 * is known (the job's log finished), commit is called, while the sandbox's clean-up (unmounts,
 * cgroup removal) runs on a thread: the outcome does not wait for it, the return does. */
int runner_run(const JobSpec *spec, int spool_fd, const char *spool_path, int signal_fd,
               const RunnerOptions *opts, JobOutcome *ret, const RunnerCommit *commit, void *userdata);

int64_t now_realtime_usec(void);
