/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "jwt.h"

/* Smaller RSA keys are breakable; a provider that publishes one is misconfigured. */
#define JWT_RSA_BITS_MIN 2048

static const char b64url_table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int base64url_encode(const void *data, size_t len, char **ret) {
        const uint8_t *p = data;
        char *out, *o;

        if (len > SIZE_MAX / 4 - 4)
                return -EINVAL;
        out = o = malloc((len + 2) / 3 * 4 + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16;
                size_t n = MIN(len - i, (size_t) 3);

                if (n > 1)
                        v |= (uint32_t) p[i + 1] << 8;
                if (n > 2)
                        v |= p[i + 2];
                *o++ = b64url_table[(v >> 18) & 63];
                *o++ = b64url_table[(v >> 12) & 63];
                if (n > 1)
                        *o++ = b64url_table[(v >> 6) & 63];
                if (n > 2)
                        *o++ = b64url_table[v & 63];
        }
        *o = 0;
        *ret = out;
        return 0;
}

static int b64url_value(char c) {
        const char *p = c ? strchr(b64url_table, c) : NULL;
        return p ? (int) (p - b64url_table) : -1;
}

int base64url_decode(const char *s, size_t len, uint8_t **ret, size_t *ret_len) {
        uint8_t *out;
        size_t n = 0;
        uint32_t acc = 0;
        unsigned bits = 0;

        if (len % 4 == 1)
                return -EBADMSG;
        /* One byte more than the data: always NUL-terminated, so text can be used as it is. */
        out = malloc(len / 4 * 3 + 4);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++) {
                int v = b64url_value(s[i]);
                if (v < 0) {
                        free(out);
                        return -EBADMSG;
                }
                acc = (acc << 6) | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[n++] = (uint8_t) (acc >> bits);
                        acc &= (1U << bits) - 1;
                }
        }
        out[n] = 0;
        *ret = out;
        *ret_len = n;
        return 0;
}

Jwt *jwt_free(Jwt *j) {
        if (!j)
                return NULL;
        json_object_put(j->header);
        json_object_put(j->claims);
        free(j->signing_input);
        free(j->signature);
        free(j);
        return NULL;
}

