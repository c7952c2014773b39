/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The munge credential in Shifter's "authentication" header, in the one form munge_encode()
 * writes: "MUNGE:" base64 ":" (standard alphabet, "=" padding, unused bits zero). Checked here,
 * on the loop and without munged, so that munged only ever sees well-formed credentials and the
 * replay cache (auth-munge.c) has one key per credential: a credential spelled another way (a
 * different padding, set unused bits) is refused rather than given a second key. */

#define MUNGE_CREDENTIAL_PREFIX "MUNGE:"
/* A credential with the largest payload shifterimg sends (a login for every location) is a few
 * kB; anything near the header limit is not one. */
#define MUNGE_CREDENTIAL_MAX (16U * 1024U)

/* Checks header (surrounding white space ignored) and returns the credential as a new string and
 * its replay-cache key, a SHA-256 of the credential in hex. -EINVAL: not a munge credential,
 * -ENOMEM. */
int munge_credential_parse(const char *header, char **ret_credential, char ret_key[static 65]);
