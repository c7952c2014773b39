/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdio.h>
#include <stdlib.h>

/* A job's spool directory, the durable state of a job (DESIGN.md §3), as gatewayd creates it and
 * gateway-worker run fills it. Both sides name its files through these, so the layout is defined
 * in one place.
 *
 *   input/                 the submission's data and params (gatewayd), mounted at /var/input
 *   output/                result files the job wrote (PlanQK GET /{id}/result/{file}; optional)
 *   job.json               the job spec for the worker (gatewayd, before the worker starts)
 *   .exit.json.reserve     blocks set aside for exit.json (gatewayd; the worker renames it)
 *   worker.pid             the running worker's pid, locked while it lives (worker)
 *   worker.err             the worker's stderr (gatewayd opens it for the worker)
 *   log, log.old           the job's output; log.old is the previous segment (worker)
 *   interim.jsonl          interim results, one JSON value a line (worker)
 *   result.json            the result (worker, before exit.json)
 *   saved-result.json      a program job's save_result (the worker's result endpoint or gatewayd's
 *                          route, while the job runs); taken into result.json by the worker
 *   exit.json              the outcome, written last: the commit point (worker)
 */

#define SPOOL_INPUT_DIR         "input"
#define SPOOL_OUTPUT_DIR        "output"
#define SPOOL_JOB_SPEC          "job.json"
#define SPOOL_EXIT_RESERVE      ".exit.json.reserve"
#define SPOOL_WORKER_PID        "worker.pid"
#define SPOOL_WORKER_ERR        "worker.err"
#define SPOOL_LOG               "log"
#define SPOOL_LOG_OLD           "log.old"
#define SPOOL_LOG_TMP           "log.tmp"
#define SPOOL_INTERIM           "interim.jsonl"
#define SPOOL_RESULT            "result.json"
#define SPOOL_SAVED_RESULT      "saved-result.json"
#define SPOOL_EXIT              "exit.json"

/* "<spool_dir>/<name>", newly allocated; NULL when out of memory. */
static inline char *spool_path(const char *spool_dir, const char *name) {
        char *p;

        return asprintf(&p, "%s/%s", spool_dir, name) < 0 ? NULL : p;
}
