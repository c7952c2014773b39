/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "json-util.h"
#include "macro.h"
#include "markers.h"
#include "result-request.h"

void result_request_done(ResultRequest *r) {
        free(r->method);
        free(r->path);
        free(r->authorization);
        free(r->content_type);
        *r = (ResultRequest) {};
}

static const char *find_head_end(const char *buf, size_t len) {
        for (size_t i = 0; i + 3 < len; i++)
                if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
                        return buf + i + 4;
        return NULL;
}

/* s is a piece of a buffer without a terminator: exactly n bytes are copied. */
static char *bytes_dup(const char *s, size_t n) {
        char *out = malloc(n + 1);

        if (!out)
                return NULL;
        memcpy(out, s, n);
        out[n] = 0;
        return out;
}

static char *trimmed_dup(const char *s, size_t n) {
        while (n > 0 && (*s == ' ' || *s == '\t'))
                s++, n--;
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
                n--;
        return bytes_dup(s, n);
}

static int parse_header(ResultRequest *r, const char *line, size_t n) {
        const char *colon = memchr(line, ':', n);
        size_t name_len, value_len;
        const char *value;

        if (!colon || colon == line)
                return -EBADMSG;
        name_len = (size_t) (colon - line);
        value = colon + 1;
        value_len = n - name_len - 1;
        for (size_t i = 0; i < value_len; i++)
                if (value[i] == 0)
                        return -EBADMSG;

#define IS(h) (name_len == strlen(h) && strncasecmp(line, h, name_len) == 0)
        if (IS("Authorization")) {
                if (r->authorization)
                        return -EBADMSG;
                r->authorization = trimmed_dup(value, value_len);
                return r->authorization ? 0 : -ENOMEM;
        }
        if (IS("Content-Type")) {
                char *semi;

                if (r->content_type)
                        return -EBADMSG;
                r->content_type = trimmed_dup(value, value_len);
                if (!r->content_type)
                        return -ENOMEM;
                semi = strchr(r->content_type, ';');
                if (semi)
                        *semi = 0;
                for (char *p = r->content_type; *p; p++)
                        *p = (char) tolower((unsigned char) *p);
                for (size_t l = strlen(r->content_type); l > 0 && strchr(" \t", r->content_type[l - 1]); l--)
                        r->content_type[l - 1] = 0;
                return 0;
        }
        if (IS("Content-Length")) {
                _cleanup_free_ char *v = trimmed_dup(value, value_len);
                uint64_t l = 0;

                if (!v)
                        return -ENOMEM;
                if (r->has_content_length || !*v || strlen(v) > 18 || v[strspn(v, "0123456789")])
                        return -EBADMSG;
                for (const char *p = v; *p; p++)
                        l = l * 10 + (uint64_t) (*p - '0');
                r->content_length = l;
                r->has_content_length = true;
                return 0;
        }
        if (IS("Transfer-Encoding"))
                r->chunked = true;
#undef IS
        return 0;
}

int result_request_parse_head(const char *buf, size_t len, ResultRequest *ret) {
        ResultRequest r = {};
        const char *end, *p, *eol, *sp1, *sp2;
        int k = 0;

        /* Nothing read yet (the endpoint's buffer may still be NULL). */
        if (!buf || len == 0)
                return -EAGAIN;
        end = find_head_end(buf, MIN(len, (size_t) RESULT_REQUEST_HEAD_MAX));
        if (!end)
                return len >= RESULT_REQUEST_HEAD_MAX ? -E2BIG : -EAGAIN;
        if (memchr(buf, 0, (size_t) (end - buf)))
                return -EBADMSG;

        /* request line: METHOD SP PATH SP HTTP/1.x. The buffer need not be NUL-terminated:
         * search only the head (which ends in CRLF CRLF, so there is a line end). */
        eol = memmem(buf, (size_t) (end - buf), "\r\n", 2);
        if (!eol)
                return -EBADMSG;
        sp1 = memchr(buf, ' ', (size_t) (eol - buf));
        sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t) (eol - sp1 - 1)) : NULL;
        if (!sp1 || !sp2 || sp1 == buf || sp2 == sp1 + 1 ||
            (size_t) (eol - sp2 - 1) != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0)
                return -EBADMSG;
        r.method = bytes_dup(buf, (size_t) (sp1 - buf));
        r.path = bytes_dup(sp1 + 1, (size_t) (sp2 - sp1 - 1));
        if (!r.method || !r.path)
                k = -ENOMEM;

        for (p = eol + 2; k >= 0 && p < end - 2; p = eol + 2) {
                eol = memmem(p, (size_t) (end - p), "\r\n", 2);
                k = eol ? parse_header(&r, p, (size_t) (eol - p)) : -EBADMSG;
        }
        if (k < 0) {
                result_request_done(&r);
                return k;
        }
        r.head_len = (size_t) (end - buf);
        *ret = r;
        return 0;
}

