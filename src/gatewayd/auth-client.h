/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdint.h>

#include "auth-source.h"
#include "gw-error.h"

/* PlanQK client credentials (issue 11 §2): a local user creates a client (an id and a secret,
 * the pair PlanQK's service SDK calls consumer key and secret); the client trades them at
 * POST /token (http-oauth.c) for a short-lived gatewayd token (auth-token.c) that acts as the
 * user, within the client's scope. The secret is shown once; the database keeps its SHA-256. */

#define CLIENT_PREFIX "gwc_"
#define CLIENT_ID_BYTES 8
#define CLIENT_ID_LEN (sizeof(CLIENT_PREFIX) - 1 + 2 * CLIENT_ID_BYTES)
#define CLIENT_NAME_MAX 128U

/* Clients one user may have. */
#define CLIENTS_PER_USER_MAX 100U

/* Parses {"scope": [...], "name": "..."} (both optional). *ret_name NULL if absent. */
int client_parse_request(json_object *o, unsigned *ret_scopes, char **ret_name, GwError *e);

/* Creates a client for the caller (local users only). scopes 0 = all. Returns
 * {"clientId","clientSecret","name","scope","createdAt"}, the only time the secret is shown. */
int client_create(Manager *m, const Caller *c, unsigned scopes, const char *name, json_object **ret, GwError *e);

typedef struct ClientInfo {
        char id[CLIENT_ID_LEN + 1];
        char *name;                     /* NULL: none */
        uid_t uid;
        gid_t gid;
        unsigned scopes;
        uint64_t created_usec, last_used_usec;  /* CLOCK_REALTIME; last used 0: never */
} ClientInfo;

void client_infos_free(ClientInfo *l, size_t n);

/* The user's clients, without secrets. */
int client_list_infos(Manager *m, uid_t uid, ClientInfo **ret, size_t *ret_n, GwError *e);
/* The same as JSON: [{"clientId","name","scope","createdAt","lastUsedAt"}]. */
int client_list(Manager *m, uid_t uid, json_object **ret, GwError *e);

/* The owner of client id: -ENOENT if there is none. */
int client_owner(Manager *m, const char *id, uid_t *ret_uid);
/* Removes the client and revokes the tokens it was issued. */
int client_remove(Manager *m, const char *id, GwError *e);

/* Checks a client's id and secret: 0 and *ret (owner, gid, scopes; name unset), -EACCES for an
 * unknown client or a wrong secret, another error if the database fails. Notes the use. */
int client_authenticate(Manager *m, const char *id, const char *secret, ClientInfo *ret);
