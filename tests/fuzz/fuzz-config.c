/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The configuration file (src/gatewayd/config.c), parsed from a buffer as config_load() does
 * after reading the file. A refused configuration always says why. */
#include "config.h"
#include "fuzz.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = fuzz_strndup(data, size), *error = NULL;
        _cleanup_(config_freep) Config *c = NULL;
        int r;

        fuzz_quiet();
        r = config_parse(s, "/etc/gatewayd/gatewayd.json", &c, &error);
        if (r < 0) {
                fuzz_assert(error);
                return 0;
        }
        fuzz_assert(c);
        fuzz_assert(config_platform_default(c));
        for (size_t i = 0; i < c->n_locations; i++) {
                _cleanup_free_ char *url = NULL;
                if (config_location_base_url(&c->locations[i], &url) >= 0)
                        fuzz_assert(url);
        }
        return 0;
}
