/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bodies of POST /v1/tokens and POST /v1/clients (also D-Bus CreateToken/CreateClient): the JSON
 * helper of the HTTP server, then token_parse_request() (src/gatewayd/auth-token.c) and
 * client_parse_request() (src/gatewayd/auth-client.c); every input goes to both. A refusal says
 * why; what is accepted is within the scopes that exist, a positive lifetime and a client name
 * of printable characters within CLIENT_NAME_MAX. */
#include "auth-client.h"
#include "auth-source.h"
#include "auth-token.h"
#include "fuzz.h"
#include "gw-error.h"
#include "http-server.h"
#include "json-util.h"

static void check_token(json_object *body) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        uint64_t expires_in;
        unsigned scopes;

        if (token_parse_request(body, &expires_in, &scopes, &e) < 0) {
                fuzz_assert(gw_error_is_set(&e) && e.message);
                return;
        }
        fuzz_assert((scopes & ~AUTH_SCOPE_ALL) == 0);
        fuzz_assert(expires_in > 0 || !json_object_object_get_ex(body, "expiresIn", NULL));
}

static void check_client(json_object *body) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_free_ char *name = NULL;
        unsigned scopes;

        if (client_parse_request(body, &scopes, &name, &e) < 0) {
                fuzz_assert(gw_error_is_set(&e) && e.message);
                fuzz_assert(!name);
                return;
        }
        fuzz_assert((scopes & ~AUTH_SCOPE_ALL) == 0);
        if (!name)
                return;
        fuzz_assert(name[0] && strlen(name) <= CLIENT_NAME_MAX);
        for (const char *p = name; *p; p++)
                fuzz_assert((unsigned char) *p >= 0x20 && *p != 0x7f);
        /* the whole string the client sent: the JSON helper refused "\u0000", so a C string
         * cannot have cut it short */
        fuzz_assert(strlen(name) == (size_t) json_object_get_string_len(json_object_object_get(body, "name")));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *body = NULL;

        fuzz_quiet();
        if (http_json_body_parse((const char *) data, size, &body, &e) < 0) {
                fuzz_assert(e.message);
                return 0;
        }
        check_token(body);
        check_client(body);
        return 0;
}
