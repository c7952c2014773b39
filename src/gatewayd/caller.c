/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <pwd.h>
#include <stddef.h>

#include "caller.h"

gid_t caller_gid(const Caller *c) {
        struct passwd pw, *result = NULL;
        char buf[4096];

        if (c->gid != (gid_t) -1)
                return c->gid;
        if (getpwuid_r(c->uid, &pw, buf, sizeof(buf), &result) == 0 && result)
                return result->pw_gid;
        return (gid_t) 65534;
}
