/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "jwt.h"
#include "macro.h"
#include "test-main.h"

/* JWTs: base64url both ways, HS256 round trips and forgeries, and RS256/ES256 tokens signed
 * here with fresh OpenSSL keys verified against their JWKs — the way an OIDC provider's tokens
 * and keys look. */

static char *b64(const void *p, size_t n) {
        char *s = NULL;
        ck_assert_int_eq(base64url_encode(p, n, &s), 0);
        return s;
}

START_TEST(test_base64url) {
        static const char *const vectors[][2] = {
                { "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" }, { "foob", "Zm9vYg" },
                { "\xfb\xff", "-_8" },
        };

        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                _cleanup_free_ char *enc = b64(vectors[i][0], strlen(vectors[i][0]));
                _cleanup_free_ uint8_t *dec = NULL;
                size_t n;

                ck_assert_str_eq(enc, vectors[i][1]);
                ck_assert_int_eq(base64url_decode(enc, strlen(enc), &dec, &n), 0);
                ck_assert_uint_eq(n, strlen(vectors[i][0]));
                ck_assert(memcmp(dec, vectors[i][0], n) == 0);
        }
        for (const char *const *bad = (const char *const[]) { "Zm9v=", "Z", "Zm+v", "Zm/v", "a b", NULL }; *bad; bad++) {
                uint8_t *dec = NULL;
                size_t n;
                ck_assert_int_eq(base64url_decode(*bad, strlen(*bad), &dec, &n), -EBADMSG);
        }
}
END_TEST

static json_object *claims_exp(uint64_t exp) {
        json_object *c = json_object_new_object();
        json_object_object_add(c, "sub", json_object_new_string("alice"));
        json_object_object_add(c, "exp", json_object_new_int64((int64_t) exp));
        return c;
}

START_TEST(test_hs256) {
        static const uint8_t key[] = "0123456789abcdef0123456789abcdef";
        _cleanup_(json_object_putp) json_object *c = claims_exp(2000);
        _cleanup_free_ char *token = NULL, *forged = NULL;
        _cleanup_(jwt_freep) Jwt *j = NULL, *f = NULL;
        const char *reason = NULL;
        char *last;

        ck_assert_int_eq(jwt_sign_hs256(key, sizeof(key) - 1, c, &token), 0);
        ck_assert_int_eq(jwt_parse(token, &j), 0);
        ck_assert_str_eq(j->alg, "HS256");
        ck_assert_str_eq(json_get_string(j->claims, "sub"), "alice");
        ck_assert_int_eq(jwt_verify_hs256(j, key, sizeof(key) - 1), 0);
        ck_assert_int_eq(jwt_verify_hs256(j, (const uint8_t *) "another key", 11), -EACCES);

        ck_assert_int_eq(jwt_check_times(j, 1000, 0, &reason), 0);
        ck_assert_int_eq(jwt_check_times(j, 2000, 0, &reason), -EACCES);
        ck_assert_str_eq(reason, "the token has expired");
        ck_assert_int_eq(jwt_check_times(j, 2005, 10, &reason), 0);

        /* One flipped character of the signature. */
        forged = strdup(token);
        last = forged + strlen(forged) - 2;
        *last = *last == 'A' ? 'B' : 'A';
        ck_assert_int_eq(jwt_parse(forged, &f), 0);
        ck_assert_int_eq(jwt_verify_hs256(f, key, sizeof(key) - 1), -EACCES);
}
END_TEST

/* A token whose header says alg with the given signature over it (for forgeries). */
static char *token_with(const char *header, json_object *claims, const void *sig, size_t sig_len) {
        const char *cs = json_object_to_json_string_ext(claims, JSON_C_TO_STRING_PLAIN);
        _cleanup_free_ char *h = b64(header, strlen(header)), *c = b64(cs, strlen(cs)), *s = b64(sig, sig_len);
        char *t = NULL;

        ck_assert_int_ge(asprintf(&t, "%s.%s.%s", h, c, s), 0);
        return t;
}

