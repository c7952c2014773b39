/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

typedef struct Manager Manager;
typedef struct Service Service;
typedef struct Image Image;
typedef struct Job Job;

/* The registries (services, images, jobs) publish their changes here, after they are committed;
 * the surfaces (D-Bus signals, HTTP progress streams) subscribe when they start. So state knows
 * no surface: a registry file includes no bus-*.h or http-*.h. Subscribers are called in the
 * order they subscribed, synchronously, with the object still alive (for *_REMOVED: already out
 * of its registry, not yet freed). */

typedef enum RegistryEventKind {
        REGISTRY_SERVICE_ADDED,
        REGISTRY_SERVICE_CHANGED,
        REGISTRY_SERVICE_REMOVED,
        REGISTRY_IMAGE_ADDED,
        REGISTRY_IMAGE_CHANGED,         /* status, message, size… (committed) */
        REGISTRY_IMAGE_PROGRESS,        /* a pull moved on: counters (see progress_counters) or status */
        REGISTRY_IMAGE_PULL_ENDED,      /* the image's pull is over (READY, FAILURE or given up) */
        REGISTRY_IMAGE_REMOVED,
        REGISTRY_JOB_ADDED,
        REGISTRY_JOB_CHANGED,
        REGISTRY_JOB_INTERIM,           /* an interim result arrived */
        REGISTRY_JOB_REMOVED,
        _REGISTRY_EVENT_KIND_MAX,
} RegistryEventKind;

typedef struct RegistryEvent {
        RegistryEventKind kind;
        Service *service;
        Image *image;
        Job *job;
        bool progress_counters;         /* IMAGE_PROGRESS: bytes/layers changed, not only the status */
        unsigned interim_index;         /* JOB_INTERIM */
        const char *interim_json;       /* JOB_INTERIM: compact JSON */
} RegistryEvent;

typedef void (*RegistryEventCallback)(Manager *m, const RegistryEvent *e, void *userdata);

int registry_subscribe(Manager *m, RegistryEventKind kind, RegistryEventCallback cb, void *userdata);
void registry_subscribers_free(Manager *m);

void registry_publish(Manager *m, const RegistryEvent *e);

static inline void registry_publish_service(Manager *m, RegistryEventKind kind, Service *s) {
        registry_publish(m, &(RegistryEvent) { .kind = kind, .service = s });
}
static inline void registry_publish_image(Manager *m, RegistryEventKind kind, Image *i) {
        registry_publish(m, &(RegistryEvent) { .kind = kind, .image = i });
}
static inline void registry_publish_job(Manager *m, RegistryEventKind kind, Job *j) {
        registry_publish(m, &(RegistryEvent) { .kind = kind, .job = j });
}
