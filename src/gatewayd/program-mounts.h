/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

typedef struct Manager Manager;

/* A program's squashfs stays mounted for a while after its last local job
 * (gateway-worker run --program-linger=PROGRAM_MOUNT_LINGER_SEC), so that the program's next job
 * does not mount it again. These unmount it when nobody needs it any more. */

/* A program job ended: its mount may linger; a sweep follows once the time is up. */
void program_mounts_job_ended(Manager *m);
/* A layer was removed (program removed or replaced): its lingering mount goes now. */
void program_mounts_sweep(Manager *m);
/* Shutdown: every mount without users goes (running jobs keep theirs). */
void program_mounts_done(Manager *m);
