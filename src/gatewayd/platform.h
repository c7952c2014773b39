/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "config.h"
#include "gw-error.h"
#include "image.h"
#include "job.h"
#include "service.h"

/* Platforms (DESIGN.md §3): where images live and jobs run. Each "Platforms" entry of the
 * configuration is one Platform, held by name in m->platforms; what it does is decided by its
 * kind (accesstype "local", "remote" = SSH nodes, or "slurm"), each kind one implementation
 * (platform-<kind>.c) with one PlatformVTable and one entry in the table in platform.c. The job
 * registry and the image code call only the platform_*() functions below, never an
 * implementation; implementations report back only through the callbacks they are given, and
 * know no registry. A kind without an implementation is refused here (503, Unavailable). */

typedef struct Manager Manager;
typedef struct Platform Platform;

/* How a platform reports a job's progress to whoever started it (the job registry). Kept in
 * j->platform_callbacks while the platform has the job. */
struct PlatformJobCallbacks {
        /* The job runs (the worker said RUNNING); started_usec is CLOCK_REALTIME, 0 = now. */
        void (*on_started)(Job *j, uint64_t started_usec);
        /* The log grew. */
        void (*on_log)(Job *j);
        /* An interim result (compact JSON text). */
        void (*on_interim)(Job *j, unsigned index, const char *json_text);
        /* Nothing of the job runs any more: its worker is recording the outcome, which on_exit
         * then reports. The job's slot of MaxClusters is free from here on. */
        void (*on_sandbox_ended)(Job *j);
        /* The end: a terminal state and what the worker recorded (times 0 = unknown). After it
         * the platform holds nothing of the job. */
        void (*on_exit)(Job *j, JobState state, int exit_code, const char *error_code,
                        const char *error_message, uint64_t started_usec, uint64_t ended_usec);
};

/* How a platform reports the images it was asked to deploy, and learns which it should hold.
 * The image registry implements them; the manager hands them to every platform when it loads
 * them (platforms_load). */
typedef struct PlatformImageHooks {
        /* The end of a deployment that deploy_image answered with 1: r < 0 and a message when
         * it failed (-ENOSPC: a node's disk is full). Never called from done(). */
        void (*deployed)(Platform *p, const char *image_id, int r, const char *message);
        /* Calls fn for every READY image of the platform (to bring a node that comes back or
         * joins up to date); stops at fn's first negative return and returns it. */
        int (*foreach_ready)(Platform *p, int (*fn)(Platform *p, const Image *i, void *userdata), void *userdata);
} PlatformImageHooks;

/* Program layers (docs/programs.md): a program upload's squashfs, bound read-only at /program
 * over a job's image, named by a layer id of 64 hex digits. The program registry implements
 * this; the manager sets it on every platform (platforms_set_layer_hooks). */
typedef struct PlatformLayerHooks {
        /* Calls fn for every layer the platform should hold (a node that comes back is brought
         * up to date, and loses those no longer listed); stops at fn's first negative return. */
        int (*foreach_layer)(Platform *p, int (*fn)(Platform *p, const char *layer, const char *squashfs_path, void *userdata),
                             void *userdata);
} PlatformLayerHooks;

/* The end of a save_result that answered 1: r = 0 stored; -ESTALE the job has finished there;
 * -EAGAIN it does not run yet; other r < 0 could not be stored, with a message if there is one. */
typedef void (*PlatformResultSaved)(int r, const char *message, void *userdata);

