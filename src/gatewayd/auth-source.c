/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <grp.h>
#include <pwd.h>
#include <strings.h>

#include "auth-source.h"
#include "http-server.h"
#include "manager.h"

/* The identity sources, each defined in a file of its own (auth-<name>.c). Adding one: write
 * that file (an AuthSource, see auth-source.h), declare it here, add it to the table below and
 * to src/gatewayd/meson.build. */
extern const AuthSource auth_source_token;      /* auth-token.c: gatewayd's own tokens */
extern const AuthSource auth_source_oidc;       /* auth-oidc.c: the site's OpenID Connect provider */
extern const AuthSource auth_source_munge;      /* auth-munge.c: Shifter's munge credentials */
extern const AuthSource auth_source_custom_token; /* auth-custom-token.c: the site's token service */

/* Sources that look for a prefix of a shared header ("Bearer gwt_") come before those that take
 * any value of it (a site's opaque bearer tokens). */
const AuthSource *const auth_sources[] = {
        &auth_source_token,
        &auth_source_oidc,              /* "Bearer eyJ…": JWTs, before any other bearer token */
        &auth_source_munge,
        &auth_source_custom_token,      /* any other bearer token: after auth_source_token */
};

const size_t auth_n_sources = ELEMENTSOF(auth_sources);

const AuthSource *auth_source_find(HttpRequest *req) {
        for (size_t i = 0; i < auth_n_sources; i++)
                if (auth_sources[i]->match(req))
                        return auth_sources[i];
        return NULL;
}

int auth_sources_init(Manager *m) {
        for (size_t i = 0; i < auth_n_sources; i++)
                if (auth_sources[i]->init) {
                        int r = auth_sources[i]->init(m);
                        if (r < 0)
                                return r;
                }
        return 0;
}

void auth_sources_done(Manager *m) {
        for (size_t i = 0; i < auth_n_sources; i++)
                if (auth_sources[i]->done)
                        auth_sources[i]->done(m);
}

const char *auth_bearer_token(HttpRequest *req) {
        const char *v = http_request_header(req, "Authorization");

        if (!v || strncasecmp(v, "Bearer ", 7) != 0)
                return NULL;
        v += 7;
        v += strspn(v, " ");
        return *v ? v : NULL;
}

static const char *const scope_names[] = { "read", "submit", "pull" };

int auth_scope_from_string(const char *s, unsigned *ret) {
        for (size_t i = 0; i < ELEMENTSOF(scope_names); i++)
                if (streq(s, scope_names[i])) {
                        *ret = 1U << i;
                        return 0;
                }
        return -EINVAL;
}

const char *auth_scope_to_string(unsigned scope) {
        for (size_t i = 0; i < ELEMENTSOF(scope_names); i++)
                if (scope == 1U << i)
                        return scope_names[i];
        return NULL;
}

static bool user_in_group(const char *user, gid_t primary, const char *group) {
        struct group *g = getgrnam(group);

        if (!g)
                return false;
        if (g->gr_gid == primary)
                return true;
        for (char **m = g->gr_mem; m && *m; m++)
                if (streq(*m, user))
                        return true;
        return false;
}

bool auth_user_list_matches(char * const *list, const char *name, gid_t gid) {
        if (!name)
                return false;
        for (size_t i = 0; list && list[i]; i++) {
                if (list[i][0] == '@') {
                        if (user_in_group(name, gid, list[i] + 1))
                                return true;
                } else if (streq(list[i], name))
                        return true;
        }
        return false;
}

bool auth_is_admin(Manager *m, const Caller *c) {
        return auth_user_list_matches(m->config->admins, c->name, c->gid);
}
