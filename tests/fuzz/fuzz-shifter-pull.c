/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bodies of Shifter's POST /api/pull/<system>/<type>/<tag>/: shifter_pull_body_parse()
 * (src/gatewayd/http-shifter.c), which takes JSON whatever Content-Type says and reads
 * "allowed_uids"/"allowed_gids" as shifterimg sends them ("1000,1001") or as lists of integers.
 * A refusal says why; what is accepted is ids in 1..UINT32_MAX-1, a private image exactly when
 * there is one, and the lists written back both ways (shifterimg's string, a JSON list) read
 * back as the same lists. A string of ids is also read by a plain reference reader (below); both
 * must agree on whether it is valid and on the ids. */
#include <errno.h>
#include <inttypes.h>

#include "fuzz.h"
#include "http-shifter.h"
#include "json-util.h"
#include "macro.h"

/* The grammar of a string of ids, read the plain way: "" or ITEM ("," ITEM)* [","], ITEM being
 * spaces, decimal digits, spaces; each below UINT32_MAX; zeros dropped. Returns the number of
 * ids or -1. */
static ssize_t reference_ids(const char *s, size_t len, uint32_t *out) {
        size_t i = 0, n = 0;

        while (i < len) {
                uint64_t x = 0;
                size_t digits = 0;

                while (i < len && s[i] == ' ')
                        i++;
                for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++)
                        x = x >= UINT32_MAX ? UINT32_MAX : x * 10 + (uint64_t) (s[i] - '0');
                while (i < len && s[i] == ' ')
                        i++;
                if (digits == 0 || x >= UINT32_MAX || (i < len && s[i] != ','))
                        return -1;
                if (x > 0)
                        out[n++] = (uint32_t) x;
                if (i < len)
                        i++;    /* the comma; one at the very end is fine */
        }
        return (ssize_t) n;
}

/* For each string of ids in the body: what the reference reader makes of it. */
static void check_against_reference(const char *body, size_t size, int r, const ShifterPullBody *b) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        bool refused = false, lists = false;

        if (json_parse_untrusted(body, size, &o, NULL, NULL) < 0 || !json_object_is_type(o, json_type_object))
                return;
        json_object_object_foreach(o, k, v) {
                bool uids = streq(k, "allowed_uids");
                _cleanup_free_ uint32_t *l = NULL;
                ssize_t n;

                if (!(uids || streq(k, "allowed_gids")))
                        continue;
                if (json_object_is_type(v, json_type_array))
                        lists = true;   /* the round trips cover them */
                else if (!json_object_is_type(v, json_type_null) && !json_object_is_type(v, json_type_string))
                        refused = true;
                if (!json_object_is_type(v, json_type_string))
                        continue;
                l = calloc(json_object_get_string_len(v) + 1, sizeof(uint32_t));
                fuzz_assert(l);
                n = reference_ids(json_object_get_string(v), json_object_get_string_len(v), l);
                if (n < 0) {
                        refused = true;
                        fuzz_assert(r < 0);
                        continue;
                }
                if (r < 0)
                        continue;       /* refused for the other key */
                fuzz_assert((size_t) n == (uids ? b->n_uids : b->n_gids));
                fuzz_assert(n == 0 || memcmp(l, uids ? b->uids : b->gids, n * sizeof(uint32_t)) == 0);
        }
        if (!refused && !lists)
                fuzz_assert(r == 0);
}

static char *ids_text(const uint32_t *l, size_t n, bool as_list) {
        size_t size = 2 + n * 11 + 1;
        char *s = malloc(size), *p = s;

        fuzz_assert(s);
        if (as_list)
                *p++ = '[';
        for (size_t k = 0; k < n; k++)
                p += sprintf(p, "%s%" PRIu32, k > 0 ? "," : "", l[k]);
        if (as_list)
                *p++ = ']';
        *p = 0;
        return s;
}

static void check_reads_back(const ShifterPullBody *b, bool as_list) {
        _cleanup_free_ char *uids = ids_text(b->uids, b->n_uids, as_list);
        _cleanup_free_ char *gids = ids_text(b->gids, b->n_gids, as_list);
        _cleanup_free_ char *text = NULL, *error = NULL;
        _cleanup_(shifter_pull_body_done) ShifterPullBody back = {};
        const char *q = as_list ? "" : "\"";

        fuzz_assert(asprintf(&text, "{\"allowed_uids\": %s%s%s, \"allowed_gids\": %s%s%s}",
                             q, uids, q, q, gids, q) >= 0);
        fuzz_assert(shifter_pull_body_parse(text, strlen(text), &back, &error) == 0);
        fuzz_assert(back.acl == b->acl);
        fuzz_assert(back.n_uids == b->n_uids && back.n_gids == b->n_gids);
        fuzz_assert(b->n_uids == 0 || memcmp(back.uids, b->uids, b->n_uids * sizeof(uint32_t)) == 0);
        fuzz_assert(b->n_gids == 0 || memcmp(back.gids, b->gids, b->n_gids * sizeof(uint32_t)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *body = fuzz_strndup(data, size), *error = NULL;
        _cleanup_(shifter_pull_body_done) ShifterPullBody b = {};
        int r;

        fuzz_quiet();
        r = shifter_pull_body_parse(body, size, &b, &error);
        check_against_reference(body, size, r, &b);
        if (r < 0) {
                fuzz_assert(r == -EINVAL || r == -ENOMEM);
                fuzz_assert(r == -ENOMEM || (error && error[0]));
                fuzz_assert(!b.uids && !b.gids && !b.acl);
                return 0;
        }
        fuzz_assert(!error);
        fuzz_assert(b.acl == (b.n_uids > 0 || b.n_gids > 0));
        fuzz_assert(!b.n_uids || b.uids);
        fuzz_assert(!b.n_gids || b.gids);
        for (size_t k = 0; k < b.n_uids; k++)
                fuzz_assert(b.uids[k] > 0 && b.uids[k] < UINT32_MAX);
        for (size_t k = 0; k < b.n_gids; k++)
                fuzz_assert(b.gids[k] > 0 && b.gids[k] < UINT32_MAX);
        check_reads_back(&b, false);
        check_reads_back(&b, true);
        return 0;
}
