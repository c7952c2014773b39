/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

typedef struct Manager Manager;

/* LabOrchestrator's API names everything by an integer id; gatewayd by strings. This is the
 * stable mapping between them (table laborch_ids): an id is given the first time something is
 * shown through /api/ and stays its id, across restarts, and is never reused. */

typedef enum LaborchKind {
        LABORCH_DOCKER_IMAGE,           /* an image reference used by a lab member */
        LABORCH_LAB,                    /* a lab's name */
        LABORCH_LAB_DOCKER_IMAGE,       /* "<lab>/<member>" */
        LABORCH_LAB_INSTANCE,           /* an instance's id ("li-...") */
        _LABORCH_KIND_MAX,
} LaborchKind;

/* The id of name, given now if it had none. */
int laborch_id_get(Manager *m, LaborchKind kind, const char *name, int64_t *ret);
/* The name behind id: -ENOENT if none. */
int laborch_id_lookup(Manager *m, LaborchKind kind, int64_t id, char **ret);
