/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

/* JSON Web Tokens in compact form (RFC 7519/7515): minted with HS256 (Slurm's auth/jwt, lab
 * access tokens) and verified with HS256 or with a site's published keys (JWK, RFC 7517:
 * RS256 and ES256 of OpenID Connect providers). Only these three algorithms are known; "none"
 * and anything else is refused, and the algorithm is always the verifier's choice (the key's
 * type), never only the token's. Tokens come from the network: every length is bounded and
 * every part must decode. */

#define JWT_SIZE_MAX (16U * 1024U)

typedef struct Jwt {
        json_object *header;
        json_object *claims;
        char *signing_input;            /* "<header>.<claims>" exactly as received */
        uint8_t *signature;
        size_t signature_size;
        const char *alg;                /* in header */
        const char *kid;                /* in header; NULL if absent */
} Jwt;

/* base64url without padding: *ret is malloc'd and NUL-terminated. */
int base64url_encode(const void *data, size_t len, char **ret);
/* Accepts base64url without padding only (what JWS uses); -EBADMSG otherwise. *ret has a NUL
 * after the *ret_len bytes. */
int base64url_decode(const char *s, size_t len, uint8_t **ret, size_t *ret_len);

/* Splits and decodes a token: header and claims must be JSON objects, alg a string.
 * -EBADMSG for anything malformed, -E2BIG over JWT_SIZE_MAX. No signature is checked. */
int jwt_parse(const char *token, Jwt **ret);
Jwt *jwt_free(Jwt *j);
DEFINE_TRIVIAL_CLEANUP_FUNC(Jwt *, jwt_free);

/* A token with header {"alg":"HS256","typ":"JWT"} and claims serialized compactly (in the
 * object's order), signed with key. */
int jwt_sign_hs256(const uint8_t *key, size_t key_len, json_object *claims, char **ret);

/* 0 if the token is HS256 and its MAC is key's; -EACCES otherwise (also for another alg). */
int jwt_verify_hs256(const Jwt *j, const uint8_t *key, size_t key_len);
/* 0 if the token's signature verifies with the JWK (an object: kty "RSA" with n, e → RS256;
 * kty "EC", crv "P-256" with x, y → ES256); -EACCES if it does not or the token's alg is not
 * the key's; -EINVAL for a key that cannot be used. */
int jwt_verify_jwk(const Jwt *j, json_object *jwk);

/* The time claims against now (seconds since the epoch): "exp" required and in the future,
 * "nbf" and "iat" (if present) not in the future, each with leeway seconds of clock skew.
 * -EACCES with *ret_reason set to a static sentence when not. */
int jwt_check_times(const Jwt *j, uint64_t now, uint64_t leeway, const char **ret_reason);
