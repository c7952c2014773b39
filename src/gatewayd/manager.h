/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sqlite3.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "hashmap.h"
#include "macro.h"

typedef struct HttpServer HttpServer;
typedef struct PolkitQuery PolkitQuery;
typedef struct RegistrySubscriber RegistrySubscriber;

typedef struct PolkitLane {
        PolkitQuery *waiting, *waiting_tail;    /* FIFO, not sent yet */
        unsigned n_inflight;                    /* sent, not answered */
} PolkitLane;

typedef struct Manager {
        sd_event *event;
        sd_bus *bus;
        HttpServer *http;
        sqlite3 *db;
        Config *config;

        char *state_dir;
        char *runtime_dir;
        usec_t start_usec;

        RegistrySubscriber *registry_subscribers;       /* registry-events.h */
        Hashmap *image_streams;         /* image key → progress streams (http-images.c) */
        Hashmap *platforms;             /* name → Platform (platform.h), one per "Platforms" entry */
        Hashmap *services;              /* name → Service, mirrors the committed DB rows */
        Hashmap *images;                /* "<platform>\n<id>" → Image */
        Hashmap *image_tags;            /* "<platform>\n<reference>" → ImageTag */
        Hashmap *pulls;                 /* "<platform>\n<reference>" → ImagePull still resolving */
        sd_event_source *expiry_timer;
        Hashmap *programs;              /* id → Program (program-registry.c), mirrors the DB rows */
        Hashmap *jobs;                  /* id → Job, mirrors the committed DB rows */
        /* Those of them not in a terminal state (linked through Job.unfinished_*): what the
         * scheduler and the per-user limits look at, however many finished jobs are kept. */
        struct Job *unfinished_jobs;
        size_t n_unfinished_jobs;
        sd_event_source *job_dispatch;  /* deferred scheduler run */
        sd_event_source *job_retention_timer;   /* CLOCK_REALTIME, at the next finished job's expiry */

        Hashmap *labs;                  /* name → Lab (lab-registry.c), mirrors the committed DB rows */
        Hashmap *lab_instances;         /* id → LabInstance (lab-instance.c) */
        uint8_t *lab_token_key;         /* lab-access.c: the lab token key, once it was needed */

        Hashmap *token_cache;           /* auth-token.c: verified tokens by id */
        struct Oidc *oidc;              /* auth-oidc.c: the provider's keys, NULL when OIDC is off */
        struct MungeDecoder *munge;     /* auth-munge.c: decode threads, replay cache; NULL: no munge */
        struct CustomTokenSource *custom_token; /* auth-custom-token.c, NULL = not configured */

        /* polkit queries (polkit.c): all unanswered ones, and per kind (non-interactive,
         * interactive) those not sent yet and how many are at polkitd. */
        PolkitQuery *polkit_queries;
        PolkitLane polkit_lanes[2];
        Hashmap *polkit_grants;         /* polkit-grants.c: recent "yes" for everyone's actions */
        sd_event_source *job_retry;     /* retries job changes the database refused (disk full) */
        sd_event_source *lingering_sweep;       /* lingering-mounts.c: unmounts mounts no job uses */
        struct FsyncPool *fsync_pool;   /* fsync-pool.c: flushes submissions' input off the loop */
        usec_t job_retry_usec;          /* its current back-off */

        /* Idle exit (like systemd's bus services): leave when nothing is in flight and nobody
         * has talked to us for idle_timeout_usec. */
        usec_t idle_timeout_usec;       /* 0 = never */
        usec_t last_activity_usec;
        unsigned n_busy;                /* operations in flight (polkit checks, pulls, jobs…) */
        sd_event_source *idle_timer;
        sd_bus_slot *name_owner_slot;
        bool exiting;
} Manager;

typedef struct ManagerOptions {
        const char *config_path;
        bool config_path_explicit;      /* given with --config: then it must exist */
        const char *state_dir;          /* --state-dir, NULL: "StateDirectory" or state_dir_default */
        const char *state_dir_default;
        const char *runtime_dir;
        usec_t idle_timeout_usec;
        int log_level;                  /* --log-level, -1: "LogLevel" or what log_setup() chose */
} ManagerOptions;

int manager_new(const ManagerOptions *o, Manager **ret);
Manager *manager_free(Manager *m);
int manager_startup(Manager *m);
int manager_run(Manager *m);

/* Activity bookkeeping for idle exit. */
void manager_touch(Manager *m);
void manager_busy_ref(Manager *m);
void manager_busy_unref(Manager *m);
void manager_update_status(Manager *m);

static inline void manager_freep(Manager **m) {
        manager_free(*m);
}
