/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a program job sends to its result endpoint (src/worker/result-request.c), as the endpoint
 * reads it: the head, then the body after it with the head's Content-Type. A result handed on
 * must be valid JSON by json_text_valid() and within the limit. */
#include <errno.h>

#include "fuzz.h"
#include "json-util.h"
#include "macro.h"
#include "markers.h"
#include "result-request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        ResultRequest r = {};
        const char *error = NULL;
        char *json = NULL;
        int k;

        fuzz_quiet();
        k = result_request_parse_head((const char *) data, size, &r);
        fuzz_assert(k == 0 || k == -EAGAIN || k == -EBADMSG || k == -E2BIG || k == -ENOMEM);
        if (k < 0)
                return 0;
        fuzz_assert(r.head_len <= size && r.method && r.path);
        (void) result_request_path_matches(r.path, "j-1");
        (void) result_request_token_matches(r.authorization, "abc");
        k = result_request_decode_body(r.content_type, (const char *) data + r.head_len, size - r.head_len, 256,
                                       &json, &error);
        if (k >= 0) {
                fuzz_assert(strlen(json) <= 256);
                fuzz_assert(json_text_valid(json, strlen(json)));
                free(json);
        } else
                fuzz_assert(k == -ENOMEM || error);
        result_request_done(&r);
        return 0;
}