bool result_request_path_matches(const char *path, const char *job_id) {
        static const char prefix[] = "/api/v1/jobs/";
        size_t n = strlen(job_id);

        if (!job_id[0] || strncmp(path, prefix, sizeof(prefix) - 1) != 0)
                return false;
        path += sizeof(prefix) - 1;
        if (strncmp(path, job_id, n) != 0)
                return false;
        path += n;
        return streq(path, "/result") || streq(path, "/result/");
}

bool result_request_token_matches(const char *authorization, const char *token) {
        size_t n = strlen(token);
        unsigned char diff = 0;

        if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
                return false;
        authorization += 7;
        authorization += strspn(authorization, " ");
        if (strlen(authorization) != n || n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                diff |= (unsigned char) (authorization[i] ^ token[i]);
        return diff == 0;
}

static int hex_value(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char) tolower((unsigned char) c);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* The value of key in a application/x-www-form-urlencoded body, decoded; NULL: not there. */
static int form_value(const char *body, size_t len, const char *key, char **ret) {
        size_t key_len = strlen(key);
        const char *p = body, *end = body + len;

        while (p < end) {
                const char *amp = memchr(p, '&', (size_t) (end - p)) ?: end;

                if ((size_t) (amp - p) > key_len && strncmp(p, key, key_len) == 0 && p[key_len] == '=') {
                        char *out = malloc((size_t) (amp - p) + 1), *o = out;

                        if (!out)
                                return -ENOMEM;
                        for (const char *q = p + key_len + 1; q < amp; q++) {
                                int hi, lo;

                                if (*q == '+')
                                        *o++ = ' ';
                                else if (*q == '%') {
                                        if (amp - q < 3 || (hi = hex_value(q[1])) < 0 || (lo = hex_value(q[2])) < 0) {
                                                free(out);
                                                return -EINVAL;
                                        }
                                        *o++ = (char) (hi << 4 | lo);
                                        q += 2;
                                } else
                                        *o++ = *q;
                        }
                        *o = 0;
                        if (strlen(out) != (size_t) (o - out)) {        /* an encoded NUL */
                                free(out);
                                return -EINVAL;
                        }
                        *ret = out;
                        return 0;
                }
                p = amp + 1;
        }
        *ret = NULL;
        return 0;
}

static int json_value(const char *body, size_t len, char **ret) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *v;
        const char *s, *reason;
        size_t offset;

        if (json_parse_untrusted(body, len, &o, &offset, &reason) < 0 || !json_object_is_type(o, json_type_object))
                return -EINVAL;
        if (!json_object_object_get_ex(o, "result", &v)) {
                *ret = NULL;
                return 0;
        }
        /* The client sends json.dumps(result): a string holding the JSON text. A value that is
         * not a string is taken as the result itself. */
        s = json_object_is_type(v, json_type_string)
                ? json_object_get_string(v)
                : json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        *ret = strdup(s ?: "null");
        return *ret ? 0 : -ENOMEM;
}

int result_request_decode_body(const char *content_type, const char *body, size_t len, size_t result_max,
                               char **ret_json, const char **ret_error) {
        _cleanup_free_ char *json = NULL;
        int k;

        if (content_type && streq(content_type, "application/x-www-form-urlencoded"))
                k = form_value(body, len, "result", &json);
        else if (content_type && streq(content_type, "application/json"))
                k = json_value(body, len, &json);
        else {
                *ret_error = "The body must be application/x-www-form-urlencoded or application/json.";
                return -EMEDIUMTYPE;
        }
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                *ret_error = "The body cannot be parsed.";
                return -EINVAL;
        }
        if (!json) {
                *ret_error = "The body has no 'result'.";
                return -EINVAL;
        }
        if (strlen(json) > result_max) {
                *ret_error = "The result is larger than the limit.";
                return -E2BIG;
        }
        if (!json_text_valid(json, strlen(json))) {
                *ret_error = "The result is not valid JSON.";
                return -EINVAL;
        }
        *ret_json = TAKE_PTR(json);
        return 0;
}