START_TEST(test_malformed) {
        static const char *const bad[] = {
                "", "a", "a.b", "a.b.c.d", ".eyJ9.x", "eyJhbGciOiJIUzI1NiJ9..x",
                "eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.x",   /* claims "not json" */
                "W10.e30.x",                             /* header [] */
                "e30.e30.x",                             /* header {} without alg */
        };
        _cleanup_free_ char *huge = malloc(JWT_SIZE_MAX + 2);
        Jwt *j = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(jwt_parse(bad[i], &j) == -EBADMSG, "%s", bad[i]);
        memset(huge, 'a', JWT_SIZE_MAX + 1);
        huge[JWT_SIZE_MAX + 1] = 0;
        ck_assert_int_eq(jwt_parse(huge, &j), -E2BIG);
}
END_TEST

static void add_b64(json_object *o, const char *name, const void *p, size_t n) {
        _cleanup_free_ char *s = b64(p, n);
        json_object_object_add(o, name, json_object_new_string(s));
}

static json_object *jwk_of(EVP_PKEY *pkey, bool ec) {
        json_object *jwk = json_object_new_object();

        if (ec) {
                uint8_t point[65];
                size_t n = 0;
                ck_assert_int_eq(EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &n), 1);
                ck_assert_uint_eq(n, 65);
                json_object_object_add(jwk, "kty", json_object_new_string("EC"));
                json_object_object_add(jwk, "crv", json_object_new_string("P-256"));
                add_b64(jwk, "x", point + 1, 32);
                add_b64(jwk, "y", point + 33, 32);
        } else {
                BIGNUM *n = NULL, *e = NULL;
                uint8_t nb[512], eb[8];
                int nl, el;
                ck_assert_int_eq(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n), 1);
                ck_assert_int_eq(EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e), 1);
                nl = BN_bn2bin(n, nb);
                el = BN_bn2bin(e, eb);
                json_object_object_add(jwk, "kty", json_object_new_string("RSA"));
                add_b64(jwk, "n", nb, (size_t) nl);
                add_b64(jwk, "e", eb, (size_t) el);
                BN_free(n);
                BN_free(e);
        }
        return jwk;
}

/* Signs header.claims with pkey as a provider would (ES256: r || s). */
static char *sign_with(EVP_PKEY *pkey, bool ec, json_object *claims) {
        const char *header = ec ? "{\"alg\":\"ES256\",\"kid\":\"k1\"}" : "{\"alg\":\"RS256\",\"kid\":\"k1\"}";
        const char *cs = json_object_to_json_string_ext(claims, JSON_C_TO_STRING_PLAIN);
        _cleanup_free_ char *h = b64(header, strlen(header)), *c = b64(cs, strlen(cs)), *input = NULL, *s = NULL;
        uint8_t sig[1024], raw[64] = {};
        size_t sig_len = sizeof(sig);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        char *t = NULL;

        ck_assert_int_ge(asprintf(&input, "%s.%s", h, c), 0);
        ck_assert_int_eq(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey), 1);
        ck_assert_int_eq(EVP_DigestSign(md, sig, &sig_len, (const uint8_t *) input, strlen(input)), 1);
        EVP_MD_CTX_free(md);
        if (ec) {
                const uint8_t *p = sig;
                ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long) sig_len);
                ck_assert_ptr_nonnull(es);
                BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
                BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
                ECDSA_SIG_free(es);
                s = b64(raw, 64);
        } else
                s = b64(sig, sig_len);
        ck_assert_int_ge(asprintf(&t, "%s.%s", input, s), 0);
        return t;
}

