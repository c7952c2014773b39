/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Lingering image and program mounts (lingering-mounts.h). The mounts are the workers'
 * (RUNTIME/worker/images/, src/worker/squashfs-mount.c: one entry per squashfs, refcounted by the
 * workers using it, under a lock file); gatewayd shares their mount namespace (they are its
 * children), so sweeping is a few umount(2) calls under that lock, done here rather than in a
 * process of its own: it happens rarely (a timer, a removal, a re-pull, the shutdown) and never
 * on a job's path. */
#include "log.h"
#include "manager.h"
#include "program.h"
#include "lingering-mounts.h"
#include "../worker/squashfs-mount.h"

static int sweep(Manager *m, bool all) {
        _cleanup_free_ char *dir = NULL;
        int r;

        if (asprintf(&dir, "%s/worker", m->runtime_dir) < 0)
                return log_oom();
        r = image_mounts_sweep(dir, all);
        if (r < 0)
                log_warning_errno(r, "Cannot unmount the lingering mounts in %s: %m", dir);
        return r;
}

static int on_sweep_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        /* Mounts still lingering (a later job) are looked at again when their time is up. */
        if (sweep(m, false) > 0)
                lingering_mounts_sandbox_ended(m);
        return 0;
}

void lingering_mounts_sandbox_ended(Manager *m) {
        /* the shorter time: a sweep that leaves some lingering comes again (on_sweep_timer) */
        uint64_t usec = (MIN(IMAGE_MOUNT_LINGER_SEC, PROGRAM_MOUNT_LINGER_SEC) + 1) * USEC_PER_SEC;

        if (!m->lingering_sweep) {
                if (sd_event_add_time_relative(m->event, &m->lingering_sweep, CLOCK_BOOTTIME, usec, USEC_PER_SEC,
                                               on_sweep_timer, m) < 0) {
                        log_oom();
                        return;
                }
                (void) sd_event_source_set_description(m->lingering_sweep, "lingering-mounts-sweep");
        } else
                (void) sd_event_source_set_time_relative(m->lingering_sweep, usec);
        (void) sd_event_source_set_enabled(m->lingering_sweep, SD_EVENT_ONESHOT);
}

void lingering_mounts_sweep(Manager *m) {
        (void) sweep(m, false);
}

void lingering_mounts_done(Manager *m) {
        m->lingering_sweep = sd_event_source_disable_unref(m->lingering_sweep);
        (void) sweep(m, true);
}
