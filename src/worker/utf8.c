/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "utf8.h"

size_t utf8_sequence_length(const unsigned char *p, size_t left) {
        unsigned char c;
        unsigned n, cp, min;

        if (left == 0)
                return 0;
        c = p[0];
        if (c < 0x80)
                return 1;
        if (c >= 0xC2 && c <= 0xDF)
                n = 1, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF)
                n = 2, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4)
                n = 3, cp = c & 0x07, min = 0x10000;
        else
                return 0;
        if (left <= n)
                return 0;
        for (unsigned i = 1; i <= n; i++) {
                if ((p[i] & 0xC0) != 0x80)
                        return 0;
                cp = (cp << 6) | (p[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return 0;
        return n + 1;
}

void utf8_sanitize(char *s, size_t len) {
        unsigned char *p = (unsigned char *) s;
        size_t i = 0;

        while (i < len) {
                size_t n = utf8_sequence_length(p + i, len - i);
                if (n == 0) {
                        p[i++] = '?';
                        continue;
                }
                i += n;
        }
}
