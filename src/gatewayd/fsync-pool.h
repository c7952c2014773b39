/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

/* Flushes files to disk on a few threads, so that the event loop does not wait for the disk: a
 * submission's input must be durable before the row that points at it is committed, but nothing
 * else has to wait for that. Flushes of several submissions in flight overlap (the block layer
 * merges concurrent cache flushes) instead of queueing one after the other on the loop. */
typedef struct FsyncPool FsyncPool;

/* r: 0, or the first error of the fsync()s. Called on the event loop. */
typedef void (*FsyncPoolDone)(int r, void *userdata);

int fsync_pool_new(sd_event *e, FsyncPool **ret);
/* Waits for the fsync()s under way and calls every done callback that is due (on the caller). */
FsyncPool *fsync_pool_free(FsyncPool *p);

/* fsync()s the n_fds files, then closes them and calls done. Takes the fds, also on failure. */
int fsync_pool_sync(FsyncPool *p, int *fds, size_t n_fds, FsyncPoolDone done, void *userdata);
