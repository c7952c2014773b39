/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

#include "worker-events.h"

typedef struct Manager Manager;
typedef struct WorkerProcess WorkerProcess;

/* A gateway-worker child on the local host. Its JSON-line events (worker-events.h) arrive on a
 * pipe at fd 3 of the child and are handed over one parsed event at a time; on_exit is called
 * once, after the last event was delivered. */
typedef struct WorkerCallbacks {
        void (*on_event)(WorkerProcess *w, const WorkerEvent *event, void *userdata);
        /* status: exit code (>= 0) or -signal number */
        void (*on_exit)(WorkerProcess *w, int status, void *userdata);
} WorkerCallbacks;

typedef struct WorkerOptions {
        const char *path;         /* the binary; NULL: worker_binary_path() */
        char **argv;              /* argv after the binary name: { "pull", "--image-dir=…", ref, NULL } */
        bool own_session;         /* survive gatewayd (jobs); otherwise it dies with us (pulls) */
        bool drop_long_events;    /* an event line over the limit is dropped (jobs: the spool has
                                   * everything); otherwise it is a broken worker and killed */
        int stderr_fd;            /* > 2: the worker's stderr; otherwise gatewayd's (the journal) */
        int stdin_fd;             /* > 0: the worker's stdin (a pipe with secrets); otherwise /dev/null */
} WorkerOptions;

/* The one place gatewayd starts gateway-worker processes (pulls, and jobs on this host): fork,
 * fd 3 the events pipe, stdin (unless stdin_fd) and stdout on /dev/null, every other descriptor closed, signals and
 * RLIMIT_NOFILE as they were before gatewayd changed them. */
int worker_process_spawn(Manager *m, const WorkerOptions *o, const WorkerCallbacks *cb, void *userdata,
                         WorkerProcess **ret);
/* Kills a still running worker (SIGKILL), unless it runs in its own session. */
WorkerProcess *worker_process_free(WorkerProcess *w);
/* Who is told from now on (events, exit). */
void worker_process_set_callbacks(WorkerProcess *w, const WorkerCallbacks *cb, void *userdata);
pid_t worker_process_pid(WorkerProcess *w);
int worker_process_kill(WorkerProcess *w, int sig);

/* The gateway-worker binary: "WorkerPath" if set, else $GATEWAYD_WORKER, else next to gatewayd
 * (installed), else ../worker/ (build tree), else the installed one. */
const char *worker_binary_path(Manager *m);

/* The binary for "run" (jobs, lab members): gateway-worker-run, "gateway-worker run" without the
 * pull verb's libraries, which would add ~10 ms of dynamic loading to every start (more when
 * several start at once). It is used when it sits next to a worker called gateway-worker (as
 * installed, and in the build tree); any other worker, e.g. a wrapper, gets "run" as its first
 * argument. Sets *ret_verb to whether the verb is needed. */
const char *worker_run_binary_path(Manager *m, bool *ret_verb);
