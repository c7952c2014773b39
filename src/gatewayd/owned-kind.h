/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "caller.h"
#include "gw-error.h"

typedef struct Manager Manager;

/* A kind of object that belongs to a user (a token, a client, a job), as the Remove methods and
 * routes see it: the owner removes theirs at once; anybody else needs polkit's action, and
 * without it the object does not exist for them (not_found), so that a refusal does not tell
 * that the id is taken. */
typedef struct OwnedKind {
        const char *noun;       /* "token": for "No token '<id>'." */
        GwErrorCode not_found;  /* the error of that message */
        const char *action;     /* the polkit action that lets one remove anyone's */
        /* > 0 when the object is the caller's own, 0 when it is someone else's, -ENOENT when
         * there is none, another negative errno on failure. */
        int (*is_own)(Manager *m, const char *id, const Caller *caller);
        int (*remove)(Manager *m, const char *id, GwError *e);
} OwnedKind;

/* Tokens (auth-token.c) and PlanQK clients (auth-client.c), both under org.gatewayd.manage-tokens. */
extern const OwnedKind token_owned_kind;
extern const OwnedKind client_owned_kind;
