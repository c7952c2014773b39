/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a network client controls of munge authentication (src/gatewayd/auth-munge.c): the
 * "authentication" header, checked by munge_credential_parse() before munged sees it, and the
 * credential's payload, the shifterimg login logins of registry_logins_from_munge_payload().
 * munged authenticates the payload's sender, not its shape: both parsers take any bytes. The
 * input is the header up to the first newline, the payload after it. */
#include "fuzz.h"
#include "munge-credential.h"
#include "registry-logins.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t header_size = nl ? (size_t) (nl - data) : size;
        _cleanup_free_ char *header = fuzz_strndup(data, header_size), *credential = NULL;
        _cleanup_(registry_logins_freep) RegistryLogins *logins = NULL;
        const uint8_t *payload = nl ? nl + 1 : data + size;
        size_t payload_size = size - (size_t) (payload - data);
        char key[65];

        fuzz_quiet();
        if (munge_credential_parse(header, &credential, key) == 0) {
                size_t n = strlen(credential);

                /* What munged gets: "MUNGE:…:" with nothing around it, and a hex key. */
                fuzz_assert(strncmp(credential, "MUNGE:", 6) == 0 && credential[n - 1] == ':');
                fuzz_assert(n <= MUNGE_CREDENTIAL_MAX && strspn(key, "0123456789abcdef") == 64);
        }

        if (registry_logins_from_munge_payload(payload, payload_size, &logins) < 0 || !logins)
                return 0;
        fuzz_assert(logins->n <= REGISTRY_LOGINS_MAX);
        for (size_t i = 0; i < logins->n; i++) {
                const RegistryLogin *l = &logins->logins[i];

                /* A login always has a location, a non-empty user name without ':' and a password. */
                fuzz_assert(l->location && l->username && l->password);
                fuzz_assert(*l->username && !strchr(l->username, ':'));
                fuzz_assert(registry_logins_find(logins, l->location));
        }
        fuzz_assert(logins->error || logins->n > 0 || !registry_logins_find(logins, "default"));
        return 0;
}
