/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

/* Length of the valid UTF-8 sequence at p (at most left bytes): 1 for ASCII, 2-4 for a
 * well-formed multi-byte character (no overlong forms, surrogates or code points past U+10FFFF),
 * 0 if the bytes there are not valid UTF-8. */
size_t utf8_sequence_length(const unsigned char *p, size_t left);

/* Replaces every byte that is not part of valid UTF-8 with '?', in place: job output is
 * arbitrary bytes, but exit.json and events are JSON, whose readers expect UTF-8. */
void utf8_sanitize(char *s, size_t len);
