/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdarg.h>
#include <stdio.h>

#include "json-util.h"
#include "macro.h"
#include "markers.h"
#include "utf8.h"

struct MarkerParser {
        MarkerLimits limits;
        marker_interim_cb on_interim;
        marker_warning_cb on_warning;
        void *userdata;

        size_t line_no;          /* lines completed so far */
        bool in_line;            /* the current line continues from an earlier piece */

        bool in_block;
        size_t block_line;       /* line of the opening marker */
        char *block;
        size_t block_len, block_alloc;
        bool block_overflow;

        char *result;
        size_t result_len, result_line;
        bool has_result;

        size_t interim_count;
        bool interim_limit_warned;
};

int marker_parser_new(const MarkerLimits *limits,
                      marker_interim_cb on_interim,
                      marker_warning_cb on_warning,
                      void *userdata,
                      MarkerParser **ret) {
        MarkerParser *p;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->limits = *limits;
        p->on_interim = on_interim;
        p->on_warning = on_warning;
        p->userdata = userdata;
        *ret = p;
        return 0;
}

MarkerParser *marker_parser_free(MarkerParser *p) {
        if (!p)
                return NULL;
        free(p->block);
        free(p->result);
        return mfree(p);
}


_printf_(2, 3)
static void warn(MarkerParser *p, const char *format, ...) {
        char buf[512];
        va_list ap;

        if (!p->on_warning)
                return;
        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);
        p->on_warning(buf, p->userdata);
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool has_prefix(const char *s, size_t n, const char *prefix) {
        size_t l = strlen(prefix);
        return n >= l && memcmp(s, prefix, l) == 0;
}

static bool is_multiline_marker(const char *s, size_t n) {
        size_t l = strlen(MARKER_MULTILINE);

        if (!has_prefix(s, n, MARKER_MULTILINE))
                return false;
        for (size_t i = l; i < n; i++)
                if (!is_blank(s[i]))
                        return false;
        return true;
}

/* A copy of s[0..n) without surrounding blanks, NUL-terminated. */
static char *strndup_trimmed(const char *s, size_t n, size_t *ret_len) {
        char *t;

        while (n > 0 && is_blank(s[0])) {
                s++;
                n--;
        }
        while (n > 0 && is_blank(s[n - 1]))
                n--;
        t = malloc(n + 1);
        if (!t)
                return NULL;
        memcpy(t, s, n);
        t[n] = 0;
        *ret_len = n;
        return t;
}

/* Takes ownership of text (may be NULL when the candidate was too large to keep). */
static void offer_result(MarkerParser *p, char *text, size_t len, size_t line, bool too_large) {
        _cleanup_free_ char *t = text;

        if (p->has_result)
                warn(p, "Ignoring result on line %zu: a result was already set on line %zu.",
                     line, p->result_line);
        else if (too_large || len > p->limits.result_max)
                warn(p, "Ignoring result on line %zu: larger than the limit of %zu bytes.",
                     line, p->limits.result_max);
        else if (!json_text_valid(t, len))
                warn(p, "Ignoring result on line %zu: not valid JSON.", line);
        else {
                p->result = TAKE_PTR(t);
                p->result_len = len;
                p->result_line = line;
                p->has_result = true;
        }
}

static int offer_interim(MarkerParser *p, const char *s, size_t n, size_t line, bool too_large) {
        _cleanup_free_ char *t = NULL;
        size_t len = 0;
        int r;

        if (p->interim_count >= p->limits.interim_count_max) {
                if (!p->interim_limit_warned)
                        warn(p, "Interim result limit of %zu reached on line %zu; ignoring further interim results.",
                             p->limits.interim_count_max, line);
                p->interim_limit_warned = true;
                return 0;
        }
        if (!too_large) {
                t = strndup_trimmed(s, n, &len);
                if (!t)
                        return -ENOMEM;
        }
        if (too_large || len > p->limits.interim_max) {
                warn(p, "Ignoring interim result on line %zu: larger than the limit of %zu bytes.",
                     line, p->limits.interim_max);
                return 0;
        }
        if (!json_text_valid(t, len)) {
                warn(p, "Ignoring interim result on line %zu: not valid JSON.", line);
                return 0;
        }
        if (p->on_interim) {
                r = p->on_interim(t, len, p->interim_count, p->userdata);
                if (r < 0)
                        return r;
        }
        p->interim_count++;
        return 0;
}

