/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "caller.h"
#include "gw-error.h"
#include "lab.h"

typedef struct WorkerProcess WorkerProcess;

/* A running copy of a lab for one user (docs/labs.md). Each member is a "gateway-worker run"
 * (the job sandbox) in its own session, with a spool directory like a job's: it outlives
 * gatewayd and is re-attached at start through the lock on its worker.pid, as jobs of the local
 * platform are. All members of an instance share one network namespace (only loopback), kept
 * as a bind mount of its nsfs file, in which each member has its own 127.0.0.x address and its
 * name in the instance's /etc/hosts. */

typedef enum LabInstanceState {
        LAB_INSTANCE_STARTING,  /* images being made READY, members being started */
        LAB_INSTANCE_RUNNING,   /* every member's sandbox runs */
        LAB_INSTANCE_DEGRADED,  /* a member exited (or could not be started) */
        LAB_INSTANCE_STOPPING,  /* asked to stop: members get SIGTERM, then SIGKILL */
        LAB_INSTANCE_STOPPED,   /* ended (deleted or its lifetime is over); nothing left on the host */
        LAB_INSTANCE_FAILED,    /* could not start; nothing left on the host */
        _LAB_INSTANCE_STATE_MAX,
} LabInstanceState;

typedef struct LabInstance LabInstance;

typedef struct LabInstanceMember {
        LabInstance *instance;
        const LabMember *spec;          /* in instance->spec */
        char *address;                  /* 127.0.0.x inside the instance */
        char *spool_dir;                /* <instance dir>/<name>.spool */
        char *image_path, *meta_path;   /* the READY image, while starting */
        WorkerProcess *worker;          /* our child (NULL when re-attached) */
        pid_t worker_pid;
        int worker_pidfd;
        sd_event_source *pidfd_source;  /* re-attached workers: their exit */
        bool started;                   /* a worker was started (or re-attached) */
        bool running;                   /* its sandbox runs (the worker said so, or re-attached) */
        bool exited;                    /* the worker is gone */
} LabInstanceMember;

struct LabInstance {
        Manager *manager;
        char *id;
        char *lab;
        uid_t uid;
        gid_t gid;
        LabInstanceState state;
        Lab *spec;                      /* the definition as it was at creation */
        LabInstanceMember *members;
        size_t n_members;
        uint64_t created_usec, started_usec, expires_usec, ended_usec;
        char *error;                    /* why FAILED or DEGRADED */
        char *dir;                      /* <state>/labs/<id>: hosts, spools, writable layers */
        char *netns_path;               /* <runtime>/labs/<id>.netns */
        int net_slot;                   /* outbound labs: its slot of LabNetworkPool (lab-network.c), else -1 */
        unsigned images_pending;
        bool remove_when_stopped;       /* DELETE: the record goes too */
        LabInstanceState final_state;   /* what STOPPING ends in: STOPPED or FAILED */
        bool busy;                      /* holds a manager_busy_ref(): no idle exit while it lives */
        sd_event_source *expiry_timer;
        sd_event_source *kill_timer;
};

const char *lab_instance_state_to_string(LabInstanceState s);

int lab_instances_load(Manager *m);
void lab_instances_free(Manager *m);

/* Starts an instance of the lab for caller: 404 NotFound (no such lab), 429 LimitExceeded
 * (LabInstancesPerUser). Returns it STARTING, committed. */
int lab_instance_create(Manager *m, const char *lab, const Caller *caller, LabInstance **ret, GwError *e);
/* The caller's own instance (root's too: root sees only its own), else NULL. */
LabInstance *lab_instance_get(Manager *m, const char *id, const Caller *caller);
/* Stops it and removes the record once everything on the host is gone. */
int lab_instance_remove(LabInstance *i, GwError *e);
/* The caller's instances, oldest first (borrowed, NULL-terminated; free the array only). */
LabInstance **lab_instance_list(Manager *m, const Caller *caller, size_t *ret_n);

json_object *lab_instance_to_json(const LabInstance *i);