typedef struct PlatformVTable {
        const char *kind;                       /* "local", "ssh", "slurm" */

        int (*init)(Platform *p);               /* may be NULL; sets up p->data */
        void (*done)(Platform *p);              /* may be NULL; frees p->data */

        /* Starts the job's worker; its progress arrives through j->platform_callbacks. */
        int (*start_job)(Platform *p, Job *j, const Service *s, const Image *image, GwError *e);
        /* Asks the job to stop: it ends (on_exit) CANCELLED when its worker has stopped it. */
        int (*cancel_job)(Platform *p, Job *j);
        /* For a job found PENDING or RUNNING at startup. Returns 1 if the job was re-attached
         * or concluded, 0 if no worker was ever started for it (the caller starts one). */
        int (*reattach_job)(Platform *p, Job *j);
        /* Makes a converted image available where the platform runs jobs (Shifter's TRANSFER):
         * its squashfs_path and its Shifter .meta (image_shifter_meta_path()) are complete on
         * this host. 0: available now; 1: the end comes through image_hooks->deployed (exactly
         * once, unless the platform is freed first); < 0 with e set: cannot start. NULL: the
         * platform runs jobs where the pull wrote the image. */
        int (*deploy_image)(Platform *p, Image *i, GwError *e);
        /* Removes the platform's copy of an image (expiry, removal). */
        int (*remove_image)(Platform *p, Image *i);
        /* Makes a program layer (squashfs_path on this host) available where the platform runs
         * jobs, ahead of its jobs; a job whose layer has not arrived brings it along. Nothing
         * waits for the end. NULL: jobs use the file where it is (this host; a Slurm cluster
         * sees gatewayd's state directory on the shared file system). */
        int (*deploy_layer)(Platform *p, const char *layer, const char *squashfs_path);
        /* Removes the platform's copies of a layer (the program was removed or replaced and no
         * job uses that upload any more). */
        int (*remove_layer)(Platform *p, const char *layer);
        /* Stores a result that a holder of the job's token saved from outside the job (POST
         * /api/v1/jobs/{id}/result/ on gatewayd's listeners, docs/programs.md) where the job's
         * worker takes it when the job ends, as if saved from inside: the worker's spool's
         * saved-result.json. json_text is valid JSON within ResultMax. 0: stored; 1: the end comes
         * through done (exactly once, also when the platform lets go first); < 0 as for done.
         * NULL: -EOPNOTSUPP. */
        int (*save_result)(Platform *p, Job *j, const char *json_text, PlatformResultSaved done, void *userdata);
        /* The nodes, as JSON objects {name, state, …} in an array. */
        json_object *(*report_nodes)(Platform *p);
        /* Drains (drain) or resumes a node by its name as configured: a draining node takes no
         * new jobs, its running ones go on. -ENOENT: no such node. NULL: the platform has no
         * nodes of its own to drain (-EOPNOTSUPP). */
        int (*drain_node)(Platform *p, const char *node, bool drain);
        /* The platform's own state for the surfaces, as an object whose fields are added to
         * the platform's (e.g. a cluster's reachability, partitions, queued/running); may be
         * NULL. */
        json_object *(*report_state)(Platform *p);
} PlatformVTable;

struct Platform {
        Manager *manager;
        char *name;
        const ConfigPlatform *config;
        const char *kind;                       /* of the table entry */
        const PlatformVTable *vtable;           /* NULL: a kind without an implementation */
        const PlatformImageHooks *image_hooks;
        const PlatformLayerHooks *layer_hooks;  /* NULL until the manager sets them */
        void *data;                             /* the implementation's */
};

/* One for each configured platform (config always has the default one). */
int platforms_load(Manager *m, const PlatformImageHooks *image_hooks);
void platforms_free(Manager *m);

Platform *platform_get(Manager *m, const char *name);
/* "DefaultPlatform" (or the first). */
Platform *platform_default(Manager *m);

/* Why the platform cannot run jobs (jobs) or hold images (!jobs), or NULL if it can. */
const char *platform_unsupported(const Platform *p, bool jobs);
/* The same from the configuration alone, for checks before there is a Manager. */
const char *platform_config_unsupported(const ConfigPlatform *c, bool jobs);

int platform_start_job(Platform *p, Job *j, const Service *s, const Image *image,
                       const PlatformJobCallbacks *cb, GwError *e);
int platform_cancel_job(Platform *p, Job *j);
int platform_reattach_job(Platform *p, Job *j, const PlatformJobCallbacks *cb);
int platform_deploy_image(Platform *p, Image *i, GwError *e);
int platform_remove_image(Platform *p, Image *i);
void platforms_set_layer_hooks(Manager *m, const PlatformLayerHooks *hooks);
int platform_deploy_layer(Platform *p, const char *layer, const char *squashfs_path);
int platform_remove_layer(Platform *p, const char *layer);
int platform_save_result(Platform *p, Job *j, const char *json_text, PlatformResultSaved done, void *userdata);
json_object *platform_report_nodes(Platform *p);
int platform_drain_node(Platform *p, const char *node, bool drain);
/* An object (never NULL unless out of memory): what report_state gives, or an empty one. */
json_object *platform_report_state(Platform *p);

/* job.json for gateway-worker run (platform-local.c): the service's command, environment and
 * limits, the image by path. Other platforms adapt it (a node names the image by id). */
json_object *platform_job_spec_json(Job *j, const Service *s, const Image *image);

/* The implementations. */
extern const PlatformVTable platform_local_vtable;
extern const PlatformVTable platform_ssh_vtable;
extern const PlatformVTable platform_slurm_vtable;
