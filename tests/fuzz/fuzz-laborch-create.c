/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bodies of LabOrchestrator's POST /api/lab_instances/ (src/gatewayd/http-laborch.c): the
 * Content-Type and the body as DRF would judge them. Either a lab id, or a refusal with DRF's
 * status (400, 415) and a JSON object to send. The first input byte picks the Content-Type. */
#include "fuzz.h"
#include "http-api.h"
#include "json-util.h"

static const char *const content_types[] = {
        "application/json", "application/json; charset=utf-8", "text/plain", NULL, "application/jsonx",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_object *answer = NULL;
        unsigned status = 0;
        int64_t lab = -1;
        int r;

        fuzz_quiet();
        if (size == 0)
                return 0;
        r = http_laborch_parse_create(content_types[data[0] % ELEMENTSOF(content_types)], (const char *) data + 1,
                                      size - 1, &lab, &status, &answer);
        if (r == 0)
                fuzz_assert(!answer);
        else if (r == -EINVAL) {
                fuzz_assert(answer && json_object_is_type(answer, json_type_object));
                fuzz_assert(status == 400 || status == 415);
                fuzz_assert(json_text(answer));
        } else
                fuzz_assert(r == -ENOMEM);
        json_object_put(answer);
        return 0;
}
