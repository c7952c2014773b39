/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/resource.h>

#include "fd-limit.h"
#include "log.h"

static struct rlimit saved = { RLIM_INFINITY, RLIM_INFINITY };
static bool raised;

void fd_limit_raise(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
                log_warning("Failed to read RLIMIT_NOFILE: %m");
                return;
        }
        if (rl.rlim_cur >= rl.rlim_max)
                return;

        saved = rl;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
                log_warning("Failed to raise RLIMIT_NOFILE to %llu: %m", (unsigned long long) rl.rlim_max);
                return;
        }
        raised = true;
        log_debug("Raised RLIMIT_NOFILE from %llu to %llu.", (unsigned long long) saved.rlim_cur,
                  (unsigned long long) rl.rlim_cur);
}

void fd_limit_restore(void) {
        if (raised)
                (void) setrlimit(RLIMIT_NOFILE, &saved);
}
