/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spool-layout.h"

/* Space set aside in a job's spool so that its final state can always be written, however full
 * the file system gets while the job runs: gatewayd allocates SPOOL_RESERVE_NAME when it creates
 * the spool (a submission that cannot is refused), the worker writes exit.json into those
 * blocks and renames the file into place. Overwriting allocated blocks and a rename in the same
 * directory need no new space on tmpfs, ext4 or xfs (not so on copy-on-write file systems). */

#define SPOOL_RESERVE_NAME SPOOL_EXIT_RESERVE
#define SPOOL_RESERVE_SIZE (64U * 1024U)

/* Allocates size bytes to dir_fd/name (created, or grown if it exists). Returns the open fd. */
int reserve_file_at(int dir_fd, const char *name, uint64_t size);

/* Writes data into the reserved file (opened with reserve_file_at()), cuts it to len, fsyncs it
 * and renames it to name, then fsyncs the directory. -EFBIG if len exceeds what was reserved. */
int reserve_file_commit(int dir_fd, int reserve_fd, const char *reserve_name, const char *name,
                        const void *data, size_t len);

/* Whether an error means "out of space" (full file system or quota). */
static inline bool errno_is_disk_full(int r) {
        return r == -ENOSPC || r == -EDQUOT || r == ENOSPC || r == EDQUOT;
}
