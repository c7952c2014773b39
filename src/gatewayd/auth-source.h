/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "caller.h"

/* Identity sources for TCP/TLS listeners (DESIGN.md §6). There are no peer credentials on a
 * network socket, so each request proves who it is with a credential that one of these sources
 * verifies: a gatewayd token (auth-token.c), a munge credential (auth-munge.c), and later a site
 * token service, PlanQK client credentials. Adding a source is one new file that defines an AuthSource plus one entry
 * in auth_sources[] (auth-source.c); http-server.c asks the table for every request on a
 * network listener and never looks at credentials itself. */

typedef struct HttpRequest HttpRequest;
typedef struct Manager Manager;

typedef enum AuthScope {
        AUTH_SCOPE_READ   = 1U << 0,    /* "read": GET routes */
        AUTH_SCOPE_SUBMIT = 1U << 1,    /* "submit": submit, cancel and remove jobs */
        AUTH_SCOPE_PULL   = 1U << 2,    /* "pull": image pulls */
        AUTH_SCOPE_ALL    = AUTH_SCOPE_READ | AUTH_SCOPE_SUBMIT | AUTH_SCOPE_PULL,
} AuthScope;

/* A verified caller. name is the local account the identity acts as; subject, if not NULL, the
 * external user behind it (a site's token service mapped it to that account): jobs and their
 * limits are that subject's, not the account's. */
typedef struct Identity {
        uid_t uid;
        gid_t gid;
        const char *name;
        const char *subject;
        const char *source;     /* AuthSource.name */
        unsigned scopes;        /* AuthScope bits */
} Identity;

/* The verdict on a credential, given exactly once per verify():
 *   r == 0       identity is the caller (copied by the callee);
 *   r == -EACCES the credential is bad (forged, expired, revoked, replayed): 401, and it counts
 *                as a failed authentication of the client's address;
 *   r == -EPERM  the credential is good but its user may not act here (e.g. an external user
 *                without a local account): 403, not a failed authentication;
 *   other r < 0  the source cannot tell now (its service is down or slow): 503.
 * message, if not NULL, is shown to the client. */
typedef void (*AuthVerified)(HttpRequest *req, int r, const Identity *identity, const char *message);

typedef struct AuthSource {
        const char *name;
        /* Optional: the WWW-Authenticate challenge a 401 offers for this kind of credential. */
        const char *challenge;
        /* Whether the request carries a credential of this kind (a header's presence or prefix;
         * no I/O). The first source in the table that matches owns the request. */
        bool (*match)(HttpRequest *req);
        /* Verifies the credential. May call done before it returns (a local lookup) or later from
         * the event loop (never blocking it); the request stays suspended meanwhile. */
        void (*verify)(HttpRequest *req, AuthVerified done);
        /* Optional: the request goes away before done was called (shutdown). The source must drop
         * every reference to req and never call done for it. */
        void (*cancel)(HttpRequest *req);
        /* Optional: called once at start-up and at exit, e.g. to check configuration or to set up
         * a client; a negative return stops start-up. */
        int (*init)(Manager *m);
        void (*done)(Manager *m);
} AuthSource;

extern const AuthSource *const auth_sources[];
extern const size_t auth_n_sources;

/* The first source that recognizes the request's credential, NULL: the request is anonymous. */
const AuthSource *auth_source_find(HttpRequest *req);

int auth_sources_init(Manager *m);
void auth_sources_done(Manager *m);

/* The token after "Bearer " in the Authorization header, or NULL. */
const char *auth_bearer_token(HttpRequest *req);

/* "read" / "submit" / "pull". */
int auth_scope_from_string(const char *s, unsigned *ret);
const char *auth_scope_to_string(unsigned scope);

/* Whether a network caller is one of the site's administrators ("Admins": user names and
 * "@group"s). polkit cannot judge a network identity; this list stands in for it. */
bool auth_is_admin(Manager *m, const Caller *c);
/* Whether the user name (primary group gid) is in a list like "Admins": user names and
 * "@group"s (the group's members and those whose primary group it is). */
bool auth_user_list_matches(char * const *list, const char *name, gid_t gid);