static int block_append(MarkerParser *p, const char *s, size_t n) {
        size_t need;

        if (p->block_overflow)
                return 0;
        /* The "\n" separator (not before the first line), the line, the final NUL. */
        need = p->block_len + (p->block_len > 0) + n + 1;
        if (need - 1 > p->limits.result_max) {
                /* Keep reading to the closing marker, but stop buffering. */
                p->block_overflow = true;
                p->block = mfree(p->block);
                p->block_len = p->block_alloc = 0;
                return 0;
        }
        if (need > p->block_alloc) {
                size_t a = MAX(need, MAX(p->block_alloc * 2, (size_t) 256));
                char *b = realloc(p->block, a);
                if (!b)
                        return -ENOMEM;
                p->block = b;
                p->block_alloc = a;
        }
        if (p->block_len > 0)
                p->block[p->block_len++] = '\n';
        memcpy(p->block + p->block_len, s, n);
        p->block_len += n;
        p->block[p->block_len] = 0;
        return 0;
}

static void block_close(MarkerParser *p) {
        char *text = NULL;
        size_t len = 0;

        if (!p->block_overflow) {
                text = strndup_trimmed(strempty(p->block), p->block_len, &len);
                if (!text) {
                        /* Out of memory: the result is lost, not the job. */
                        warn(p, "Ignoring result on line %zu: out of memory.", p->block_line);
                        goto finish;
                }
        }
        offer_result(p, text, len, p->block_line, p->block_overflow);
finish:
        p->block = mfree(p->block);
        p->block_len = p->block_alloc = 0;
        p->block_overflow = false;
        p->in_block = false;
}

static int feed_line(MarkerParser *p, const char *s, size_t n, size_t line) {
        if (p->in_block) {
                if (is_multiline_marker(s, n)) {
                        block_close(p);
                        return 0;
                }
                return block_append(p, s, n);
        }

        if (is_multiline_marker(s, n)) {
                p->in_block = true;
                p->block_line = line;
                p->block_overflow = false;
                return 0;
        }

        if (has_prefix(s, n, MARKER_RESULT)) {
                size_t l = strlen(MARKER_RESULT), len;
                char *t = strndup_trimmed(s + l, n - l, &len);
                if (!t)
                        return -ENOMEM;
                offer_result(p, t, len, line, false);
                return 0;
        }

        if (has_prefix(s, n, MARKER_INTERIM)) {
                size_t l = strlen(MARKER_INTERIM);
                return offer_interim(p, s + l, n - l, line, false);
        }

        return 0;
}

/* The first piece of a line that is longer than the splitter keeps: whatever it is, it is too
 * large to be a result or interim result. */
static int feed_overlong_start(MarkerParser *p, const char *s, size_t n, size_t line) {
        if (p->in_block) {
                p->block_overflow = true;
                p->block = mfree(p->block);
                p->block_len = p->block_alloc = 0;
                return 0;
        }
        if (has_prefix(s, n, MARKER_RESULT))
                offer_result(p, NULL, 0, line, true);
        else if (has_prefix(s, n, MARKER_INTERIM))
                return offer_interim(p, NULL, 0, line, true);
        return 0;
}

int marker_parser_feed(MarkerParser *p, const char *data, size_t len, bool continued) {
        size_t line = p->line_no + 1;
        int r;

        if (p->in_line) {
                /* The rest of an over-long line: already dealt with at its start. */
                if (!continued) {
                        p->in_line = false;
                        p->line_no++;
                }
                return 0;
        }

        if (continued) {
                p->in_line = true;
                return feed_overlong_start(p, data, len, line);
        }

        if (len > 0 && data[len - 1] == '\r')
                len--;
        r = feed_line(p, data, len, line);
        p->line_no++;
        return r;
}

int marker_parser_finish(MarkerParser *p) {
        if (p->in_line) {
                p->in_line = false;
                p->line_no++;
        }
        if (p->in_block) {
                warn(p, "Ignoring multiline result started on line %zu: no closing marker before the end of output.",
                     p->block_line);
                p->block = mfree(p->block);
                p->block_len = p->block_alloc = 0;
                p->in_block = false;
        }
        return 0;
}

bool marker_parser_has_result(const MarkerParser *p) {
        return p->has_result;
}

const char *marker_parser_result(const MarkerParser *p, size_t *ret_len) {
        if (ret_len)
                *ret_len = p->has_result ? p->result_len : 0;
        return p->has_result ? p->result : NULL;
}

size_t marker_parser_interim_count(const MarkerParser *p) {
        return p->interim_count;
}
