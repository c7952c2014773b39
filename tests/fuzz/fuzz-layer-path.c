/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Entry names inside layer tarballs (src/worker/layer-path.c). A normalized path is relative,
 * has no empty, "." or ".." component, and normalizes to itself; whiteout targets are never
 * "", "." or "..". */
#include <limits.h>

#include "fuzz.h"
#include "layer-path.h"
#include "macro.h"

static void check_component(const char *c, size_t n) {
        fuzz_assert(n > 0 && n <= NAME_MAX);
        fuzz_assert(!(n == 1 && c[0] == '.'));
        fuzz_assert(!(n == 2 && c[0] == '.' && c[1] == '.'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = fuzz_strndup(data, size), *norm = NULL, *again = NULL, *parent = NULL;
        const char *base, *target, *p, *slash;
        WhiteoutKind kind;

        fuzz_quiet();
        if (layer_path_normalize(s, &norm) < 0)
                return 0;
        fuzz_assert(norm[0] != '/');
        if (norm[0]) {
                for (p = norm;; p = slash + 1) {
                        slash = strchr(p, '/');
                        check_component(p, slash ? (size_t) (slash - p) : strlen(p));
                        if (!slash)
                                break;
                }
        }
        fuzz_assert(layer_path_normalize(norm, &again) >= 0 && streq(norm, again));

        if (!norm[0])
                return 0;
        fuzz_assert(layer_path_split(norm, &parent, &base) >= 0);
        fuzz_assert(base[0] && !strchr(base, '/'));
        if (layer_whiteout_kind(base, &kind, &target) >= 0 && kind == WHITEOUT_FILE) {
                fuzz_assert(target && target[0]);
                fuzz_assert(!streq(target, ".") && !streq(target, ".."));
        }
        return 0;
}
