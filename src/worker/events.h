/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "macro.h"
#include "worker-events.h"

/* The worker reports to gatewayd as JSON lines (DESIGN.md §3), defined in worker-events.h: one
 * object per line with an "event" key ("progress", "status", "interim", "log", "done"). Lines go to the events fd, which
 * is stdout unless --events-fd says otherwise; writes are whole lines so a reader never sees a
 * torn object. Thread-safe. */

void events_set_fd(int fd);
/* If the events fd is non-blocking and stays full this long, the reader counts as gone and no
 * further events are written (default 30 s). */
void events_set_stall_timeout(int msec);

/* At most this many bytes of events (0: no limit, the default); past it only "done" is written,
 * after one warning. For events kept in a file (a node's events.jsonl), so that a job printing
 * without end cannot fill the disk twice over: its log is bounded and remains the truth. */
void events_set_max_bytes(uint64_t max);

/* Takes ownership of fields (may be NULL); adds "event" and "time" (µs since the epoch). */
int events_emit(WorkerEventKind kind, json_object *fields);

int events_emit_log(const char *level, const char *format, ...) _printf_(2, 3);
int events_emit_status(const char *status, const char *message);

/* The first failure of an operation, as a human-readable sentence. Worker code that fails calls
 * worker_error_errno() where the cause is known best (a 404 from the registry, a digest mismatch)
 * so that the final FAILURE status carries that sentence rather than a bare errno. Logs the
 * message to stderr too and returns -abs(error). Thread-safe; later messages are only logged. */
int worker_error_errno(int error, const char *format, ...) _printf_(2, 3);
const char *worker_error_message(void);
/* Forgets the recorded error: for a failure the caller recovers from (a pull staged in memory that
 * outgrew its share and starts over on disk). */
void worker_error_clear(void);
/* Like worker_error_errno() but replaces the recorded message: for when a later finding explains
 * an earlier failure (a layer that fails to decompress because its cached blob is corrupt). */
int worker_error_replace_errno(int error, const char *format, ...) _printf_(2, 3);
