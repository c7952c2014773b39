/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bodies of PUT /v1/labs/NAME (and the specs gatewayd reads back from its database): the JSON
 * helper of the HTTP server, then lab_from_spec() (src/gatewayd/lab.c). An accepted spec,
 * printed as the API prints it and sent back, must be accepted again and give the same lab. */
#include "fuzz.h"
#include "gw-error.h"
#include "http-server.h"
#include "json-util.h"
#include "lab.h"

static char *accept_spec(json_object *spec, const char *expected_name) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(lab_freep) Lab *l = NULL;
        json_object *out;
        char *text;

        if (lab_from_spec(spec, expected_name, &l, &e) < 0) {
                fuzz_assert(gw_error_is_set(&e) && e.message);
                return NULL;
        }
        out = lab_spec_to_json(l);
        fuzz_assert(out);
        text = strdup(json_text(out));
        fuzz_assert(text);
        json_object_put(out);
        json_object_put(lab_to_json(l));
        return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_free_ char *first = NULL, *second = NULL;
        _cleanup_(json_object_putp) json_object *spec = NULL, *again = NULL;

        fuzz_quiet();
        if (http_json_body_parse((const char *) data, size, &spec, &e) < 0) {
                fuzz_assert(e.message);
                return 0;
        }
        first = accept_spec(spec, size % 2 ? "lab" : NULL);
        if (!first || fuzz_has_nul_escape(data, size))
                return 0;

        gw_error_free(&e);
        fuzz_assert(http_json_body_parse(first, strlen(first), &again, &e) >= 0);
        second = accept_spec(again, NULL);
        fuzz_assert(second && streq(first, second));
        return 0;
}