/* One base64url part holding a JSON object. */
static int decode_object(const char *s, size_t len, json_object **ret) {
        _cleanup_free_ uint8_t *raw = NULL;
        size_t n;
        json_object *o;
        int r;

        r = base64url_decode(s, len, &raw, &n);
        if (r < 0)
                return r;
        if (memchr(raw, 0, n))
                return -EBADMSG;
        o = json_tokener_parse((const char *) raw);   /* NUL-terminated by base64url_decode() */
        if (!json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        *ret = o;
        return 0;
}

int jwt_parse(const char *token, Jwt **ret) {
        _cleanup_(jwt_freep) Jwt *j = NULL;
        const char *dot1, *dot2, *sig;
        size_t len;
        int r;

        len = strnlen(token, JWT_SIZE_MAX + 1);
        if (len > JWT_SIZE_MAX)
                return -E2BIG;
        dot1 = strchr(token, '.');
        dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
        if (!dot1 || !dot2 || strchr(dot2 + 1, '.') || dot1 == token || dot2 == dot1 + 1)
                return -EBADMSG;
        sig = dot2 + 1;

        j = calloc(1, sizeof(Jwt));
        if (!j)
                return -ENOMEM;
        r = decode_object(token, (size_t) (dot1 - token), &j->header);
        if (r < 0)
                return r;
        r = decode_object(dot1 + 1, (size_t) (dot2 - dot1 - 1), &j->claims);
        if (r < 0)
                return r;
        r = base64url_decode(sig, strlen(sig), &j->signature, &j->signature_size);
        if (r < 0)
                return r;
        j->signing_input = strndup(token, (size_t) (dot2 - token));
        if (!j->signing_input)
                return -ENOMEM;
        j->alg = json_get_string(j->header, "alg");
        j->kid = json_get_string(j->header, "kid");
        if (!j->alg)
                return -EBADMSG;
        *ret = TAKE_PTR(j);
        return 0;
}

static int hs256(const uint8_t *key, size_t key_len, const char *input, uint8_t mac[static EVP_MAX_MD_SIZE],
                 unsigned *mac_len) {
        if (key_len > INT32_MAX)
                return -EINVAL;
        return HMAC(EVP_sha256(), key, (int) key_len, (const unsigned char *) input, strlen(input), mac, mac_len)
                ? 0 : -EIO;
}

int jwt_sign_hs256(const uint8_t *key, size_t key_len, json_object *claims, char **ret) {
        static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
        _cleanup_free_ char *h64 = NULL, *c64 = NULL, *s64 = NULL, *signing_input = NULL;
        uint8_t mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        const char *cs;
        int r;

        if (!key || key_len == 0)
                return -EINVAL;
        cs = json_object_to_json_string_ext(claims, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!cs)
                return -ENOMEM;
        r = base64url_encode(cs, strlen(cs), &c64);
        if (r >= 0)
                r = base64url_encode(header, strlen(header), &h64);
        if (r < 0)
                return r;
        if (asprintf(&signing_input, "%s.%s", h64, c64) < 0) {
                signing_input = NULL;
                return -ENOMEM;
        }
        r = hs256(key, key_len, signing_input, mac, &mac_len);
        if (r < 0)
                return r;
        r = base64url_encode(mac, mac_len, &s64);
        if (r < 0)
                return r;
        return asprintf(ret, "%s.%s", signing_input, s64) < 0 ? -ENOMEM : 0;
}

int jwt_verify_hs256(const Jwt *j, const uint8_t *key, size_t key_len) {
        uint8_t mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;

        if (!streq(j->alg, "HS256") || !key || key_len == 0)
                return -EACCES;
        if (hs256(key, key_len, j->signing_input, mac, &mac_len) < 0)
                return -EACCES;
        if (j->signature_size != mac_len || CRYPTO_memcmp(mac, j->signature, mac_len) != 0)
                return -EACCES;
        return 0;
}

/* A base64url member of the JWK, decoded. */
static int jwk_bytes(json_object *jwk, const char *name, uint8_t **ret, size_t *ret_len) {
        const char *s = json_get_string(jwk, name);

        if (!s || strlen(s) > 2048)
                return -EINVAL;
        return base64url_decode(s, strlen(s), ret, ret_len) < 0 ? -EINVAL : 0;
}

static int pkey_from_params(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **ret) {
        OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
        int r = -EINVAL;

        if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
            EVP_PKEY_fromdata(ctx, ret, EVP_PKEY_PUBLIC_KEY, params) == 1)
                r = 0;
        EVP_PKEY_CTX_free(ctx);
        OSSL_PARAM_free(params);
        return r;
}

static int jwk_rsa_key(json_object *jwk, EVP_PKEY **ret) {
        _cleanup_free_ uint8_t *n = NULL, *e = NULL;
        size_t n_len, e_len;
        BIGNUM *bn_n = NULL, *bn_e = NULL;
        OSSL_PARAM_BLD *bld = NULL;
        int r = -EINVAL;

        if (jwk_bytes(jwk, "n", &n, &n_len) < 0 || jwk_bytes(jwk, "e", &e, &e_len) < 0)
                return -EINVAL;
        bn_n = BN_bin2bn(n, (int) n_len, NULL);
        bn_e = BN_bin2bn(e, (int) e_len, NULL);
        bld = OSSL_PARAM_BLD_new();
        if (bn_n && bn_e && bld && BN_num_bits(bn_n) >= JWT_RSA_BITS_MIN &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) == 1 &&
            OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) == 1)
                r = pkey_from_params("RSA", bld, ret);
        OSSL_PARAM_BLD_free(bld);
        BN_free(bn_n);
        BN_free(bn_e);
        return r;
}

static int jwk_ec_key(json_object *jwk, EVP_PKEY **ret) {
        _cleanup_free_ uint8_t *x = NULL, *y = NULL;
        const char *crv = json_get_string(jwk, "crv");
        uint8_t point[65];
        size_t x_len, y_len;
        OSSL_PARAM_BLD *bld;
        int r = -EINVAL;

        if (!crv || !streq(crv, "P-256") ||
            jwk_bytes(jwk, "x", &x, &x_len) < 0 || jwk_bytes(jwk, "y", &y, &y_len) < 0 ||
            x_len != 32 || y_len != 32)
                return -EINVAL;
        point[0] = 0x04;        /* uncompressed */
        memcpy(point + 1, x, 32);
        memcpy(point + 33, y, 32);
        bld = OSSL_PARAM_BLD_new();
        if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) == 1)
                r = pkey_from_params("EC", bld, ret);
        OSSL_PARAM_BLD_free(bld);
        return r;
}

