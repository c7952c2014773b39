/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a bearer of a token sends and what an identity provider publishes (src/shared/jwt.c): the
 * input up to the first newline is a token, the rest a JWK. The token is parsed and checked as
 * the verifiers do (HS256 with a fixed key, the JWK, the time claims). Checks: base64url
 * round-trips the input, and a parsed token has an alg and object header and claims. */
#include "fuzz.h"
#include "jwt.h"
#include "macro.h"

static void check_base64url_round_trip(const uint8_t *data, size_t size) {
        _cleanup_free_ char *enc = NULL;
        _cleanup_free_ uint8_t *dec = NULL;
        size_t n;

        if (base64url_encode(data, size, &enc) < 0)
                return;
        if (base64url_decode(enc, strlen(enc), &dec, &n) < 0 || n != size || memcmp(dec, data, size) != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const uint8_t key[] = "fuzz-key-fuzz-key-fuzz-key-fuzz!";
        _cleanup_free_ char *text = NULL;
        _cleanup_(jwt_freep) Jwt *j = NULL;
        json_object *jwk = NULL;
        const char *reason;
        char *nl;

        fuzz_quiet();
        check_base64url_round_trip(data, size);
        text = fuzz_strndup(data, size);
        nl = strchr(text, '\n');
        if (nl) {
                *nl = 0;
                jwk = json_tokener_parse(nl + 1);
        }
        if (jwt_parse(text, &j) >= 0) {
                if (!j->alg || !json_object_is_type(j->header, json_type_object) ||
                    !json_object_is_type(j->claims, json_type_object))
                        abort();
                (void) jwt_verify_hs256(j, key, sizeof(key) - 1);
                if (jwk)
                        (void) jwt_verify_jwk(j, jwk);
                (void) jwt_check_times(j, 1800000000, 60, &reason);
        }
        json_object_put(jwk);
        return 0;
}
