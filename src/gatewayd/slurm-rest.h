/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"

/* An asynchronous client of slurmrestd (Slurm 22.05, OpenAPI v0.0.38, falling back to v0.0.37
 * and v0.0.36 when a path answers 404), on the sd-event loop: libcurl's multi interface driven
 * by sd-event IO and timer sources, so no call ever blocks the loop on Slurm.
 *
 * Every request acts as a user. With a JWT key (the site's AuthAltParameters=jwt_key file) a
 * short-lived token is minted for that user per request; with a token file (one token of the
 * SlurmUser) the token is sent with X-SLURM-USER-NAME naming the user. Root is refused either
 * way: a root job would run as root on the cluster (facts/slurm.md §2).
 *
 * Each attempt has a timeout. Transport errors and slurmrestd's 500 with error -1 or 5005 (it
 * could not talk to slurmctld, or slurmctld refused the token: the two look alike) are retried
 * after a growing delay, a few times; then the callback gets the error and a message that says
 * which of the two it may be. A submit is only retried when it cannot have reached slurmctld
 * (no connection, or -1/5005), so a retry never queues a job twice.
 *
 * The answer parsers below are pure functions of the HTTP status and body, unit-tested with
 * captured answers and fit for a fuzz target. */

/* ---- pure part: answers ------------------------------------------------------------------ */

typedef enum SlurmOutcome {
        SLURM_OUTCOME_OK,
        SLURM_OUTCOME_RETRY,    /* transport trouble, or -1/5005: slurmctld unreachable or token refused */
        SLURM_OUTCOME_GONE,     /* 2017: slurmctld does not know the job (purged after MinJobAge) */
        SLURM_OUTCOME_FAILED,   /* refused for good: the message says why */
} SlurmOutcome;

#define SLURM_ERROR_INVALID_JOB_ID 2017
#define SLURM_ERROR_ACCESS_DENIED 2002
#define SLURM_ERROR_ZERO_BYTES 5005

typedef struct SlurmAnswer {
        SlurmOutcome outcome;
        int error;              /* negative errno for the caller: 0, -ECOMM, -ESRCH, -EPERM, -EACCES, ... */
        int slurm_error;        /* the first error_number/error_code, 0 if none */
        char *message;          /* why it failed, for humans; NULL when OK */
        json_object *json;      /* the parsed body (NULL if it was not JSON) */
} SlurmAnswer;

void slurm_answer_done(SlurmAnswer *a);

/* Classifies one answer of slurmrestd. A 200 whose "errors" array is not empty is a failure (a
 * submit can be accepted *and* carry errors: the job would pend forever). Returns 0 (the
 * classification is in ret) or -ENOMEM. */
int slurm_answer_parse(long http_status, const char *body, size_t len, SlurmAnswer *ret);

/* POST job/submit: the job id of an OK answer. -EBADMSG if there is none. */
int slurm_submit_job_id(json_object *answer, uint32_t *ret_job_id);

typedef enum SlurmJobPhase {
        SLURM_JOB_PENDING,      /* PENDING, CONFIGURING, REQUEUED, held, ... */
        SLURM_JOB_RUNNING,      /* RUNNING, COMPLETING, SUSPENDED, ... */
        SLURM_JOB_COMPLETED,    /* the batch script exited 0: the outcome is in the spool */
        SLURM_JOB_FAILED,       /* FAILED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, ... */
        SLURM_JOB_CANCELLED,
        _SLURM_JOB_PHASE_MAX,
        _SLURM_JOB_PHASE_INVALID = -EINVAL,
} SlurmJobPhase;

const char *slurm_job_phase_to_string(SlurmJobPhase p);
/* Maps job_state (a base state, or a flag such as COMPLETING shown instead of it). Unknown
 * states are _SLURM_JOB_PHASE_INVALID: the caller keeps polling. */
SlurmJobPhase slurm_job_phase_from_state(const char *job_state);
/* A sentence for a FAILED/CANCELLED phase: the state, its reason, the exit status. Static. */
const char *slurm_job_state_reason(const char *job_state);

typedef struct SlurmJobInfo {
        uint32_t job_id;
        char *name;
        char *state;            /* job_state as Slurm says it */
        char *state_reason;
        char *user_name;
        SlurmJobPhase phase;
        int exit_code;          /* raw wait status (22.05), -1 if not given */
        int64_t start_time, end_time;  /* seconds since the epoch, 0 if not given */
} SlurmJobInfo;

void slurm_job_info_done(SlurmJobInfo *j);
/* GET job/{id}: the first (only) job of an OK answer. -EBADMSG if it is missing or malformed. */
int slurm_job_info_from_json(json_object *answer, SlurmJobInfo *ret);

/* GET jobs: the newest job called name of user (gatewayd-<id> is unique per gatewayd job), and
 * how many there are. -ENOENT if none. For recovery when a submit's fate is unknown (a timeout
 * after the request was sent) or the job id was not committed before a crash. */
int slurm_jobs_find_by_name(json_object *answer, const char *name, const char *user, SlurmJobInfo *ret,
                            unsigned *ret_matches);

typedef struct SlurmPartition {
        char *name;
        char *state;            /* UP, DOWN, DRAIN, INACTIVE (as given; may be NULL) */
        uint32_t nodes, cpus;
} SlurmPartition;

void slurm_partitions_free(SlurmPartition *p, size_t n);
/* GET partitions. */
int slurm_partitions_from_json(json_object *answer, SlurmPartition **ret, size_t *ret_n);

/* GET nodes: an array of {name, state, slurmState (lower case), slurmStateFlags, reason, cpus,
 * allocatedCpus, partitions} for the platforms surface; state is one of the surfaces' (up,
 * draining, unreachable: slurm_node_state_to_surface()). */