/* JWS carries ECDSA signatures as r || s (RFC 7518 §3.4); OpenSSL verifies DER. */
static int es256_to_der(const uint8_t *sig, size_t size, uint8_t **ret, size_t *ret_len) {
        ECDSA_SIG *s;
        BIGNUM *r_bn, *s_bn;
        unsigned char *der = NULL;
        int n;

        if (size != 64)
                return -EACCES;
        s = ECDSA_SIG_new();
        r_bn = BN_bin2bn(sig, 32, NULL);
        s_bn = BN_bin2bn(sig + 32, 32, NULL);
        if (!s || !r_bn || !s_bn || ECDSA_SIG_set0(s, r_bn, s_bn) != 1) {
                BN_free(r_bn);
                BN_free(s_bn);
                ECDSA_SIG_free(s);
                return -ENOMEM;
        }
        n = i2d_ECDSA_SIG(s, &der);
        ECDSA_SIG_free(s);
        if (n <= 0)
                return -ENOMEM;
        *ret = der;
        *ret_len = (size_t) n;
        return 0;
}

int jwt_verify_jwk(const Jwt *j, json_object *jwk) {
        const char *kty = json_get_string(jwk, "kty"), *use = json_get_string(jwk, "use");
        const char *key_alg = json_get_string(jwk, "alg");
        _cleanup_free_ uint8_t *der = NULL;
        const uint8_t *sig = j->signature;
        size_t sig_len = j->signature_size;
        EVP_PKEY *pkey = NULL;
        EVP_MD_CTX *md = NULL;
        bool ec;
        int r;

        if (!kty || (use && !streq(use, "sig")))
                return -EINVAL;
        ec = streq(kty, "EC");
        if (!ec && !streq(kty, "RSA"))
                return -EINVAL;
        /* The key decides the algorithm: a token cannot talk an RSA key into HMAC (RFC 8725 §2.1). */
        if (!streq(j->alg, ec ? "ES256" : "RS256") || (key_alg && !streq(key_alg, j->alg)))
                return -EACCES;
        r = ec ? jwk_ec_key(jwk, &pkey) : jwk_rsa_key(jwk, &pkey);
        if (r < 0)
                return r;
        if (ec) {
                r = es256_to_der(j->signature, j->signature_size, &der, &sig_len);
                if (r < 0)
                        goto finish;
                sig = der;
        }
        md = EVP_MD_CTX_new();
        r = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
            EVP_DigestVerify(md, sig, sig_len, (const unsigned char *) j->signing_input, strlen(j->signing_input)) == 1
                ? 0 : -EACCES;
finish:
        EVP_MD_CTX_free(md);
        EVP_PKEY_free(pkey);
        return r;
}

/* A NumericDate claim: absent (0, *present false) or an integer ≥ 0; -EACCES for anything else. */
static int numeric_date(const Jwt *j, const char *name, uint64_t *ret, bool *present) {
        json_object *v;

        *present = json_object_object_get_ex(j->claims, name, &v);
        if (!*present)
                return 0;
        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
                return -EACCES;
        if (json_object_get_double(v) < 0 || json_object_get_double(v) > 1e15)
                return -EACCES;
        *ret = (uint64_t) json_object_get_double(v);
        return 0;
}

int jwt_check_times(const Jwt *j, uint64_t now, uint64_t leeway, const char **ret_reason) {
        uint64_t exp = 0, nbf = 0, iat = 0;
        bool has_exp, has_nbf, has_iat;

        if (numeric_date(j, "exp", &exp, &has_exp) < 0 || numeric_date(j, "nbf", &nbf, &has_nbf) < 0 ||
            numeric_date(j, "iat", &iat, &has_iat) < 0)
                return *ret_reason = "a time claim of the token is not a number", -EACCES;
        if (!has_exp)
                return *ret_reason = "the token has no expiry (exp)", -EACCES;
        if (exp + leeway <= now)
                return *ret_reason = "the token has expired", -EACCES;
        if (has_nbf && nbf > now + leeway)
                return *ret_reason = "the token is not valid yet (nbf)", -EACCES;
        if (has_iat && iat > now + leeway)
                return *ret_reason = "the token was issued in the future (iat)", -EACCES;
        return 0;
}
