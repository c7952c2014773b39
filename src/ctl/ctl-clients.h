/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* gatewayctl client create|list|rm: PlanQK client credentials (id and secret) that a client
 * trades for a token at POST /token on gatewayd's TCP/TLS listeners. --scope= is shared with
 * token create (arg_token.scope). */
typedef struct ClientArgs {
        char *name;                     /* --name= */
} ClientArgs;

extern ClientArgs arg_client;
void client_args_done(ClientArgs *a);

int verb_client_create(int argc, char *argv[], char *tail[]);
int verb_client_list(int argc, char *argv[], char *tail[]);
int verb_client_rm(int argc, char *argv[], char *tail[]);
