/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct Manager Manager;

/* Where a job's D-Bus object lives: "<prefix>/<sd_bus_path_encode(id)>" (Job.object_path). */
#define JOB_OBJECT_PREFIX "/org/gatewayd/Gateway1/job"
typedef struct PlatformJobCallbacks PlatformJobCallbacks;

/* QUEUED → PENDING → RUNNING → SUCCEEDED | FAILED | CANCELLED. QUEUED waits for the per-user and
 * per-platform limits; PENDING has a slot and waits for its image and its worker; UNKNOWN is
 * where a job ends when contact with its worker was lost without an outcome. */
typedef enum JobState {
        JOB_QUEUED,
        JOB_PENDING,
        JOB_RUNNING,
        JOB_SUCCEEDED,
        JOB_FAILED,
        JOB_CANCELLED,
        JOB_UNKNOWN,
        _JOB_STATE_MAX,
        _JOB_STATE_INVALID = -1,
} JobState;

const char *job_state_to_string(JobState s);
JobState job_state_from_string(const char *s);
/* The PlanQK status vocabulary has no QUEUED: a queued job is PENDING there. */
const char *job_state_to_planqk(JobState s);
bool job_state_is_terminal(JobState s);
/* PENDING and RUNNING hold one of the user's JobsPerUser slots and one of the platform's. */
static inline bool job_state_is_active(JobState s) {
        return s == JOB_PENDING || s == JOB_RUNNING;
}
/* Whether from → to is a transition the state machine allows. */
bool job_state_transition_is_valid(JobState from, JobState to);

/* A change of a job's state, as it is committed to the database (job-registry.c). */
typedef struct JobUpdate {
        JobState state;
        uint64_t started_usec, ended_usec;
        int exit_code;
        const char *error_code, *error_message;
} JobUpdate;

/* A copy that owns its strings, and its free. */
JobUpdate *job_update_dup(const JobUpdate *u);
JobUpdate *job_update_free(JobUpdate *u);

typedef void (*JobWatchCallback)(void *userdata);

typedef struct JobWatch {
        JobWatchCallback callback;
        void (*destroy)(void *userdata);
        void *userdata;
        struct JobWatch *next;
} JobWatch;

typedef struct Job {
        Manager *manager;

        char *id;                       /* UUID, as PlanQK clients expect */
        int64_t seq;                    /* submission order (the row id): fair share and paging */
        char *service;                  /* "" for a program's job */
        char *program_id;               /* a program's job: its program (program.h); else NULL */
        char *program;                  /* and that program's title, kept after it is removed */
        char *program_provider;         /* and its provider, for a provider's program; else NULL */
        char *platform;
        uid_t uid;
        gid_t gid;
        char *subject;                  /* the external user who submitted it (Caller.subject), NULL if none */
        JobState state;
        uint64_t created_usec, started_usec, ended_usec;   /* CLOCK_REALTIME, 0 = not yet */
        int exit_code;                  /* -1 = none */
        char *error_code;               /* worker's error.code ("EXIT_CODE", ...) or ours */
        char *error_message;
        char *spool_dir;
        char *object_path;

        /* Runtime only. */
        JobUpdate *pending;             /* a change the database has not taken yet (disk full):
                                         * retried; until then memory keeps the committed state */
        const JobUpdate *staged;        /* the latest change in the open group commit (not owned):
                                         * the state further changes start from */
        char *image_request;            /* userdata of an image_registry_ensure_ready() in flight
                                         * (our id, copied): owned here, so that a request still
                                         * open at shutdown is freed with the job */
        bool worker_started;            /* a worker was spawned or re-attached */
        bool sandbox_ended;             /* nothing of the job runs any more, its worker records
                                         * the outcome: it holds no slot of MaxClusters */
        bool cancel_requested;
        bool busy;                      /* holds a manager_busy_ref(), and is in m->unfinished_jobs */
        struct Job *unfinished_prev, *unfinished_next;
        const PlatformJobCallbacks *platform_callbacks; /* how its platform reports (platform.h) */
        void *platform_data;            /* the platform's own state of the job, while it has one */
        void (*platform_data_free)(void *data);
        JobWatch *watches;              /* woken on every change: log growth, state */
} Job;

/* The state the job is in once the open group commit is durable: what the scheduler counts, so
 * that a slot freed by a staged end is handed on in the same commit. */
static inline JobState job_effective_state(const Job *j) {
        return j->staged ? j->staged->state : j->state;
}

/* Whether the job is (uid, subject)'s: the owner of a job and the unit of the per-user limits is
 * a local account, or an external user acting as one (subject). */
static inline bool job_is_owned_by(const Job *j, uid_t uid, const char *subject) {
        return j->uid == uid && (j->subject && subject ? strcmp(j->subject, subject) == 0 : j->subject == subject);
}

Job *job_new(void);
Job *job_free(Job *j);
DEFINE_TRIVIAL_CLEANUP_FUNC(Job *, job_free);

/* A fresh random (version 4) UUID, as text. */
int job_id_new(char **ret);
bool job_id_is_valid(const char *id);

/* The native record (/v1/jobs) and the PlanQK job object: exactly
 * {id, status, createdAt, startedAt, endedAt}. */
json_object *job_to_json(const Job *j);
json_object *job_to_planqk_json(const Job *j);

/* destroy (may be NULL) is called for userdata when the watch is removed or the job freed. */
int job_watch_add(Job *j, JobWatchCallback callback, void (*destroy)(void *userdata), void *userdata);
void job_watch_remove(Job *j, JobWatchCallback callback, void *userdata);
void job_notify_watches(Job *j);

uint64_t realtime_now_usec(void);

/* Reads a spool file of a job, e.g. "result.json" (NUL-terminated; -ENOENT if absent). */
int job_read_spool_file(const Job *j, const char *name, size_t max, char **ret, size_t *ret_size);

/* The last (at most) max bytes of a spool file, from the first line that starts within them. */
int job_read_spool_tail(const Job *j, const char *name, size_t max, char **ret);
