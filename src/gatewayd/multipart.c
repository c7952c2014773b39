/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "multipart.h"

typedef enum MultipartState {
        STATE_FIRST,            /* the body must start with "--boundary" */
        STATE_AFTER_DELIMITER,  /* "\r\n" (a part follows) or "--" (the end) */
        STATE_HEADERS,
        STATE_BODY,
        STATE_DONE,             /* after the close delimiter: the epilogue is ignored */
        STATE_FAILED,
} MultipartState;

struct MultipartParser {
        MultipartCallbacks cb;
        void *userdata;
        MultipartState state;

        /* "\r\n--BOUNDARY": its first byte, '\r', occurs nowhere else in it (a boundary has no
         * control characters), so a mismatch never hides the start of another match, and the bytes
         * matched so far are always delimiter[0..matched): nothing needs buffering. */
        char delimiter[4 + MULTIPART_BOUNDARY_MAX + 1];
        size_t delimiter_len, matched;

        char after[2];
        size_t n_after;

        char headers[MULTIPART_HEADERS_MAX];
        size_t n_headers, line_start;
        char *name, *filename, *content_type;
        bool disposition_seen, in_part;
        unsigned n_parts;

        char error[160];
};

static bool is_bchar(char c) {
        /* RFC 2046 bcharsnospace and space */
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               strchr("'()+_,-./:=? ", c) != NULL;
}

static bool boundary_is_valid(const char *b, size_t n) {
        if (n == 0 || n > MULTIPART_BOUNDARY_MAX || b[n - 1] == ' ')
                return false;
        for (size_t i = 0; i < n; i++)
                if (b[i] == 0 || !is_bchar(b[i]))
                        return false;
        return true;
}

