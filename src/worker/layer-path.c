/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <limits.h>

#include "layer-path.h"
#include "macro.h"

int layer_path_normalize(const char *name, char **ret) {
        _cleanup_free_ char *out = NULL;
        size_t n = 0;
        const char *p = name;

        if (!name || *name == '/')
                return -EINVAL;
        if (strlen(name) >= PATH_MAX)
                return -ENAMETOOLONG;

        out = malloc(strlen(name) + 1);
        if (!out)
                return -ENOMEM;

        while (*p) {
                size_t l = strcspn(p, "/");

                if (l == 2 && strneq(p, "..", 2))
                        return -EINVAL;
                if (l > NAME_MAX)
                        return -ENAMETOOLONG;
                if (l > 0 && !(l == 1 && p[0] == '.')) {
                        if (n > 0)
                                out[n++] = '/';
                        memcpy(out + n, p, l);
                        n += l;
                }
                p += l;
                while (*p == '/')
                        p++;
        }
        out[n] = 0;
        *ret = TAKE_PTR(out);
        return 0;
}

int layer_whiteout_kind(const char *base, WhiteoutKind *ret_kind, const char **ret_target) {
        const char *t;

        if (!strneq(base, ".wh.", 4)) {
                *ret_kind = WHITEOUT_NONE;
                return 0;
        }
        if (streq(base, ".wh..wh..opq")) {
                *ret_kind = WHITEOUT_OPAQUE;
                return 0;
        }
        if (strneq(base, ".wh..wh.", 8)) {
                *ret_kind = WHITEOUT_META;
                return 0;
        }
        t = base + 4;
        if (!*t || streq(t, ".") || streq(t, "..") || strchr(t, '/'))
                return -EINVAL;
        *ret_kind = WHITEOUT_FILE;
        if (ret_target)
                *ret_target = t;
        return 0;
}

int layer_path_split(const char *path, char **ret_parent, const char **ret_base) {
        const char *slash = strrchr(path, '/');

        *ret_parent = slash ? strndup(path, slash - path) : strdup("");
        if (!*ret_parent)
                return -ENOMEM;
        *ret_base = slash ? slash + 1 : path;
        return 0;
}
