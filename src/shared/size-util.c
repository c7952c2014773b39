/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "macro.h"
#include "size-util.h"

int parse_size(const char *s, uint64_t *ret) {
        static const struct { const char *suffix; unsigned shift; } suffixes[] = {
                { "",  0 },  { "B", 0 },
                { "K", 10 }, { "KiB", 10 },
                { "M", 20 }, { "MiB", 20 },
                { "G", 30 }, { "GiB", 30 },
                { "T", 40 }, { "TiB", 40 },
        };
        uint64_t n = 0;

        if (!s || !isdigit((unsigned char) *s))
                return -EINVAL;   /* also "-1", " 1", "+1", which strtoull() would take */
        for (; isdigit((unsigned char) *s); s++)
                if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, (uint64_t) (*s - '0'), &n))
                        return -ERANGE;

        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++)
                if (streq(s, suffixes[i].suffix)) {
                        if (n > ((uint64_t) INT64_MAX >> suffixes[i].shift))
                                return -ERANGE;
                        *ret = n << suffixes[i].shift;
                        return 0;
                }
        return -EINVAL;
}
