/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bodies of POST /v1/services/NAME/jobs and of the PlanQK POST /planqk/NAME: the JSON helper of
 * the HTTP server, then job_submission_parse() (src/gatewayd/http-jobs.c), then the spool's
 * input files as job_create_spool() writes them, which the job reads back as JSON. */
#include "fuzz.h"
#include "gw-error.h"
#include "http-jobs.h"
#include "http-server.h"
#include "json-util.h"

static void check_spool_text(json_object *o) {
        _cleanup_(json_object_putp) json_object *back = NULL;
        const char *text = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : "{}";
        enum json_tokener_error err;

        fuzz_assert(text);
        back = json_tokener_parse_verbose(text, &err);
        fuzz_assert(err == json_tokener_success);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *body = NULL;
        json_object *d = NULL, *p = NULL;

        fuzz_quiet();
        if (http_json_body_parse((const char *) data, size, &body, &e) < 0) {
                fuzz_assert(e.message);
                return 0;
        }
        if (job_submission_parse(body, &d, &p, &e) < 0) {
                fuzz_assert(e.code == GW_ERROR_INVALID_ARGUMENT && e.message);
                return 0;
        }
        check_spool_text(d);
        check_spool_text(p);
        return 0;
}
