/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "log.h"
#include "pull.h"

/* Placeholder until the pull verb lands (it is being built on its own branch). */
int verb_pull(int argc, char *argv[]) {
        log_error("gateway-worker pull is not available in this build.");
        return 1;
}
