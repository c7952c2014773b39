/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A program's declared dependency (a user's requirement string, src/worker/program-deps.c) as
 * gateway-worker program reads it, checked against a version; the same text as a site directory's
 * entry name and as a version. A requirement that parses has a non-empty normalized name. */
#include <errno.h>

#include "fuzz.h"
#include "macro.h"
#include "program-deps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = NULL, *name = NULL, *dn = NULL, *dv = NULL;
        const char *error = NULL;
        int k;

        fuzz_quiet();
        if (size > 4096)
                return 0;
        s = fuzz_strndup(data, size);
        k = program_requirement_parse(s, &name, &error);
        fuzz_assert(k == 0 || k == -ENOMEM || (k == -EINVAL && error));
        if (k == 0) {
                fuzz_assert(name[0] && !strpbrk(name, "_.ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
                k = program_requirement_satisfied(s, "1.2.3rc1");
                fuzz_assert(k == 0 || k == 1);
        }
        if (program_dist_parse(s, &dn, &dv))
                fuzz_assert(dn[0] && dv[0]);
        (void) program_version_compare(s, "1.0.post1");
        return 0;
}
