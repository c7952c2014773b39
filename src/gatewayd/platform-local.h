/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "gw-error.h"
#include "image.h"
#include "job.h"
#include "service.h"

/* Jobs on this host: `gateway-worker run SPOOL` as a child in a session of its own (so that it
 * outlives gatewayd), reporting JSON lines on a pipe. The spool is the truth: after a restart a
 * worker is re-attached through its locked worker.pid, or its outcome is collected from
 * exit.json. */

int platform_local_start(Job *j, const Service *s, const Image *image, GwError *e);
/* For a job found PENDING or RUNNING at startup. Returns 1 if the job was re-attached or
 * concluded, 0 if no worker was ever started for it (the caller starts one). */
int platform_local_recover(Job *j);
/* SIGTERM to the worker (which stops the job and commits CANCELLED), SIGKILL after a grace. */
int platform_local_cancel(Job *j);

/* Parses RFC 3339 "2026-11-21T18:31:22.427Z" into µs since the epoch; 0 on failure. */
uint64_t parse_timestamp_iso(const char *s);

/* One event line of "gateway-worker run" (docs/worker-run.md), as far as gatewayd acts on it. */
typedef enum JobEventKind {
        JOB_EVENT_OTHER,        /* ignored ("done" repeats exit.json, which is read at exit) */
        JOB_EVENT_RUNNING,
        JOB_EVENT_LOG,
        JOB_EVENT_INTERIM,
} JobEventKind;

typedef struct JobEvent {
        JobEventKind kind;
        uint64_t started_usec;  /* RUNNING */
        unsigned index;         /* INTERIM */
        char *result;           /* INTERIM: the result as JSON text */
} JobEvent;

/* -EBADMSG if the line is not JSON. */
int job_event_parse(const char *line, JobEvent *ret);
void job_event_done(JobEvent *ev);
