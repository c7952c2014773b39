/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>

/* The job-scoped token of a program job (ENV_JOB_GATEWAY_TOKEN, docs/programs.md): an
 * HMAC-SHA256 over the job's id with a key of this gatewayd (STATE/job-token.key, 32 random
 * bytes, 0600, made at first use), in hex. It names one job and proves nothing else: it is never
 * an identity, and only the job's result endpoint takes it, while the job runs. Nothing is
 * stored per job; a new key (the file removed) invalidates every token. */

#define JOB_TOKEN_KEY_FILE "job-token.key"

/* *ret: 64 hex digits (caller frees). */
int job_token_mint(const char *state_dir, const char *job_id, char **ret);
/* Whether token is job_id's (constant time). */
bool job_token_verify(const char *state_dir, const char *job_id, const char *token);
