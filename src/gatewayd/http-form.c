/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "http-form.h"
#include "macro.h"

/* Bodies and credentials beyond this are not form posts a token endpoint expects. */
#define FORM_VALUE_MAX 4096U

int form_content_type_is_urlencoded(const char *ct) {
        static const char t[] = "application/x-www-form-urlencoded";
        size_t n = strlen(t);

        if (!ct || strncasecmp(ct, t, n) != 0)
                return false;
        return ct[n] == 0 || ct[n] == ';' || ct[n] == ' ';
}

static int hex_digit(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char) (c | 0x20);
        return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes s[0..n) ('+' and %HH) into a new string. An escaped NUL would cut the value short
 * where the caller compares it, so it is malformed. */
static int form_decode(const char *s, size_t n, char **ret) {
        char *out, *w;

        if (n > FORM_VALUE_MAX)
                return -EINVAL;
        out = w = malloc(n + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int hi, lo;

                if (s[i] == '+')
                        *w++ = ' ';
                else if (s[i] == '%') {
                        if (i + 2 >= n) {
                                free(out);
                                return -EINVAL;
                        }
                        hi = hex_digit(s[i + 1]);
                        lo = hex_digit(s[i + 2]);
                        if (hi < 0 || lo < 0 || (hi | lo) == 0) {
                                free(out);
                                return -EINVAL;
                        }
                        *w++ = (char) (hi << 4 | lo);
                        i += 2;
                } else if (s[i] == 0) {
                        free(out);
                        return -EINVAL;
                } else
                        *w++ = s[i];
        }
        *w = 0;
        *ret = out;
        return 0;
}

/* One "name=value" pair: whether its name is key, and if so its decoded value. */
static int form_pair(const char *pair, size_t n, const char *key, char **ret_value) {
        _cleanup_free_ char *name = NULL, *value = NULL;
        const char *eq = memchr(pair, '=', n);
        int r;

        r = form_decode(pair, eq ? (size_t) (eq - pair) : n, &name);
        if (r < 0)
                return r;
        if (!eq) {
                if (!streq(name, key))
                        return 0;
                *ret_value = strdup("");
                return *ret_value ? 1 : -ENOMEM;
        }
        /* Every value is decoded, so that a malformed body is refused whichever key is asked. */
        r = form_decode(eq + 1, n - (size_t) (eq + 1 - pair), &value);
        if (r < 0)
                return r;
        if (!streq(name, key))
                return 0;
        *ret_value = TAKE_PTR(value);
        return 1;
}

int form_get(const char *body, size_t size, const char *key, char **ret) {
        _cleanup_free_ char *found = NULL;

        for (size_t pos = 0; pos < size;) {
                const char *pair = body + pos, *amp = memchr(pair, '&', size - pos);
                size_t n = amp ? (size_t) (amp - pair) : size - pos;
                char *value = NULL;
                int r;

                pos += n + 1;
                if (n == 0)
                        continue;       /* "a=1&&b=2" */
                r = form_pair(pair, n, key, &value);
                if (r < 0)
                        return r;
                if (r == 0)
                        continue;
                if (found) {
                        free(value);
                        return -ENOTUNIQ;
                }
                found = value;
        }
        if (!found)
                return -ENOENT;
        *ret = TAKE_PTR(found);
        return 0;
}

/* Standard base64 with optional padding; nothing after the padding. */
static int base64_decode(const char *s, char **ret, size_t *ret_size) {
        size_t n = strlen(s), o = 0;
        uint32_t acc = 0;
        int bits = 0;
        char *out;

        if (n > FORM_VALUE_MAX)
                return -EINVAL;
        out = malloc(n / 4 * 3 + 4);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int v = base64_char_value(s[i]);

                if (v < 0) {
                        /* '=' only as padding at the end */
                        if (s[i] != '=' || strspn(s + i, "=") != n - i || n - i > 2) {
                                free(out);
                                return -EINVAL;
                        }
                        break;
                }
                acc = acc << 6 | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (char) ((acc >> bits) & 0xff);
                }
        }
        out[o] = 0;
        *ret = out;
        *ret_size = o;
        return 0;
}

int http_basic_parse(const char *header, char **ret_user, char **ret_password) {
        _cleanup_free_ char *raw = NULL, *user = NULL, *password = NULL;
        const char *colon;
        size_t n;
        int r;

        if (!header || strncasecmp(header, "Basic ", 6) != 0)
                return -ENOENT;
        header += 6;
        header += strspn(header, " ");
        r = base64_decode(header, &raw, &n);
        if (r < 0)
                return r;
        if (strlen(raw) != n)
                return -EINVAL;         /* a NUL inside */
        colon = strchr(raw, ':');
        if (!colon)
                return -EINVAL;
        r = form_decode(raw, (size_t) (colon - raw), &user);
        if (r < 0)
                return r;
        r = form_decode(colon + 1, strlen(colon + 1), &password);
        if (r < 0)
                return r;
        *ret_user = TAKE_PTR(user);
        *ret_password = TAKE_PTR(password);
        return 0;
}
