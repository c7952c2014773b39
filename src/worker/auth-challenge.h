/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* One challenge of a WWW-Authenticate header (RFC 7235), as registries send them:
 *   Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull"
 *   Basic realm="Registry Realm"
 * Parameter values may be quoted strings with backslash escapes or bare tokens. */
typedef struct AuthChallenge {
        char *scheme;  /* "bearer" or "basic", lowercased */
        char *realm;
        char *service;
        char *scope;
        char *error;   /* error="insufficient_scope" etc., if present */
} AuthChallenge;

/* Parses the first challenge in the header value. -EINVAL on malformed input. */
int auth_challenge_parse(const char *header, AuthChallenge **ret);
AuthChallenge *auth_challenge_free(AuthChallenge *c);
static inline void auth_challenge_freep(AuthChallenge **c) {
        auth_challenge_free(*c);
}
