/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* Jobs on this host (platform_local_vtable in platform.h): `gateway-worker run SPOOL` as a child
 * in a session of its own (so that it outlives gatewayd), reporting JSON lines on a pipe. The
 * spool is the truth: after a restart a worker is re-attached through its locked worker.pid, or
 * its outcome is collected from exit.json. */

/* Parses RFC 3339 "2026-11-21T18:31:22.427Z" into µs since the epoch; 0 on failure. */
uint64_t parse_timestamp_iso(const char *s);


/* A result saved with the job's token from outside the job (platform.h, save_result) into the
 * worker's spool dir as saved-result.json, which the worker takes when the job ends. -ESTALE: the
 * worker has written exit.json there (too late). Shared by the platforms whose spool gatewayd
 * reaches (local, Slurm). */
int spool_save_result(const char *dir, const char *json_text);
