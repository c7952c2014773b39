/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pwd.h>

#include "auth-source.h"
#include "config.h"
#include "manager.h"
#include "program-provider.h"

/* The caller's account name: a network caller's comes with its identity; a local caller's is
 * its uid's (none without a passwd entry: then only "@group" entries of its gid can match). */
static bool caller_matches(const Caller *c, char * const *list) {
        struct passwd pw, *result = NULL;
        char buf[4096];
        const char *name = c->name;

        if (!name && getpwuid_r(c->uid, &pw, buf, sizeof(buf), &result) == 0 && result)
                name = result->pw_name;
        return auth_user_list_matches(list, name, caller_gid(c));
}

ProgramRole program_provider_role(Manager *m, const Caller *c, const char *provider) {
        const ConfigProgramProvider *pp = config_program_provider_find(m->config, provider);

        if (!pp)
                return PROGRAM_ROLE_NONE;
        if (caller_matches(c, pp->admins))
                return PROGRAM_ROLE_ADMIN;
        if (caller_matches(c, pp->users))
                return PROGRAM_ROLE_USER;
        return PROGRAM_ROLE_NONE;
}

ProgramRole program_role(Manager *m, const Caller *c, const Program *p) {
        if (p->provider)
                return program_provider_role(m, c, p->provider);
        return p->uid == c->uid ? PROGRAM_ROLE_ADMIN : PROGRAM_ROLE_NONE;
}

int program_provider_check_upload(Manager *m, const Caller *c, const char *provider, GwError *e) {
        if (!provider)
                return 0;
        switch (program_provider_role(m, c, provider)) {
        case PROGRAM_ROLE_ADMIN:
                return 0;
        case PROGRAM_ROLE_USER:
                return gw_error_set(e, GW_ERROR_ACCESS_DENIED,
                                    "Only the admins of provider %s may upload, replace or remove its programs.", provider);
        default:
                return gw_error_set(e, GW_ERROR_NOT_FOUND, "Provider [%s] was not found.", provider);
        }
}

int program_check_manage(Manager *m, const Caller *c, const Program *p, GwError *e) {
        if (!p->provider)
                return 0;  /* found for its owner only */
        return program_provider_check_upload(m, c, p->provider, e);
}
