/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <signal.h>
#include <string.h>

#include "cancel.h"

static volatile sig_atomic_t cancel_signal = 0;

static void on_signal(int sig) {
        cancel_signal = sig;
}

void cancel_setup(void) {
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        /* no SA_RESTART: a blocking waitpid() must return so we can stop mksquashfs */
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
}

bool cancelled(void) {
        return cancel_signal != 0;
}
