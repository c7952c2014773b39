/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bodies of the serverless gateway's POST /api/v1/programs/run/: the JSON helper of the HTTP
 * server, then serverless_run_body_parse() (src/gatewayd/http-serverless.c), whose "arguments" is
 * a JSON string holding JSON (json.dumps() of the client), then program_run_arguments() with a
 * program that has default arguments, as run_authorized() does. A refusal says why; accepted
 * arguments are an object that reads back the same from its text and from the text echoed to
 * the client, and the run's arguments are the defaults overridden by every one of them. */
#include "config.h"
#include "fuzz.h"
#include "gw-error.h"
#include "http-server.h"
#include "http-serverless.h"
#include "json-util.h"
#include "program.h"

/* What o reads back as from its text: the same text (json-c's own NaN and single quotes
 * included, so texts are compared, not values). */
static void check_reads_back(json_object *o, const char *text) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *back = NULL;
        _cleanup_free_ char *want = strdup(json_text(o));

        fuzz_assert(want);
        fuzz_assert(http_json_text_parse("arguments", text, &back, &e) >= 0);
        fuzz_assert(streq(json_text(back), want));
}

static void check_run_arguments(json_object *arguments) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *defaults = NULL, *merged = NULL;
        Program p = {};

        defaults = json_tokener_parse("{\"shots\": 100, \"backend\": \"sim\"}");
        fuzz_assert(defaults);
        p.arguments = defaults;
        if (program_run_arguments(&p, arguments, NULL, &merged, &e) < 0) {
                fuzz_assert(e.code == GW_ERROR_PAYLOAD_TOO_LARGE && e.message);
                return;
        }
        fuzz_assert(json_object_is_type(merged, json_type_object));
        if (arguments) {
                json_object_object_foreach(arguments, k, v) {
                        json_object *m;

                        fuzz_assert(json_object_object_get_ex(merged, k, &m));
                        fuzz_assert(m == v);
                }
        }
        json_object_object_foreach(defaults, k2, v2) {
                json_object *m;

                fuzz_assert(json_object_object_get_ex(merged, k2, &m));
                fuzz_assert(m == v2 || (arguments && json_object_object_get_ex(arguments, k2, NULL)));
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *body = NULL;
        ServerlessRunRequest *rr = NULL;
        json_object *title;

        fuzz_quiet();
        if (http_json_body_parse((const char *) data, size, &body, &e) < 0) {
                fuzz_assert(e.message);
                return 0;
        }
        rr = calloc(1, sizeof(ServerlessRunRequest));
        fuzz_assert(rr);
        if (serverless_run_body_parse(body, rr, &e) < 0) {
                fuzz_assert(gw_error_is_set(&e) && e.message && e.message[0]);
                fuzz_assert(e.code == GW_ERROR_INVALID_ARGUMENT || e.code == GW_ERROR_NOT_FOUND);
                serverless_run_request_free(rr);
                return 0;
        }
        /* the whole title the client sent, never empty, or its part after "provider/" */
        title = json_object_object_get(body, "title");
        fuzz_assert(rr->title && rr->title[0] && !strchr(rr->title, '/'));
        fuzz_assert(!rr->provider || config_program_provider_name_is_valid(rr->provider));
        if (strchr(json_object_get_string(title), '/'))
                fuzz_assert(rr->provider && strlen(rr->provider) + 1 + strlen(rr->title) ==
                            (size_t) json_object_get_string_len(title));
        else
                fuzz_assert(strlen(rr->title) == (size_t) json_object_get_string_len(title));
        if (!rr->arguments) {
                /* none sent (or null): the program's defaults, and "{}" echoed */
                fuzz_assert(!rr->arguments_text);
                check_run_arguments(NULL);
        } else {
                fuzz_assert(json_object_is_type(rr->arguments, json_type_object));
                fuzz_assert(rr->arguments_text);
                check_reads_back(rr->arguments, json_text(rr->arguments));
                check_reads_back(rr->arguments, rr->arguments_text);
                check_run_arguments(rr->arguments);
        }
        serverless_run_request_free(rr);
        return 0;
}
