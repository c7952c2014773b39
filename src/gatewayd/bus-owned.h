/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "caller.h"
#include "gw-error.h"

typedef struct Manager Manager;

/* How to remove one kind of object that belongs to a user (a token, a client, a job). */
typedef struct BusOwnedRemoval {
        const char *noun;       /* "token": for "No token '<id>'." */
        GwErrorCode not_found;  /* the error of that message */
        const char *action;     /* the polkit action that lets one remove anyone's */
        /* > 0 when the object is the caller's own, 0 when it is someone else's, -ENOENT when
         * there is none, another negative errno on failure. */
        int (*is_own)(Manager *m, const char *id, const Caller *caller);
        int (*remove)(Manager *m, const char *id, GwError *e);
} BusOwnedRemoval;

/* The body of a Remove method taking (s id): the owner removes their object at once; anybody
 * else needs polkit's action, and without it the object does not exist for them (not_found),
 * so that a refusal does not tell that the id is taken. Returns what an sd-bus method handler
 * should return. */
int bus_remove_owned(Manager *m, sd_bus_message *message, const BusOwnedRemoval *how, sd_bus_error *error);
