/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

typedef struct Manager Manager;

/* A local job's squashfs mounts — its image's, its program's — and a lab member's image stay
 * mounted for a while after their last user (gateway-worker run
 * --image-linger=IMAGE_MOUNT_LINGER_SEC, --program-linger=PROGRAM_MOUNT_LINGER_SEC), so that the
 * next job or member of the same image or program does not mount it again (and finds its pages
 * cached). These unmount them when nobody needs
 * them any more. */

/* Long enough for a stream of jobs with pauses between them (a client's loop, a queue), short
 * enough that an unused image does not keep a loop device for long. */
#define IMAGE_MOUNT_LINGER_SEC 30

/* A local job or lab member ended: its mounts may linger; a sweep follows once the time is up. */
void lingering_mounts_sandbox_ended(Manager *m);
/* A squashfs was removed or replaced (an image removed or expired, a program's layer): its
 * lingering mount goes now. */
void lingering_mounts_sweep(Manager *m);
/* Shutdown: every mount without users goes (running jobs keep theirs). */
void lingering_mounts_done(Manager *m);
