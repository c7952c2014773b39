/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Image references as users send them (pull bodies, service specs, gatewayctl): the worker's
 * parser (src/worker/reference.c). A parsed reference printed and parsed again must give the
 * same reference. */
#include "fuzz.h"
#include "macro.h"
#include "reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(image_reference_freep) ImageReference *r = NULL, *again = NULL;
        _cleanup_free_ char *s = fuzz_strndup(data, size), *text = NULL, *text2 = NULL;

        fuzz_quiet();
        (void) digest_is_valid(s);
        if (image_reference_parse(s, "docker.io", &r) < 0)
                return 0;
        fuzz_assert(r->registry && r->repository);
        fuzz_assert(r->tag || r->digest);
        fuzz_assert(!r->digest || digest_is_valid(r->digest));
        fuzz_assert(image_reference_manifest_ref(r));
        (void) registry_api_host(r->registry);

        text = image_reference_to_string(r);
        fuzz_assert(text);
        fuzz_assert(image_reference_parse(text, "docker.io", &again) >= 0);
        text2 = image_reference_to_string(again);
        fuzz_assert(text2 && streq(text, text2));
        return 0;
}
