/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The worker's line splitter (src/worker/line-splitter.c), which cuts a job's stdout and stderr
 * into lines. Input: one byte choosing the line limit, one the size of the reads, then the stream.
 * The pieces, joined again, must give back the stream; no piece is longer than the limit, each
 * is NUL-terminated, and the last piece of a line is never marked continued. */
#include <stdbool.h>

#include "fuzz.h"
#include "line-splitter.h"
#include "macro.h"

typedef struct Rebuild {
        char *buf;
        size_t len, max_line;
        bool last_continued;
} Rebuild;

static int on_line(const char *data, size_t len, bool continued, void *userdata) {
        Rebuild *b = userdata;

        fuzz_assert(len <= b->max_line);
        fuzz_assert(data[len] == 0);
        fuzz_assert(!continued || len == b->max_line);
        memcpy(b->buf + b->len, data, len);
        b->len += len;
        if (!continued)
                b->buf[b->len++] = '\n';
        b->last_continued = continued;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        LineSplitter s;
        Rebuild b = {};
        size_t chunk, n;

        fuzz_quiet();
        if (size < 2)
                return 0;
        b.max_line = 1 + data[0] % 64;
        chunk = 1 + data[1];
        data += 2;
        size -= 2;

        b.buf = malloc(2 * size + 2);
        if (!b.buf)
                abort();
        line_splitter_init(&s, b.max_line, on_line, &b);
        for (size_t off = 0; off < size; off += n) {
                n = MIN(chunk, size - off);
                fuzz_assert(line_splitter_feed(&s, (const char *) data + off, n) >= 0);
        }
        fuzz_assert(line_splitter_flush(&s) >= 0);
        line_splitter_done(&s);

        fuzz_assert(!b.last_continued);
        if (size > 0 && data[size - 1] != '\n') {
                fuzz_assert(b.len == size + 1 && b.buf[size] == '\n');
                b.len--;
        }
        fuzz_assert(b.len == size && memcmp(b.buf, data, size) == 0);
        free(b.buf);
        return 0;
}
