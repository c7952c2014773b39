/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include <json-c/json.h>

#include "job.h"

/* The worker's commit point, exit.json of a spool, as the platforms that read it (local,
 * Slurm) see it. code and detail point into json: valid until spool_exit_done(). */
typedef struct SpoolExit {
        json_object *json;
        JobState state;          /* JOB_UNKNOWN unless a terminal state */
        int exit_code;           /* -1 when absent */
        const char *code, *detail;
        uint64_t started_usec, ended_usec;
} SpoolExit;

/* Returns 0, or -EBADMSG when text is not a JSON object ("exit.json of the worker is
 * unreadable"). */
int spool_exit_parse(const char *text, SpoolExit *ret);
void spool_exit_done(SpoolExit *e);
