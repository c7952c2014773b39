/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http-head.h"

/* RFC 9110 §5.6.2 tchar. */
static bool is_tchar(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_token(const char *s, size_t n) {
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_tchar(s[i]))
                        return false;
        return true;
}

/* Visible characters, spaces and tabs; no control characters (no CR, LF or NUL inside). */
static bool is_field_value(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                if ((c < 0x20 && c != '\t') || c == 0x7f)
                        return false;
        }
        return true;
}

HttpHead *http_head_free(HttpHead *h) {
        if (!h)
                return NULL;
        free(h->method);
        free(h->target);
        free(h->version);
        for (size_t i = 0; i < h->n_fields; i++) {
                free(h->fields[i].name);
                free(h->fields[i].value);
        }
        free(h->fields);
        free(h);
        return NULL;
}

static int parse_request_line(HttpHead *h, const char *line, size_t n) {
        const char *sp1 = memchr(line, ' ', n), *sp2;

        if (!sp1)
                return -EBADMSG;
        sp2 = memchr(sp1 + 1, ' ', n - (size_t) (sp1 + 1 - line));
        if (!sp2 || memchr(sp2 + 1, ' ', n - (size_t) (sp2 + 1 - line)))
                return -EBADMSG;
        if (!is_token(line, (size_t) (sp1 - line)))
                return -EBADMSG;
        /* origin-form only: a proxy of ours is not a forward proxy */
        if (sp2 - sp1 < 2 || sp1[1] != '/' || !is_field_value(sp1 + 1, (size_t) (sp2 - sp1 - 1)) ||
            memchr(sp1 + 1, '\t', (size_t) (sp2 - sp1 - 1)))
                return -EBADMSG;
        if ((size_t) (line + n - sp2 - 1) != 8 || (strncmp(sp2 + 1, "HTTP/1.1", 8) != 0 && strncmp(sp2 + 1, "HTTP/1.0", 8) != 0))
                return -EBADMSG;
        h->method = strndup(line, (size_t) (sp1 - line));
        h->target = strndup(sp1 + 1, (size_t) (sp2 - sp1 - 1));
        h->version = strndup(sp2 + 1, 8);
        return h->method && h->target && h->version ? 0 : -ENOMEM;
}

static int parse_field(HttpHead *h, const char *line, size_t n) {
        const char *colon = memchr(line, ':', n), *v, *end = line + n;
        HttpHeadField *f;

        /* no whitespace before the colon (RFC 9112 §5.1), no obsolete line folding */
        if (!colon || !is_token(line, (size_t) (colon - line)))
                return -EBADMSG;
        for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
                ;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
        if (!is_field_value(v, (size_t) (end - v)))
                return -EBADMSG;
        if (h->n_fields >= HTTP_HEAD_FIELDS_MAX)
                return -E2BIG;
        f = realloc(h->fields, (h->n_fields + 1) * sizeof(HttpHeadField));
        if (!f)
                return -ENOMEM;
        h->fields = f;
        f[h->n_fields] = (HttpHeadField) {
                .name = strndup(line, (size_t) (colon - line)),
                .value = strndup(v, (size_t) (end - v)),
        };
        h->n_fields++;
        return f[h->n_fields - 1].name && f[h->n_fields - 1].value ? 0 : -ENOMEM;
}

int http_head_parse(const char *data, size_t size, HttpHead **ret) {
        _cleanup_(http_head_freep) HttpHead *h = NULL;
        const char *p = data, *end;
        size_t limit = size < HTTP_HEAD_MAX ? size : HTTP_HEAD_MAX;
        int r;

        /* The end of the head: CRLF CRLF within the limit. */
        end = NULL;
        for (size_t i = 0; i + 3 < limit; i++)
                if (data[i] == '\r' && data[i + 1] == '\n' && data[i + 2] == '\r' && data[i + 3] == '\n') {
                        end = data + i + 2;
                        break;
                }
        if (!end)
                return size >= HTTP_HEAD_MAX ? -E2BIG : memchr(data, 0, size) ? -EBADMSG : 0;
        if (memchr(data, 0, (size_t) (end - data)))
                return -EBADMSG;

        h = calloc(1, sizeof(HttpHead));
        if (!h)
                return -ENOMEM;
        for (bool first = true; p < end; first = false) {
                const char *eol = memchr(p, '\r', (size_t) (end - p));

                if (!eol || eol[1] != '\n')
                        return -EBADMSG;        /* a bare CR or LF */
                if (memchr(p, '\n', (size_t) (eol - p)))
                        return -EBADMSG;
                r = first ? parse_request_line(h, p, (size_t) (eol - p)) : parse_field(h, p, (size_t) (eol - p));
                if (r < 0)
                        return r;
                p = eol + 2;
        }
        if (!h->method)
                return -EBADMSG;
        h->size = (size_t) (end - data) + 2;
        *ret = TAKE_PTR(h);
        return (int) (*ret)->size;
}

const char *http_head_get(const HttpHead *h, const char *name) {
        for (size_t i = 0; i < h->n_fields; i++)
                if (strcasecmp(h->fields[i].name, name) == 0)
                        return h->fields[i].value;
        return NULL;
}

bool http_head_has_token(const HttpHead *h, const char *name, const char *token) {
        size_t n = strlen(token);

        for (size_t i = 0; i < h->n_fields; i++) {
                const char *v = h->fields[i].value;

                if (strcasecmp(h->fields[i].name, name) != 0)
                        continue;
                while (*v) {
                        size_t len;
                        v += strspn(v, " \t,");
                        len = strcspn(v, ",");
                        while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
                                len--;
                        if (len == n && strncasecmp(v, token, n) == 0)
                                return true;
                        v += strcspn(v, ",");
                }
        }
        return false;
}

bool http_head_is_websocket(const HttpHead *h) {
        return streq(h->method, "GET") && http_head_has_token(h, "Upgrade", "websocket") &&
               http_head_has_token(h, "Connection", "upgrade");
}
