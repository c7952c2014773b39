/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The fuzzer of a definition that an admin PUTs as JSON (a service, a lab): the body goes through
 * the HTTP server's JSON helper, then the kind's from_spec(); an accepted spec, printed as the API
 * prints it and sent back, must be accepted again and print the same. PUT names the definition in
 * its path: odd-sized inputs are checked against path_name. */
#include "fuzz.h"
#include "gw-error.h"
#include "http-server.h"
#include "json-util.h"

#define DEFINE_SPEC_ROUNDTRIP_FUZZER(Type, from_spec, spec_to_json, to_json, freep, path_name)     \
        static char *accept_spec(json_object *spec, const char *expected_name) {                   \
                _cleanup_gw_error_ GwError e = GW_ERROR_NULL;                                       \
                _cleanup_(freep) Type *x = NULL;                                                    \
                json_object *out;                                                                   \
                char *text;                                                                         \
                                                                                                    \
                if (from_spec(spec, expected_name, &x, &e) < 0) {                                   \
                        fuzz_assert(gw_error_is_set(&e) && e.message);                              \
                        return NULL;                                                                \
                }                                                                                   \
                out = spec_to_json(x);                                                              \
                fuzz_assert(out);                                                                   \
                text = strdup(json_text(out));                                                      \
                fuzz_assert(text);                                                                  \
                json_object_put(out);                                                               \
                json_object_put(to_json(x));                                                        \
                return text;                                                                        \
        }                                                                                           \
                                                                                                    \
        int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {                              \
                _cleanup_gw_error_ GwError e = GW_ERROR_NULL;                                       \
                _cleanup_free_ char *first = NULL, *second = NULL;                                  \
                _cleanup_(json_object_putp) json_object *spec = NULL, *again = NULL;                \
                                                                                                    \
                fuzz_quiet();                                                                       \
                if (http_json_body_parse((const char *) data, size, &spec, &e) < 0) {               \
                        fuzz_assert(e.message);                                                     \
                        return 0;                                                                   \
                }                                                                                   \
                first = accept_spec(spec, size % 2 ? path_name : NULL);                             \
                if (!first || fuzz_has_nul_escape(data, size))                                      \
                        return 0;                                                                   \
                                                                                                    \
                gw_error_free(&e);                                                                  \
                fuzz_assert(http_json_body_parse(first, strlen(first), &again, &e) >= 0);           \
                second = accept_spec(again, NULL);                                                  \
                fuzz_assert(second && streq(first, second));                                        \
                return 0;                                                                           \
        }
