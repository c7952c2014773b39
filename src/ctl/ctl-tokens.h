/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* gatewayctl token create|list|revoke: tokens for gatewayd's TCP/TLS listeners. */
typedef struct TokenArgs {
        uint64_t expires_in_sec;        /* --expires-in=, 0 = the daemon's default */
        char **scope;                   /* --scope=, NULL = every scope */
} TokenArgs;

extern TokenArgs arg_token;
void token_args_done(TokenArgs *a);

int verb_token_create(int argc, char *argv[], char *tail[]);
int verb_token_list(int argc, char *argv[], char *tail[]);
int verb_token_revoke(int argc, char *argv[], char *tail[]);
