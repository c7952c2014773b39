/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "log.h"
#include "run.h"

/* Placeholder until the run verb lands (it is being built on its own branch). */
int verb_run(int argc, char *argv[]) {
        log_error("gateway-worker run is not available in this build.");
        return 1;
}
