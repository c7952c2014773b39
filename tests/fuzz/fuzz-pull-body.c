/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bodies of POST /v1/images/pull: the JSON helper of the HTTP server, then
 * image_pull_body_parse() (src/gatewayd/http-images.c) and the credentials check of
 * image_pull_start(), then the reference parser the worker applies to what was accepted. */
#include "fuzz.h"
#include "gw-error.h"
#include "http-server.h"
#include "image-pull.h"
#include "json-util.h"
#include "reference.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *body = NULL;
        _cleanup_(image_reference_freep) ImageReference *ref = NULL;
        _cleanup_free_ uid_t *uids = NULL;
        _cleanup_free_ gid_t *gids = NULL;
        ImagePullRequest p = {};

        fuzz_quiet();
        if (http_json_body_parse((const char *) data, size, &body, &e) < 0) {
                fuzz_assert(e.message);
                return 0;
        }
        if (image_pull_body_parse(body, &p, &uids, &gids, &e) < 0) {
                fuzz_assert(gw_error_is_set(&e) && e.message);
                return 0;
        }
        fuzz_assert(p.reference);
        fuzz_assert(!p.n_acl_uids || p.acl_uids);
        fuzz_assert(!p.n_acl_gids || p.acl_gids);
        /* ids as given, never cut to 32 bits nor (uid_t) -1 */
        for (size_t k = 0; k < p.n_acl_uids; k++)
                fuzz_assert(p.acl_uids[k] != (uid_t) -1);
        for (size_t k = 0; k < p.n_acl_gids; k++)
                fuzz_assert(p.acl_gids[k] != (gid_t) -1);
        if (p.credentials)
                (void) credentials_are_valid(p.credentials);
        (void) image_reference_parse(p.reference, "docker.io", &ref);
        return 0;
}