int slurm_nodes_from_json(json_object *answer, json_object **ret);
const char *slurm_node_state_to_surface(const char *state, json_object *flags);

typedef struct SlurmPing {
        char *hostname;
        bool responding;        /* slurmctld's "ping": "UP" */
        char *version;          /* meta.Slurm.release, e.g. "22.05.8" */
} SlurmPing;

void slurm_ping_done(SlurmPing *p);
/* GET ping: OK when at least one controller answers "UP". */
int slurm_ping_from_json(json_object *answer, SlurmPing *ret);

/* ---- pure part: requests ----------------------------------------------------------------- */

typedef struct SlurmJobDesc {
        const char *name;               /* gatewayd-<job id> */
        const char *script;             /* slurm-script.h */
        const char *partition, *account;        /* NULL: the cluster's default */
        const char *cwd;                /* current_working_directory: the spool dir */
        const char *standard_output, *standard_error;   /* absolute; NULL: /dev/null */
        char **environment;             /* "K=V" strv; NULL: PATH only */
        uint64_t time_limit_usec;       /* 0: the partition's; rounded up to minutes */
        uint64_t memory_bytes;          /* 0: the partition's; rounded up to MB per node */
        const char *comment;
} SlurmJobDesc;

/* The body of POST job/submit: always no_requeue (a requeued job would run twice) and an
 * environment (22.05 refuses a submission without one). */
int slurm_submit_body(const SlurmJobDesc *d, json_object **ret);

/* ---- the asynchronous client --------------------------------------------------------------- */

typedef struct SlurmRestConfig {
        const char *url;                /* "unix:/path" or "http://host:port" / "https://..." */
        const char *jwt_key_file;       /* mint per-user tokens, or */
        const char *token_file;         /* one SlurmUser token ... */
        const char *token_user;         /* ... and its user (for the record; headers name each job's owner) */
        const char *ping_user;          /* user of ping/partitions in JWT key mode (default nobody) */
        uint64_t timeout_usec;          /* per attempt; default 10 s */
        unsigned attempts;              /* default 4 */
        uint64_t retry_delay_usec;      /* first retry's delay, doubled each time; default 200 ms */
        uint64_t token_lifetime_sec;    /* minted tokens; default 300 */
} SlurmRestConfig;

typedef struct SlurmRest SlurmRest;
typedef struct SlurmRestRequest SlurmRestRequest;

int slurm_rest_new(sd_event *event, const SlurmRestConfig *config, SlurmRest **ret);
/* Aborts every request in flight without calling its callback. Not from within a callback. */
SlurmRest *slurm_rest_free(SlurmRest *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(SlurmRest *, slurm_rest_free);
/* The API version in use, e.g. "v0.0.38". */
const char *slurm_rest_version(SlurmRest *r);

/* Every callback gets error 0 or a negative errno, and with an error a message (else NULL).
 * After the callback the request is freed. */
typedef void (*slurm_submit_handler_t)(SlurmRest *r, int error, uint32_t job_id, const char *message,
                                       void *userdata);
typedef void (*slurm_job_handler_t)(SlurmRest *r, int error, const SlurmJobInfo *job, const char *message,
                                    void *userdata);
typedef void (*slurm_done_handler_t)(SlurmRest *r, int error, const char *message, void *userdata);
typedef void (*slurm_ping_handler_t)(SlurmRest *r, int error, const SlurmPing *ping, const char *message,
                                     void *userdata);
typedef void (*slurm_partitions_handler_t)(SlurmRest *r, int error, const SlurmPartition *p, size_t n,
                                           const char *message, void *userdata);

/* nodes: the array of slurm_nodes_from_json(), borrowed for the call. */
typedef void (*slurm_nodes_handler_t)(SlurmRest *r, int error, json_object *nodes, const char *message,
                                      void *userdata);

/* ret_request may be NULL; a request handle is valid until its callback returns.
 * A submit that slurmrestd accepted with errors fails, with the job id given (not 0): the client
 * has already sent the DELETE for that job. */
int slurm_rest_submit(SlurmRest *r, const char *user, const SlurmJobDesc *desc, slurm_submit_handler_t cb,
                      void *userdata, SlurmRestRequest **ret_request);
/* error -ESRCH: slurmctld does not know the job (read the outcome from the spool). */
int slurm_rest_job(SlurmRest *r, const char *user, uint32_t job_id, slurm_job_handler_t cb, void *userdata,
                   SlurmRestRequest **ret_request);
/* GET jobs, then slurm_jobs_find_by_name(): error -ENOENT if Slurm has no such job (never
 * submitted, or purged). Lists the whole cluster: a recovery path, not for polling. */
int slurm_rest_find_job(SlurmRest *r, const char *user, const char *name, slurm_job_handler_t cb, void *userdata,
                        SlurmRestRequest **ret_request);
/* DELETE job/{id} (SIGKILL). A finished job is a success; -ESRCH when slurmctld no longer knows
 * the job (purged after MinJobAge): it has ended, read the spool. */
int slurm_rest_cancel(SlurmRest *r, const char *user, uint32_t job_id, slurm_done_handler_t cb,
                      void *userdata, SlurmRestRequest **ret_request);
int slurm_rest_ping(SlurmRest *r, slurm_ping_handler_t cb, void *userdata, SlurmRestRequest **ret_request);
int slurm_rest_partitions(SlurmRest *r, slurm_partitions_handler_t cb, void *userdata,
                          SlurmRestRequest **ret_request);
int slurm_rest_nodes(SlurmRest *r, slurm_nodes_handler_t cb, void *userdata, SlurmRestRequest **ret_request);
/* Drops a request without calling its callback. */
void slurm_rest_request_cancel(SlurmRestRequest *q);
