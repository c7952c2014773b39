/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

/* The JSON-lines events a gateway-worker reports to gatewayd (DESIGN.md §3,
 * docs/worker-pull.md): one object per line with "event" (the kind) and "time" (µs since the
 * epoch). The worker writes them with worker_event_format(), gatewayd reads them with
 * worker_event_parse(); this file is the one definition of both sides. */

typedef enum WorkerEventKind {
        WORKER_EVENT_PROGRESS,  /* pull: bytesDone, bytesTotal, layersDone, layersApplied, layersTotal */
        WORKER_EVENT_STATUS,    /* status (image or job status), message, startedAt (run: RUNNING) */
        WORKER_EVENT_INTERIM,   /* run: index, result (an interim result, also in interim.jsonl) */
        WORKER_EVENT_LOG,       /* level + message (a note of the worker), or stream + line
                                 * (+ truncated) (a line of the job's output, also in the log) */
        WORKER_EVENT_DONE,      /* the last one: pull: squashfs, meta, size, cached | resolveOnly,
                                 * timings; run: exit.json's content */
        _WORKER_EVENT_KIND_MAX,
        _WORKER_EVENT_KIND_INVALID = -1,
} WorkerEventKind;

const char *worker_event_kind_to_string(WorkerEventKind k);
WorkerEventKind worker_event_kind_from_string(const char *s);

/* A parsed event line. The strings and objects point into object and live as long as it. */
typedef struct WorkerEvent {
        WorkerEventKind kind;   /* _WORKER_EVENT_KIND_INVALID for a kind this gatewayd does not know */
        json_object *object;    /* the whole line (owned) */
        uint64_t time_usec;
        union {
                struct {
                        uint64_t bytes_done, bytes_total;
                        unsigned layers_done, layers_applied, layers_total;
                } progress;
                struct {
                        const char *status, *message;
                        uint64_t started_usec;          /* 0 = not given */
                } status;
                struct {
                        unsigned index;
                        json_object *result;
                } interim;
                struct {
                        const char *level, *message;    /* a note of the worker */
                        const char *stream, *line;      /* a line of the job's output */
                        bool truncated;
                } log;
        };
} WorkerEvent;

/* Parses one line (without its "\n"). -EBADMSG if it is not a JSON object with a string
 * "event"; an unknown kind is not an error (kind = _WORKER_EVENT_KIND_INVALID). */
int worker_event_parse(const char *line, WorkerEvent *ret);
void worker_event_done(WorkerEvent *e);

/* The line for an event: fields (taken over, may be NULL) with "event" and "time" added,
 * compact JSON and a "\n". */
int worker_event_format(WorkerEventKind kind, json_object *fields, uint64_t time_usec, char **ret_line,
                        size_t *ret_len);
