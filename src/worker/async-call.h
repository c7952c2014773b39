/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <pthread.h>
#include <stdbool.h>

/* A call run on a thread of its own while the caller goes on: at the end of a job, to wait for
 * one disk flush while the worker cleans up or flushes another file. */
typedef struct AsyncCall {
        pthread_t thread;
        bool started;
        void (*fn)(void *arg);
        void *arg;
} AsyncCall;

/* Runs fn(arg), on a thread if one can be had, else here and now. */
void async_call_start(AsyncCall *a, void (*fn)(void *arg), void *arg);
/* Returns once fn has returned. */
void async_call_wait(AsyncCall *a);
