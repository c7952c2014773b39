/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <gnutls/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "macro.h"
#include "munge-credential.h"

/* Canonical base64: whole quads, "=" only as the last one or two characters, and the bits that
 * padding leaves over are zero (every other spelling decodes to the same bytes as some canonical
 * one, and would be a second name for one credential). */
static bool base64_is_canonical(const char *s, size_t n) {
        size_t pad = 0;
        int last;

        if (n == 0 || n % 4 != 0)
                return false;
        if (s[n - 1] == '=')
                pad = s[n - 2] == '=' ? 2 : 1;
        for (size_t i = 0; i < n - pad; i++)
                if (base64_char_value(s[i]) < 0)
                        return false;
        if (pad == 0)
                return true;
        last = base64_char_value(s[n - pad - 1]);
        return pad == 1 ? (last & 0x03) == 0 : (last & 0x0f) == 0;
}

int munge_credential_parse(const char *header, char **ret_credential, char ret_key[static 65]) {
        static const char hex[] = "0123456789abcdef";
        const size_t prefix = strlen(MUNGE_CREDENTIAL_PREFIX);
        uint8_t digest[32];
        const char *s;
        size_t n;

        if (!header)
                return -EINVAL;
        s = header + strspn(header, " \t");
        n = strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
                n--;
        if (n > MUNGE_CREDENTIAL_MAX || n < prefix + 2 || !strneq(s, MUNGE_CREDENTIAL_PREFIX, prefix) || s[n - 1] != ':')
                return -EINVAL;
        if (!base64_is_canonical(s + prefix, n - prefix - 1))
                return -EINVAL;

        if (gnutls_hash_fast(GNUTLS_DIG_SHA256, s, n, digest) < 0)
                return -EIO;
        for (size_t i = 0; i < sizeof(digest); i++) {
                ret_key[2 * i] = hex[digest[i] >> 4];
                ret_key[2 * i + 1] = hex[digest[i] & 15];
        }
        ret_key[64] = 0;
        *ret_credential = strndup(s, n);
        return *ret_credential ? 0 : -ENOMEM;
}
