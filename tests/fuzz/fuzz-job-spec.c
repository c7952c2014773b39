/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SPOOLDIR/job.json as "gateway-worker run" reads it (src/worker/job-spec.c): written by gatewayd
 * from a service spec and the image's configuration, which comes from a registry. Parsed as
 * read_json_file() does; inputs naming a "metaPath" are skipped (that reads a file). */
#include <json-c/json.h>

#include "fuzz.h"
#include "job-spec.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_job_spec_ JobSpec *spec = NULL;
        _cleanup_free_ char *s = fuzz_strndup(data, size), *error = NULL;
        json_tokener *tok;
        json_object *o;

        fuzz_quiet();
        if (size > 65536 || memchr(data, 0, size) || strstr(s, "metaPath"))
                return 0;
        tok = json_tokener_new();
        if (!tok)
                abort();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, s, (int) size + 1);
        if (json_tokener_get_error(tok) != json_tokener_success) {
                json_tokener_free(tok);
                json_object_put(o);
                return 0;
        }
        json_tokener_free(tok);

        if (job_spec_from_json(o, &spec, &error) >= 0) {
                fuzz_assert(spec->image_path && spec->image_path[0] == '/');
                fuzz_assert(spec->argv && spec->argv[0]);
        } else
                fuzz_assert(error);
        json_object_put(o);
        return 0;
}
