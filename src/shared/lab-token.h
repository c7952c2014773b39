/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/* Lab access tokens (docs/labs.md): HS256 JWTs that gatewayd mints for an instance's owner and
 * gateway-proxy checks on every new connection. Claims: "inst" (the instance id), "uid" (its
 * owner), "members" (the member names it opens), "iat", "exp", "jti" (random: each token is
 * another string). The key is 32 random bytes in
 * STATE_DIRECTORY/lab-token.key (mode 0600, made by gatewayd on first use); whoever can read it
 * can open every instance, so only root (gatewayd, gateway-proxy) may. */

#define LAB_TOKEN_KEY_FILE "lab-token.key"
#define LAB_TOKEN_KEY_SIZE 32U

typedef struct LabTokenClaims {
        char *instance;
        uid_t uid;
        char **members;         /* NULL-terminated */
        uint64_t expires;       /* seconds since the epoch */
} LabTokenClaims;

LabTokenClaims *lab_token_claims_free(LabTokenClaims *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(LabTokenClaims *, lab_token_claims_free);

/* Reads the key; with create, makes it first if it is missing (-ENOENT otherwise). Refuses a key
 * file others may read or write, or of the wrong size. */
int lab_token_key_load(const char *state_dir, bool create, uint8_t ret[static LAB_TOKEN_KEY_SIZE]);

int lab_token_mint(const uint8_t key[static LAB_TOKEN_KEY_SIZE], const char *instance, uid_t uid,
                   char *const *members, uint64_t now, uint64_t lifetime, char **ret);

/* 0 and the claims if the token is ours, intact and not expired at now; -EACCES with a sentence
 * in *ret_reason otherwise. */
int lab_token_verify(const uint8_t key[static LAB_TOKEN_KEY_SIZE], const char *token, uint64_t now,
                     LabTokenClaims **ret, const char **ret_reason);

bool lab_token_opens(const LabTokenClaims *c, const char *member);
