/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "macro.h"

/* The worker reports to gatewayd as JSON lines (DESIGN.md §3): one object per line with an
 * "event" key ("progress", "status", "interim", "log", "done"). Lines go to the events fd, which
 * is stdout unless --events-fd says otherwise; writes are whole lines so a reader never sees a
 * torn object. Thread-safe. */

void events_set_fd(int fd);
/* If the events fd is non-blocking and stays full this long, the reader counts as gone and no
 * further events are written (default 30 s). */
void events_set_stall_timeout(int msec);

/* Takes ownership of fields (may be NULL); adds "event" and "time" (µs since the epoch). */
int events_emit(const char *event, json_object *fields);

int events_emit_log(const char *level, const char *format, ...) _printf_(2, 3);
int events_emit_status(const char *status, const char *message);