static bool is_tchar(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *skip_ows(const char *s) {
        while (*s == ' ' || *s == '\t')
                s++;
        return s;
}

/* A token or a quoted-string (with quoted-pairs) at *s; advances *s past it. */
static int parse_value(const char **s, char **ret) {
        const char *p = *s;
        char *out, *w;

        if (*p != '"') {
                size_t n = 0;
                while (is_tchar(p[n]))
                        n++;
                if (n == 0 || n > MULTIPART_NAME_MAX)
                        return -EINVAL;
                out = strndup(p, n);
                if (!out)
                        return -ENOMEM;
                *s = p + n;
                *ret = out;
                return 0;
        }
        out = w = malloc(MULTIPART_NAME_MAX + 1);
        if (!out)
                return -ENOMEM;
        for (p++;; p++) {
                if (*p == '"')
                        break;
                if (*p == '\\' && p[1] != 0)
                        p++;
                /* control characters (a header line has no CR or LF left) end nothing: refused */
                if (*p == 0 || (unsigned char) *p < 0x20 || *p == 0x7f || w - out >= (ptrdiff_t) MULTIPART_NAME_MAX) {
                        free(out);
                        return -EINVAL;
                }
                *w++ = *p;
        }
        *w = 0;
        *s = p + 1;
        *ret = out;
        return 0;
}

int multipart_boundary_from_content_type(const char *ct, char **ret) {
        static const char t[] = "multipart/form-data";
        _cleanup_free_ char *boundary = NULL;
        const char *p;
        int r;

        if (!ct || strncasecmp(ct, t, strlen(t)) != 0)
                return -EMEDIUMTYPE;
        p = skip_ows(ct + strlen(t));
        if (*p != 0 && *p != ';')
                return -EMEDIUMTYPE;
        while (*p == ';') {
                _cleanup_free_ char *value = NULL;
                const char *name;
                size_t n = 0;

                p = skip_ows(p + 1);
                name = p;
                while (is_tchar(p[n]))
                        n++;
                if (n == 0 || p[n] != '=')
                        return -EINVAL;
                p += n + 1;
                r = parse_value(&p, &value);
                if (r < 0)
                        return r;
                if (n == strlen("boundary") && strncasecmp(name, "boundary", n) == 0) {
                        if (boundary)
                                return -EINVAL;
                        boundary = TAKE_PTR(value);
                }
                p = skip_ows(p);
        }
        if (*p != 0 || !boundary || !boundary_is_valid(boundary, strlen(boundary)))
                return -EINVAL;
        *ret = TAKE_PTR(boundary);
        return 0;
}

int multipart_parser_new(const char *boundary, const MultipartCallbacks *cb, void *userdata, MultipartParser **ret) {
        MultipartParser *p;

        if (!boundary_is_valid(boundary, strlen(boundary)))
                return -EINVAL;
        p = calloc(1, sizeof(MultipartParser));
        if (!p)
                return -ENOMEM;
        p->cb = *cb;
        p->userdata = userdata;
        p->delimiter_len = (size_t) snprintf(p->delimiter, sizeof(p->delimiter), "\r\n--%s", boundary);
        p->matched = 2;         /* the first delimiter has no CRLF before it */
        p->state = STATE_FIRST;
        *ret = p;
        return 0;
}

static void part_reset(MultipartParser *p) {
        p->name = mfree(p->name);
        p->filename = mfree(p->filename);
        p->content_type = mfree(p->content_type);
        p->disposition_seen = false;
        p->n_headers = p->line_start = 0;
}

MultipartParser *multipart_parser_free(MultipartParser *p) {
        if (!p)
                return NULL;
        part_reset(p);
        free(p);
        return NULL;
}

const char *multipart_parser_error(const MultipartParser *p) {
        return p->error;
}

int multipart_parser_fail(MultipartParser *p, const char *message) {
        if (p->state != STATE_FAILED) {
                snprintf(p->error, sizeof(p->error), "%s", message);
                p->state = STATE_FAILED;
        }
        return -EBADMSG;
}

static int fail_errno(MultipartParser *p, int r, const char *message) {
        if (r != -ENOMEM)
                return multipart_parser_fail(p, message);
        multipart_parser_fail(p, "Out of memory.");
        return r;
}

/* "form-data; name=\"x\"; filename=\"y\"" */
static int parse_disposition(MultipartParser *p, const char *v) {
        static const char fd[] = "form-data";
        int r;

        if (p->disposition_seen)
                return multipart_parser_fail(p, "Multipart body: a part has two Content-Disposition headers.");
        p->disposition_seen = true;
        if (strncasecmp(v, fd, strlen(fd)) != 0 || (v[strlen(fd)] != 0 && v[strlen(fd)] != ';' && v[strlen(fd)] != ' '))
                return multipart_parser_fail(p, "Multipart body: a part's Content-Disposition is not form-data.");
        v = skip_ows(v + strlen(fd));
        while (*v == ';') {
                _cleanup_free_ char *value = NULL;
                const char *key;
                size_t n = 0;
                char **target = NULL;

                v = skip_ows(v + 1);
                key = v;
                while (is_tchar(v[n]))
                        n++;
                if (n == 0 || v[n] != '=')
                        return multipart_parser_fail(p, "Multipart body: malformed Content-Disposition parameter.");
                v += n + 1;
                r = parse_value(&v, &value);
                if (r < 0)
                        return fail_errno(p, r, "Multipart body: malformed Content-Disposition parameter value.");
                if (n == 4 && strncasecmp(key, "name", 4) == 0)
                        target = &p->name;
                else if (n == 8 && strncasecmp(key, "filename", 8) == 0)
                        target = &p->filename;
                /* others (filename*, …) are ignored */
                if (target) {
                        if (*target)
                                return multipart_parser_fail(p, "Multipart body: a Content-Disposition parameter is repeated.");
                        *target = TAKE_PTR(value);
                }
                v = skip_ows(v);
        }
        if (*v != 0)
                return multipart_parser_fail(p, "Multipart body: malformed Content-Disposition.");
        if (!p->name || !p->name[0])
                return multipart_parser_fail(p, "Multipart body: a part has no field name.");
        return 0;
}

static int parse_header_line(MultipartParser *p, char *line, size_t n) {
        char *colon, *v, *end;

        line[n] = 0;
        if (line[0] == ' ' || line[0] == '\t')
                return multipart_parser_fail(p, "Multipart body: folded header lines are not accepted.");
        colon = memchr(line, ':', n);
        if (!colon || colon == line)
                return multipart_parser_fail(p, "Multipart body: malformed part header.");
        for (char *c = line; c < colon; c++)
                if (!is_tchar(*c))
                        return multipart_parser_fail(p, "Multipart body: malformed part header name.");
        *colon = 0;
        v = (char *) skip_ows(colon + 1);
        end = v + strlen(v);
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                *--end = 0;
        for (const char *c = v; *c; c++)
                if ((unsigned char) *c < 0x20 && *c != '\t')
                        return multipart_parser_fail(p, "Multipart body: control character in a part header.");

        if (strcasecmp(line, "Content-Disposition") == 0)
                return parse_disposition(p, v);
        if (strcasecmp(line, "Content-Type") == 0) {
                if (p->content_type)
                        return multipart_parser_fail(p, "Multipart body: a part has two Content-Type headers.");
                p->content_type = strdup(v);
                return p->content_type ? 0 : fail_errno(p, -ENOMEM, NULL);
        }
        if (strcasecmp(line, "Content-Transfer-Encoding") == 0 && strcasecmp(v, "binary") != 0 &&
            strcasecmp(v, "8bit") != 0 && strcasecmp(v, "7bit") != 0)
                return multipart_parser_fail(p, "Multipart body: only binary parts are accepted (Content-Transfer-Encoding).");
        return 0;  /* other headers are ignored */
}

static int part_begin(MultipartParser *p) {
        MultipartPart part;

        if (!p->disposition_seen)
                return multipart_parser_fail(p, "Multipart body: a part has no Content-Disposition.");
        if (++p->n_parts > MULTIPART_PARTS_MAX)
                return multipart_parser_fail(p, "Multipart body: too many parts.");
        part = (MultipartPart) { .name = p->name, .filename = p->filename, .content_type = p->content_type };
        p->in_part = true;
        return p->cb.begin ? p->cb.begin(&part, p->userdata) : 0;
}

/* One byte of the header block; a blank line ends it. */
static int callback_failed(MultipartParser *p, int r);

static int headers_byte(MultipartParser *p, char c) {
        size_t n;
        int r;

        if (p->n_headers >= sizeof(p->headers) - 1)
                return multipart_parser_fail(p, "Multipart body: a part's headers are too long.");
        p->headers[p->n_headers++] = c;
        if (c == '\n' && (p->n_headers < 2 || p->headers[p->n_headers - 2] != '\r'))
                return multipart_parser_fail(p, "Multipart body: part header lines must end with CRLF.");
        if (c != '\n')
                return 0;
        n = p->n_headers - 2 - p->line_start;
        if (memchr(p->headers + p->line_start, '\r', n))
                return multipart_parser_fail(p, "Multipart body: stray CR in a part header.");
        if (n == 0) {
                p->state = STATE_BODY;
                p->matched = 0;
                r = part_begin(p);
                return r < 0 ? callback_failed(p, r) : 0;
        }
        if (parse_header_line(p, p->headers + p->line_start, n) < 0)
                return -EBADMSG;
        p->line_start = p->n_headers;
        return 0;
}

static int emit(MultipartParser *p, const void *data, size_t n) {
        if (n == 0 || !p->cb.data)
                return 0;
        return p->cb.data(data, n, p->userdata);
}

static int callback_failed(MultipartParser *p, int r) {
        if (p->state != STATE_FAILED) {
                if (r == -ENOMEM)
                        snprintf(p->error, sizeof(p->error), "Out of memory.");
                else if (!p->error[0])
                        snprintf(p->error, sizeof(p->error), "Multipart body refused: %s", strerror(-r));
                p->state = STATE_FAILED;
        }
        return r;
}

/* The delimiter was found: the part (if any) ends. */
static int delimiter_found(MultipartParser *p) {
        int r;

        if (p->in_part) {
                p->in_part = false;
                r = p->cb.end ? p->cb.end(p->userdata) : 0;
                if (r < 0)
                        return callback_failed(p, r);
        }
        part_reset(p);
        p->state = STATE_AFTER_DELIMITER;
        p->n_after = 0;
        p->matched = 0;
        return 0;
}

/* Body bytes without a partial match pending: the longest run before a delimiter (or the piece's
 * end, or a possible delimiter cut by it) is handed over in one call, so that a binary artifact
 * (a '\r' every 256 bytes) is not cut into thousands of writes. */
static size_t feed_body_run(MultipartParser *p, const char *d, size_t n, int *ret) {
        size_t i = 0, end = n;

        for (;;) {
                const char *cr = memchr(d + i, '\r', n - i);
                size_t k, avail;

                if (!cr)
                        break;
                k = (size_t) (cr - d);
                avail = MIN(n - k, p->delimiter_len);
                if (memcmp(d + k, p->delimiter, avail) == 0) {
                        end = k;
                        break;
                }
                i = k + 1;
        }
        *ret = emit(p, d, end);
        if (*ret < 0) {
                *ret = callback_failed(p, *ret);
                return n;
        }
        if (end == n)
                return n;
        if (n - end >= p->delimiter_len) {
                *ret = delimiter_found(p);
                return end + p->delimiter_len;
        }
        p->matched = n - end;   /* a delimiter may go on in the next piece */
        return n;
}

/* Body bytes (or, in STATE_FIRST, the opening delimiter). */
static size_t feed_body(MultipartParser *p, const char *d, size_t n, int *ret) {
        size_t i = 0;
        int r;

        *ret = 0;
        while (i < n) {
                if (p->matched == 0 && p->state == STATE_BODY)
                        return i + feed_body_run(p, d + i, n - i, ret);
                if (d[i] == p->delimiter[p->matched]) {
                        i++;
                        if (++p->matched == p->delimiter_len) {
                                *ret = delimiter_found(p);
                                return i;
                        }
                        continue;
                }
                if (p->state == STATE_FIRST) {
                        *ret = multipart_parser_fail(p, "Multipart body: it does not start with the boundary (no preamble is accepted).");
                        return n;
                }
                /* Not the delimiter after all: what matched was data. */
                r = emit(p, p->delimiter, p->matched);
                if (r < 0) {
                        *ret = callback_failed(p, r);
                        return n;
                }
                p->matched = 0;
        }
        return i;
}

int multipart_parser_feed(MultipartParser *p, const void *data, size_t size) {
        const char *d = data;
        size_t i = 0;
        int r = 0;

        while (i < size && r >= 0)
                switch (p->state) {
                case STATE_FIRST:
                case STATE_BODY:
                        i += feed_body(p, d + i, size - i, &r);
                        break;
                case STATE_AFTER_DELIMITER:
                        p->after[p->n_after++] = d[i++];
                        if (p->n_after < 2)
                                break;
                        if (p->after[0] == '-' && p->after[1] == '-')
                                p->state = STATE_DONE;
                        else if (p->after[0] == '\r' && p->after[1] == '\n')
                                p->state = STATE_HEADERS;
                        else
                                r = multipart_parser_fail(p, "Multipart body: a boundary is followed by neither CRLF nor \"--\".");
                        break;
                case STATE_HEADERS:
                        r = headers_byte(p, d[i++]);
                        break;
                case STATE_DONE:
                        return 0;
                case STATE_FAILED:
                        return -EBADMSG;
                }
        return r < 0 ? r : 0;
}

int multipart_parser_finish(MultipartParser *p) {
        if (p->state == STATE_FAILED)
                return -EBADMSG;
        if (p->state != STATE_DONE)
                return multipart_parser_fail(p, p->n_parts == 0 && p->state == STATE_FIRST ?
                                             "Multipart body: empty or without any boundary." :
                                             "Multipart body: truncated (no closing boundary).");
        return 0;
}
