/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "caller.h"
#include "gw-error.h"
#include "job.h"

/* The job registry: submission, limits, the state machine's transitions, cancellation and
 * recovery. Like the service registry, every transition is committed to the database before it
 * is applied in memory and announced (bus signals, HTTP readers), so what a client has seen
 * survives a crash. Authorization is the surfaces' job; the registry only enforces limits. */

int job_registry_load(Manager *m);
/* Once the bus is up: re-attaches to workers, resumes PENDING jobs, starts the scheduler. */
void job_registry_start(Manager *m);
void job_registry_free(Manager *m);

Job *job_registry_get(Manager *m, const char *id);

/* data and params may be NULL ({}). Refuses (LimitExceeded) beyond ActiveJobsPerUser. */
int job_registry_submit(Manager *m, const Caller *c, const char *service, json_object *data,
                        json_object *params, Job **ret, GwError *e);
/* The same, answered once the job's row is durable: it joins the next group commit with the
 * other changes of this loop iteration. Returns 0 if cb will be called (with the job, or with
 * NULL and an error), < 0 with e set if the submission was refused at once. */
typedef void (*JobSubmitted)(Manager *m, Job *j, const GwError *e, void *userdata);
int job_registry_submit_async(Manager *m, const Caller *c, const char *service, json_object *data,
                              json_object *params, JobSubmitted cb, void *userdata, GwError *e);
/* Idempotent: a finished job stays as it is. A queued or image-waiting job is cancelled at once;
 * a running one gets SIGTERM and ends CANCELLED when its worker has stopped it. */
int job_registry_cancel(Job *j, GwError *e);

/* Removes a finished job: its row (committed first), its spool directory, its bus object
 * (InterfacesRemoved, Manager.JobRemoved). Conflict while the job has not ended. Finished jobs
 * are also removed by themselves JobRetention after they ended (at start for those that expired
 * while gatewayd was not running). */
int job_registry_remove(Job *j, GwError *e);

typedef struct JobFilter {
        bool all_users;
        uid_t uid;
        const char *subject;    /* with uid: the owner (job_is_owned_by()) */
        JobState state;         /* _JOB_STATE_INVALID = any */
        const char *service;    /* NULL = any */
        int64_t after_seq;      /* cursor: only jobs submitted after this one */
} JobFilter;

/* Matching jobs in submission order (borrowed; free the array only). */
Job **job_registry_list(Manager *m, const JobFilter *f, size_t *ret_n);

/* Who may see a job without asking polkit: its owner and root. */
bool job_is_visible_to(const Job *j, const Caller *c);

/* Runs the scheduler soon (once per loop iteration however often it is asked). */
void job_registry_dispatch(Manager *m);

/* The result as a client sees it: result.json when SUCCEEDED, {code, detail} when the job failed;
 * Conflict while the job has not ended. */
int job_result_json(const Job *j, json_object **ret, GwError *e);
/* Interim results as a JSON array; only the last one if last. */
int job_interim_json(const Job *j, bool last, json_object **ret, GwError *e);
