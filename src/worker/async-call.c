/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <signal.h>

#include "async-call.h"

static void *trampoline(void *userdata) {
        AsyncCall *a = userdata;

        a->fn(a->arg);
        return NULL;
}

void async_call_start(AsyncCall *a, void (*fn)(void *arg), void *arg) {
        sigset_t all, old;

        *a = (AsyncCall) { .fn = fn, .arg = arg };
        /* Signals stay with the main thread, which takes them by signalfd. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        a->started = pthread_create(&a->thread, NULL, trampoline, a) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (!a->started)
                fn(arg);
}

void async_call_wait(AsyncCall *a) {
        if (a->started)
                pthread_join(a->thread, NULL);
        a->started = false;
}
