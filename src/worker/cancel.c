/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "cancel.h"

/* Read by the pull's inflate and writer threads too: a lock-free atomic is both async-signal-safe
 * and race-free between threads, which volatile sig_atomic_t is not. */
static atomic_int cancel_signal = 0;

static void on_signal(int sig) {
        atomic_store_explicit(&cancel_signal, sig, memory_order_relaxed);
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
        return atomic_load_explicit(&cancel_signal, memory_order_relaxed) != 0;
}
