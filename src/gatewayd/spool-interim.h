/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "job.h"

/* Announces (platform_callbacks->on_interim) the complete lines of the spool's interim.jsonl
 * appended since *offset, as the worker's event pipe would have, for platforms that follow the
 * spool instead (re-attached local workers, Slurm). Advances *offset past them and *index by one
 * a line; a line still being written waits for the next look. */
void spool_interim_announce(Job *j, const char *spool_dir, uint64_t *offset, unsigned *index);
