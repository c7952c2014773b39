/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdint.h>

#include "auth-source.h"
#include "gw-error.h"

/* Tokens issued by gatewayd (DESIGN.md §6): a local user creates one for themself and uses it as
 * "Authorization: Bearer gwt_<id>_<secret>" on the TCP/TLS listeners. The secret (256 random
 * bits) is shown once; the database keeps only its SHA-256, compared in constant time. */

#define ACTION_MANAGE_TOKENS "org.gatewayd.manage-tokens"

/* Live (unexpired) tokens one user may have: the table must not grow without bound. */
#define TOKENS_PER_USER_MAX 100U

/* Creates a token for the caller. expires_in_sec 0 = TokenExpiry; scopes 0 = all. Returns the
 * token's description {"id","token","expiresAt","scope"} (the only time "token" is shown). */
int token_create(Manager *m, const Caller *c, uint64_t expires_in_sec, unsigned scopes, json_object **ret, GwError *e);

/* Mints a token for uid/gid without the checks of token_create(): for a PlanQK client
 * (client_id, auth-client.c) that proved itself at POST /token; client_id NULL: the user's own.
 * *ret_token is the secret "gwt_…" (free() it after explicit_bzero()). */
int token_issue(Manager *m, uid_t uid, gid_t gid, uint64_t expires_in_sec, unsigned scopes, const char *client_id,
                char **ret_token, char ret_id[static 17], uint64_t *ret_expires, GwError *e);

/* Revokes every token issued to a client (the client is being removed). */
int token_revoke_client(Manager *m, const char *client_id);

/* The caller's tokens (all users' if all), without secrets: [{"id","uid","expiresAt","createdAt","scope"}]. */
int token_list(Manager *m, uid_t uid, bool all, json_object **ret, GwError *e);

typedef struct TokenInfo {
        char id[17];
        uint64_t created_usec, expires_usec;    /* CLOCK_REALTIME */
        unsigned scopes;
} TokenInfo;

/* The same as an array (free() it). */
int token_list_infos(Manager *m, uid_t uid, TokenInfo **ret, size_t *ret_n, GwError *e);

/* The owner of token id: -ENOENT if there is none. */
int token_owner(Manager *m, const char *id, uid_t *ret_uid);
int token_revoke(Manager *m, const char *id, GwError *e);

/* Parses {"expiresIn": SECONDS, "scope": [...]} (both optional) into the arguments of
 * token_create(). */
int token_parse_request(json_object *o, uint64_t *ret_expires_in, unsigned *ret_scopes, GwError *e);

/* Secrets of other credentials (PlanQK clients) made and checked the same way: id_bytes random
 * bytes as hex into id (2 * id_bytes + 1), 256 random bits base64url into secret, its SHA-256
 * into hash. token_secret_check() compares in constant time: 0, -EACCES or -EIO. */
#define TOKEN_SECRET_LEN 43
int token_secret_generate(char *id, size_t id_bytes, char secret[static TOKEN_SECRET_LEN + 1], uint8_t hash[static 32]);
int token_secret_check(const char *secret, const uint8_t hash[static 32]);

/* A JSON list of scope names ("scope": [...]) into AuthScope bits, and back. */
int token_parse_scope(json_object *v, unsigned *ret_scopes, GwError *e);
json_object *token_scope_to_json(unsigned scopes);
