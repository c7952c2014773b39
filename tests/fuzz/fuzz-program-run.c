/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bodies of POST /v1/programs/{title}/run: the JSON helper of the HTTP server, then
 * program_run_body_parse() (src/gatewayd/http-programs.c) and program_run_arguments() with a
 * program that has default arguments, as run_authorized() does. A refusal says why; what is
 * accepted is the defaults overridden by every run argument, within PROGRAM_ARGUMENTS_MAX as
 * JSON, and an environment of valid names with strings the job's environment can hold. */
#include "fuzz.h"
#include "gw-error.h"
#include "http-programs.h"
#include "http-server.h"
#include "json-util.h"
#include "program.h"
#include "service.h"

static void check_env(json_object *env) {
        if (!env || json_object_is_type(env, json_type_null))
                return;
        fuzz_assert(json_object_is_type(env, json_type_object));
        json_object_object_foreach(env, k, v) {
                fuzz_assert(env_name_is_valid(k) && strncmp(k, "ENV_JOB_", 8) != 0);
                fuzz_assert(json_object_is_type(v, json_type_string));
                fuzz_assert(strlen(json_object_get_string(v)) == (size_t) json_object_get_string_len(v));
        }
}

static void check_run(json_object *arguments, json_object *env) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *defaults = NULL, *merged = NULL;
        Program p = {};

        defaults = json_tokener_parse("{\"shots\": 100, \"backend\": \"sim\"}");
        fuzz_assert(defaults);
        p.arguments = defaults;
        if (program_run_arguments(&p, arguments, env, &merged, &e) < 0) {
                fuzz_assert(gw_error_is_set(&e) && e.message && e.message[0]);
                fuzz_assert(e.code == GW_ERROR_INVALID_ARGUMENT || e.code == GW_ERROR_PAYLOAD_TOO_LARGE);
                return;
        }
        fuzz_assert(json_object_is_type(merged, json_type_object));
        fuzz_assert(strlen(json_text(merged)) <= PROGRAM_ARGUMENTS_MAX);
        if (json_object_is_type(arguments, json_type_object)) {
                json_object_object_foreach(arguments, k, v) {
                        json_object *m;

                        fuzz_assert(json_object_object_get_ex(merged, k, &m) && m == v);
                }
        } else
                fuzz_assert(!arguments || json_object_is_type(arguments, json_type_null));
        json_object_object_foreach(defaults, k2, v2) {
                json_object *m;

                fuzz_assert(json_object_object_get_ex(merged, k2, &m));
                fuzz_assert(m == v2 || (arguments && json_object_object_get_ex(arguments, k2, NULL)));
        }
        check_env(env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *body = NULL, *arguments = NULL, *env = NULL;

        fuzz_quiet();
        if (http_json_body_parse((const char *) data, size, &body, &e) < 0) {
                fuzz_assert(e.message);
                return 0;
        }
        if (program_run_body_parse(body, &arguments, &env, &e) < 0) {
                fuzz_assert(e.code == GW_ERROR_INVALID_ARGUMENT && e.message && e.message[0]);
                return 0;
        }
        check_run(arguments, env);
        return 0;
}