static void check_provider_key(bool ec) {
        EVP_PKEY *pkey = ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048), *other = ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
        _cleanup_(json_object_putp) json_object *c = claims_exp(2000), *jwk = NULL, *other_jwk = NULL;
        _cleanup_free_ char *token = NULL, *hs = NULL, *none = NULL;
        _cleanup_(jwt_freep) Jwt *j = NULL, *jh = NULL, *jn = NULL;

        ck_assert_ptr_nonnull(pkey);
        jwk = jwk_of(pkey, ec);
        other_jwk = jwk_of(other, ec);
        token = sign_with(pkey, ec, c);
        ck_assert_int_eq(jwt_parse(token, &j), 0);
        ck_assert_str_eq(j->kid, "k1");
        ck_assert_int_eq(jwt_verify_jwk(j, jwk), 0);
        ck_assert_int_eq(jwt_verify_jwk(j, other_jwk), -EACCES);

        /* The key's own bytes used as an HMAC key, and alg "none": refused by the key's type. */
        hs = token_with("{\"alg\":\"HS256\"}", c, "x", 1);
        ck_assert_int_eq(jwt_parse(hs, &jh), 0);
        ck_assert_int_eq(jwt_verify_jwk(jh, jwk), -EACCES);
        none = token_with("{\"alg\":\"none\"}", c, "", 0);
        ck_assert_int_eq(jwt_parse(none, &jn), 0);
        ck_assert_int_eq(jwt_verify_jwk(jn, jwk), -EACCES);
        EVP_PKEY_free(pkey);
        EVP_PKEY_free(other);
}

START_TEST(test_rs256) {
        check_provider_key(false);
}
END_TEST

START_TEST(test_es256) {
        check_provider_key(true);
}
END_TEST

START_TEST(test_unusable_keys) {
        _cleanup_(json_object_putp) json_object *c = claims_exp(2000);
        _cleanup_free_ char *token = token_with("{\"alg\":\"RS256\"}", c, "sig", 3);
        _cleanup_(jwt_freep) Jwt *j = NULL;
        static const char *const keys[] = {
                "{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}",          /* 17 bits */
                "{\"kty\":\"RSA\",\"e\":\"AQAB\"}",
                "{\"kty\":\"oct\",\"k\":\"AQAB\"}",
                "{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"}",
                "{}",
        };

        ck_assert_int_eq(jwt_parse(token, &j), 0);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_(json_object_putp) json_object *k = json_tokener_parse(keys[i]);
                ck_assert_msg(jwt_verify_jwk(j, k) == -EINVAL, "%s", keys[i]);
        }
}
END_TEST

START_TEST(test_times) {
        _cleanup_(json_object_putp) json_object *c = json_tokener_parse("{\"exp\":2000,\"nbf\":1500,\"iat\":1400}");
        _cleanup_(json_object_putp) json_object *noexp = json_tokener_parse("{\"sub\":\"a\"}");
        _cleanup_(json_object_putp) json_object *strexp = json_tokener_parse("{\"exp\":\"2000\"}");
        _cleanup_free_ char *t1 = token_with("{\"alg\":\"HS256\"}", c, "x", 1);
        _cleanup_free_ char *t2 = token_with("{\"alg\":\"HS256\"}", noexp, "x", 1);
        _cleanup_free_ char *t3 = token_with("{\"alg\":\"HS256\"}", strexp, "x", 1);
        _cleanup_(jwt_freep) Jwt *j1 = NULL, *j2 = NULL, *j3 = NULL;
        const char *reason = NULL;

        ck_assert_int_eq(jwt_parse(t1, &j1), 0);
        ck_assert_int_eq(jwt_check_times(j1, 1600, 0, &reason), 0);
        ck_assert_int_eq(jwt_check_times(j1, 1450, 0, &reason), -EACCES);
        ck_assert_str_eq(reason, "the token is not valid yet (nbf)");
        ck_assert_int_eq(jwt_parse(t2, &j2), 0);
        ck_assert_int_eq(jwt_check_times(j2, 1600, 0, &reason), -EACCES);
        ck_assert_str_eq(reason, "the token has no expiry (exp)");
        ck_assert_int_eq(jwt_parse(t3, &j3), 0);
        ck_assert_int_eq(jwt_check_times(j3, 1600, 0, &reason), -EACCES);
}
END_TEST

int main(void) {
        Suite *s = suite_create("jwt");
        TCase *tc = tcase_create("jwt");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_base64url);
        tcase_add_test(tc, test_hs256);
        tcase_add_test(tc, test_malformed);
        tcase_add_test(tc, test_rs256);
        tcase_add_test(tc, test_es256);
        tcase_add_test(tc, test_unusable_keys);
        tcase_add_test(tc, test_times);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
