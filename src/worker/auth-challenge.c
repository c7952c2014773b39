/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <stdbool.h>

#include "auth-challenge.h"
#include "macro.h"

AuthChallenge *auth_challenge_free(AuthChallenge *c) {
        if (!c)
                return NULL;
        free(c->scheme);
        free(c->realm);
        free(c->service);
        free(c->scope);
        free(c->error);
        free(c);
        return NULL;
}

static bool is_token_char(char c) {
        return c != 0 && (isalnum((unsigned char) c) || strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ws(const char *p) {
        while (*p == ' ' || *p == '\t')
                p++;
        return p;
}

/* Reads a token or quoted string starting at *p into a new string. */
static int read_value(const char **p, char **ret) {
        const char *s = *p;
        _cleanup_free_ char *v = NULL;
        size_t n = 0;

        v = malloc(strlen(s) + 1);
        if (!v)
                return -ENOMEM;

        if (*s == '"') {
                s++;
                for (;;) {
                        if (*s == 0)
                                return -EINVAL; /* unterminated */
                        if (*s == '"') {
                                s++;
                                break;
                        }
                        if (*s == '\\') {
                                s++;
                                if (*s == 0)
                                        return -EINVAL;
                        }
                        v[n++] = *s++;
                }
        } else {
                while (is_token_char(*s) || *s == '/' || *s == '=' || *s == ':')
                        v[n++] = *s++;
                if (n == 0)
                        return -EINVAL;
        }
        v[n] = 0;
        *p = s;
        *ret = TAKE_PTR(v);
        return 0;
}

int auth_challenge_parse(const char *header, AuthChallenge **ret) {
        _cleanup_(auth_challenge_freep) AuthChallenge *c = NULL;
        const char *p;
        size_t n;
        int r;

        if (!header)
                return -EINVAL;

        c = calloc(1, sizeof(AuthChallenge));
        if (!c)
                return -ENOMEM;

        p = skip_ws(header);
        for (n = 0; is_token_char(p[n]); n++)
                ;
        if (n == 0)
                return -EINVAL;
        c->scheme = strndup(p, n);
        if (!c->scheme)
                return -ENOMEM;
        for (char *i = c->scheme; *i; i++)
                *i = tolower((unsigned char) *i);
        p = skip_ws(p + n);

        while (*p) {
                _cleanup_free_ char *key = NULL, *value = NULL;
                char **field = NULL;

                for (n = 0; is_token_char(p[n]); n++)
                        ;
                if (n == 0)
                        return -EINVAL;
                key = strndup(p, n);
                if (!key)
                        return -ENOMEM;
                p = skip_ws(p + n);
                if (*p != '=')
                        break; /* a second challenge ("Basic, Bearer …") starts here */
                p = skip_ws(p + 1);
                r = read_value(&p, &value);
                if (r < 0)
                        return r;

                if (strcasecmp(key, "realm") == 0)
                        field = &c->realm;
                else if (strcasecmp(key, "service") == 0)
                        field = &c->service;
                else if (strcasecmp(key, "scope") == 0)
                        field = &c->scope;
                else if (strcasecmp(key, "error") == 0)
                        field = &c->error;
                if (field) {
                        free(*field);
                        *field = TAKE_PTR(value);
                }

                p = skip_ws(p);
                if (*p == ',')
                        p = skip_ws(p + 1);
                else if (*p)
                        return -EINVAL;
        }

        if (streq(c->scheme, "bearer") && !c->realm)
                return -EINVAL;

        *ret = TAKE_PTR(c);
        return 0;
}
