/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a registry sends: manifests, indexes (manifest lists) and image configurations, parsed by
 * src/worker/manifest.c. Every parser sees every input; the first line may name a media type
 * ("application/...\n") as the Content-Type header would. */
#include "fuzz.h"
#include "macro.h"
#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = fuzz_strndup(data, size), *digest = NULL;
        _cleanup_(image_manifest_freep) ImageManifest *m = NULL;
        _cleanup_(image_config_freep) ImageConfig *c = NULL;
        const char *body = s, *media_type = NULL;
        Platform want = {};
        ManifestKind kind;
        char *nl;

        fuzz_quiet();
        if (strncmp(s, "application/", 12) == 0 && (nl = strchr(s, '\n'))) {
                *nl = 0;
                media_type = s;
                body = nl + 1;
        }

        (void) manifest_kind(media_type, body, &kind);

        if (image_manifest_parse(body, &m) >= 0) {
                fuzz_assert(m->config_digest);
                for (size_t i = 0; i < m->n_layers; i++)
                        fuzz_assert(m->layers[i].digest);
        }
        (void) image_config_parse(body, &c);

        if (platform_parse("linux/arm64", &want) < 0)
                abort();
        if (manifest_index_select(body, &want, &digest) >= 0)
                fuzz_assert(digest);
        platform_done(&want);

        /* The platform strings of the config ("Platforms" keys, pull bodies) */
        if (platform_parse(body, &want) >= 0) {
                _cleanup_free_ char *t = platform_to_string(&want);
                fuzz_assert(t);
                platform_done(&want);
        }
        return 0;
}
