/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "jwt.h"

/* HS256 JSON Web Tokens as Slurm's auth/jwt accepts them (facts/slurm.md §2): header
 * {"alg":"HS256","typ":"JWT"}, claims {"exp","iat","sun"}, base64url without padding, signed
 * with the site's AuthAltParameters=jwt_key file. slurmctld checks them; slurmrestd only passes
 * them on. Such a token lets its bearer act as "sun" until "exp", so gatewayd mints them per
 * request with a short lifetime and never for root. */

#define SLURM_JWT_KEY_MAX (64U * 1024U)

/* Reads the key file (its raw bytes are the HMAC key). Refuses an empty or oversized file and
 * one that others may read or write (a world-readable key would let anyone forge any user). */
int slurm_jwt_key_load(const char *path, uint8_t **ret_key, size_t *ret_len);

/* Mints a token for user, issued at iat (seconds since the epoch), valid for lifetime seconds.
 * The user name must be a plausible account name (no control characters, not empty). */
int slurm_jwt_mint(const uint8_t *key, size_t key_len, const char *user, uint64_t iat, uint64_t lifetime,
                   char **ret);

