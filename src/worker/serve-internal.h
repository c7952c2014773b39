/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared between serve.c (connection, requests), serve-jobs.c (the node's job spool) and
 * serve-images.c (the image directory). Protocol: docs/worker-serve.md. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

#define SERVE_PROTOCOL_VERSION 1
#define SERVE_MAX_ATTACHES 1024
/* Beyond this much unsent output, followed jobs are not read further until the peer catches up. */
#define SERVE_OUTPUT_HIGH_WATER (4 * 1024 * 1024)

typedef enum LaunchMode {
        LAUNCH_AUTO,
        LAUNCH_SYSTEMD,
        LAUNCH_DETACHED,
} LaunchMode;

typedef struct ServeArgs {
        const char *state_dir;
        char *image_dir;
        unsigned slots;
        size_t max_request;
        LaunchMode launch;
        const char *systemd_run;
        char *worker;                   /* executable that runs a job */
        bool worker_needs_verb;         /* gateway-worker (+ "run") rather than gateway-worker-run */
        const char *runtime_dir;        /* the jobs' shared image mounts ("run --runtime-dir") */
        char **run_args;                /* extra options for "run" */
        size_t n_run_args;
        double lost_grace_sec;          /* a launched job without a worker this long is lost */
} ServeArgs;

typedef struct Attach Attach;

typedef struct Serve {
        ServeArgs *args;
        char *state_path;               /* absolute, resolved */
        char *runtime_arg;              /* "--runtime-dir=..." for the worker */
        int state_fd;
        int jobs_fd;                    /* STATE/jobs */
        int image_fd;
        int inotify_fd;

        char *out;                      /* unsent output */
        size_t out_len, out_off, out_size;
        bool out_broken;                /* the peer is gone */

        Attach *attaches;
        size_t n_attaches;
} Serve;

/* Output: one JSON line, "event" first; "req" is copied from the request when it had one. */
int serve_send(Serve *s, const char *event, json_object *req, json_object *fields);
int serve_send_error(Serve *s, json_object *req, const char *code, const char *format, ...) _printf_(4, 5);
static inline bool serve_output_full(const Serve *s) {
        return s->out_len - s->out_off >= SERVE_OUTPUT_HIGH_WATER;
}

bool serve_job_id_is_valid(const char *id);
bool serve_image_id_is_valid(const char *id);

/* Request handlers: they answer (an event or an error) themselves; a negative return is only
 * for failures of the connection itself. */
int serve_job_start(Serve *s, json_object *req);
int serve_job_attach(Serve *s, json_object *req);
int serve_job_cancel(Serve *s, json_object *req);
int serve_job_remove(Serve *s, json_object *req);
int serve_job_list(Serve *s, json_object *req);
int serve_job_read(Serve *s, json_object *req);
int serve_job_save_result(Serve *s, json_object *req);
int serve_image_install(Serve *s, json_object *req);
int serve_image_remove(Serve *s, json_object *req);
int serve_image_list(Serve *s, json_object *req);

void serve_jobs_cleanup(Serve *s);

/* Ids of jobs that have not finished (for hello). */
json_object *serve_running_jobs(Serve *s);

/* Followed jobs: called when inotify or the timer says something may have changed. */
int serve_attaches_pump(Serve *s);
void serve_attaches_on_inotify(Serve *s, int wd);
void serve_attaches_free(Serve *s);
bool serve_attaches_active(const Serve *s);

char *base64_encode(const void *data, size_t size);
int read_file_at(int dir_fd, const char *name, size_t max, char **ret, size_t *ret_size);
