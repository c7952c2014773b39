/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* WWW-Authenticate headers of registries (src/worker/auth-challenge.c). */
#include "auth-challenge.h"
#include "fuzz.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(auth_challenge_freep) AuthChallenge *c = NULL;
        _cleanup_free_ char *s = fuzz_strndup(data, size);

        fuzz_quiet();
        if (auth_challenge_parse(s, &c) < 0)
                return 0;
        fuzz_assert(c->scheme);
        for (const char *p = c->scheme; *p; p++)
                fuzz_assert(!(*p >= 'A' && *p <= 'Z'));
        return 0;
}
