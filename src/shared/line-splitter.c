/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "line-splitter.h"
#include "macro.h"

void line_splitter_init(LineSplitter *s, size_t max_line, line_cb cb, void *userdata) {
        *s = (LineSplitter) {
                .max_line = MAX(max_line, (size_t) 1),
                .cb = cb,
                .userdata = userdata,
        };
}

void line_splitter_done(LineSplitter *s) {
        s->buf = mfree(s->buf);
        s->len = 0;
}

static int ensure_buffer(LineSplitter *s) {
        /* Allocated once at the full size: a job that prints a 16 MiB result line needs it anyway,
         * and pages that are never touched cost nothing. */
        if (!s->buf) {
                s->buf = malloc(s->max_line + 1);
                if (!s->buf)
                        return -ENOMEM;
        }
        return 0;
}

static int emit(LineSplitter *s, bool continued) {
        int r;

        s->buf[s->len] = 0;
        r = s->cb(s->buf, s->len, continued, s->userdata);
        s->len = 0;
        return r;
}

int line_splitter_feed(LineSplitter *s, const char *data, size_t n) {
        int r;

        r = ensure_buffer(s);
        if (r < 0)
                return r;

        while (n > 0) {
                const char *nl = memchr(data, '\n', n);
                size_t take = nl ? (size_t) (nl - data) : n;
                size_t room = s->max_line - s->len;

                if (take > room) {
                        /* Over-long line: pass on a full piece and keep going. */
                        memcpy(s->buf + s->len, data, room);
                        s->len += room;
                        data += room;
                        n -= room;
                        r = emit(s, true);
                        if (r < 0)
                                return r;
                        continue;
                }

                memcpy(s->buf + s->len, data, take);
                s->len += take;
                data += take;
                n -= take;
                if (nl) {
                        data++;
                        n--;
                        r = emit(s, false);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int line_splitter_flush(LineSplitter *s) {
        if (s->len == 0)
                return 0;
        return emit(s, false);
}
