/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The body of Shifter's POST /api/pull/<system>/<type>/<tag>/ (http-shifter.c), apart so that
 * tests/fuzz/fuzz-shifter-pull.c can feed it what a client may send. */
typedef struct ShifterPullBody {
        uint32_t *uids, *gids;          /* ids > 0 */
        size_t n_uids, n_gids;
        bool acl;                       /* a private image: some uid or gid given */
} ShifterPullBody;

void shifter_pull_body_done(ShifterPullBody *b);

/* Empty or white space: no ACL. Otherwise a JSON object whose "allowed_uids" and
 * "allowed_gids" are comma-separated ids (or lists of integers); other keys are ignored, as
 * Shifter ignores them. Returns 0, -ENOMEM, or -EINVAL with the reason in *ret_error. */
int shifter_pull_body_parse(const char *body, size_t size, ShifterPullBody *ret, char **ret_error);
