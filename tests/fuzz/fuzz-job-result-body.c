/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bodies of POST /api/v1/jobs/{id}/result/ on gatewayd's listeners (the job's token route):
 * job_result_body_parse() (src/gatewayd/http-job-result.c). The first byte of the input picks
 * the Content-Type (form, JSON, none, another), the rest is the body. What is accepted is saved
 * as the spool's saved-result.json, which the worker takes as the job's result unchecked: it must
 * be JSON as the worker's own result endpoint and markers take it (json_text_valid(), strict),
 * and read back as itself. */
#include <errno.h>

#include "fuzz.h"
#include "http-job-result.h"
#include "json-util.h"
#include "macro.h"
#include "markers.h"

static const char *const types[] = {
        "application/x-www-form-urlencoded",
        "application/json",
        NULL,
        "text/plain",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *body = NULL, *result = NULL;
        _cleanup_(json_object_putp) json_object *back = NULL;
        const char *type;
        int r;

        fuzz_quiet();
        if (size < 1)
                return 0;
        type = types[data[0] % ELEMENTSOF(types)];
        body = fuzz_strndup(data + 1, size - 1);
        r = job_result_body_parse(type, body, size - 1, &result);
        if (r < 0) {
                fuzz_assert(r == -EINVAL || r == -ENOMEM);
                fuzz_assert(!result);
                return 0;
        }
        fuzz_assert(result);
        if (!json_text_valid(result, strlen(result)))
                fprintf(stderr, "saved: %s\n", result);
        fuzz_assert(json_text_valid(result, strlen(result)));
        fuzz_assert(json_parse_untrusted(result, strlen(result), &back, NULL, NULL) == 0);
        fuzz_assert(streq(back ? json_text(back) : "null", result));
        return 0;
}
