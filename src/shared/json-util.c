/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "json-util.h"
#include "macro.h"

/* Offset of the first "\u0000" escape in a JSON text that json-c accepted, or SIZE_MAX. In a
 * valid JSON text every backslash is inside a string and starts an escape, so a plain scan that
 * skips each escaped character finds exactly the escapes (and not "\\u0000", which is a
 * backslash followed by the letters u0000). */
static size_t find_nul_escape(const char *text, size_t size) {
        const char *p = text, *end = text + size;

        while (p < end) {
                p = memchr(p, '\\', (size_t) (end - p));
                if (!p || p + 1 >= end)
                        break;
                if (p[1] == 'u' && end - p >= 6 && memcmp(p + 2, "0000", 4) == 0)
                        return (size_t) (p - text);
                p += 2; /* the backslash and the escaped character */
        }
        return SIZE_MAX;
}

/* Length of the UTF-8 character at s (at most n bytes; 1 for ASCII), 0 if the bytes there are not
 * UTF-8: json-c's own check (JSON_TOKENER_VALIDATE_UTF8) lets overlong forms, surrogates and code
 * points past U+10FFFF through. */
static size_t utf8_char_length(const unsigned char *s, size_t n) {
        unsigned char c = s[0];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 && c >= 0xc2 ? 2 : (c & 0xf0) == 0xe0 ? 3 :
                     (c & 0xf8) == 0xf0 && c <= 0xf4 ? 4 : 0;

        if (len == 0 || len > n)
                return 0;
        for (size_t k = 1; k < len; k++)
                if ((s[k] & 0xc0) != 0x80)
                        return 0;
        /* overlong 3-byte forms, surrogates, and 4-byte forms beyond U+10FFFF */
        if (len == 3 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0)))
                return 0;
        if (len == 4 && ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90)))
                return 0;
        return len;
}

/* Offset of the first byte that is not UTF-8, or SIZE_MAX. */
static size_t find_invalid_utf8(const char *text, size_t size) {
        for (size_t i = 0; i < size;) {
                size_t len = utf8_char_length((const unsigned char *) text + i, size - i);

                if (len == 0)
                        return i;
                i += len;
        }
        return SIZE_MAX;
}

/* Deeper than any sane document; shallow enough for the recursion here and json-c's. */
#define JSON_MAX_DEPTH 512

/* A strict RFC 8259 validator. json-c's tokener, even in strict mode, lets single-quoted strings,
 * NaN, leading zeros and exponents without digits through, and what gatewayd accepts it serves
 * back to clients as JSON: checked here, without allocation, depth bounded, UTF-8 checked. */
typedef struct JsonScan {
        const unsigned char *p, *end;
        unsigned depth;
} JsonScan;

static bool scan_value(JsonScan *s);

static void skip_ws(JsonScan *s) {
        while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
                s->p++;
}

static bool scan_char(JsonScan *s, unsigned char c) {
        if (s->p < s->end && *s->p == c) {
                s->p++;
                return true;
        }
        return false;
}

static bool is_hex(unsigned char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool scan_string(JsonScan *s) {
        if (!scan_char(s, '"'))
                return false;
        while (s->p < s->end) {
                unsigned char c = *s->p;
                if (c == '"') {
                        s->p++;
                        return true;
                }
                if (c < 0x20)
                        return false;
                if (c >= 0x80) {
                        size_t n = utf8_char_length(s->p, (size_t) (s->end - s->p));
                        if (n == 0)
                                return false;
                        s->p += n;
                        continue;
                }
                s->p++;
                if (c != '\\')
                        continue;
                if (s->p >= s->end)
                        return false;
                c = *s->p++;
                if (c == 'u') {
                        for (int i = 0; i < 4; i++)
                                if (s->p >= s->end || !is_hex(*s->p++))
                                        return false;
                } else if (!strchr("\"\\/bfnrt", c) || c == 0)
                        return false;
        }
        return false;
}

static bool scan_digits(JsonScan *s) {
        const unsigned char *start = s->p;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
                s->p++;
        return s->p > start;
}

static bool scan_number(JsonScan *s) {
        (void) scan_char(s, '-');
        if (scan_char(s, '0')) {
                if (s->p < s->end && *s->p >= '0' && *s->p <= '9')
                        return false;   /* no leading zeros */
        } else if (!scan_digits(s))
                return false;
        if (scan_char(s, '.') && !scan_digits(s))
                return false;
        if (scan_char(s, 'e') || scan_char(s, 'E')) {
                if (!scan_char(s, '+'))
                        (void) scan_char(s, '-');
                if (!scan_digits(s))
                        return false;
        }
        return true;
}

static bool scan_literal(JsonScan *s, const char *word) {
        size_t l = strlen(word);
        if ((size_t) (s->end - s->p) < l || memcmp(s->p, word, l) != 0)
                return false;
        s->p += l;
        return true;
}

/* Members of an object (object=true) or elements of an array, after the opening bracket. */
static bool scan_container(JsonScan *s, bool object) {
        unsigned char close = object ? '}' : ']';
        bool ok = false;

        if (++s->depth > JSON_MAX_DEPTH)
                return false;
        skip_ws(s);
        if (scan_char(s, close))
                ok = true;
        else
                for (;;) {
                        if (object) {
                                skip_ws(s);
                                if (!scan_string(s))
                                        break;
                                skip_ws(s);
                                if (!scan_char(s, ':'))
                                        break;
                        }
                        if (!scan_value(s))
                                break;
                        if (scan_char(s, close)) {
                                ok = true;
                                break;
                        }
                        if (!scan_char(s, ','))
                                break;
                }
        s->depth--;
        return ok;
}

static bool scan_value(JsonScan *s) {
        bool ok;

        skip_ws(s);
        if (s->p >= s->end)
                return false;
        switch (*s->p) {
        case '{':
                s->p++;
                ok = scan_container(s, true);
                break;
        case '[':
                s->p++;
                ok = scan_container(s, false);
                break;
        case '"':
                ok = scan_string(s);
                break;
        case 't':
                ok = scan_literal(s, "true");
                break;
        case 'f':
                ok = scan_literal(s, "false");
                break;
        case 'n':
                ok = scan_literal(s, "null");
                break;
        default:
                ok = scan_number(s);
        }
        skip_ws(s);
        return ok;
}

/* Whether text is one strict JSON value; where the scan stopped in *ret_offset. */
static bool json_scan_text(const char *text, size_t len, size_t *ret_offset) {
        JsonScan s = {
                .p = (const unsigned char *) text,
                .end = (const unsigned char *) text + len,
        };
        bool ok = scan_value(&s) && s.p == s.end;

        *ret_offset = (size_t) (s.p - (const unsigned char *) text);
        return ok;
}

bool json_text_valid(const char *text, size_t len) {
        size_t offset;

        return json_scan_text(text, len, &offset);
}

bool utf8_is_valid(const char *s, size_t n) {
        return find_invalid_utf8(s, n) == SIZE_MAX;
}

static bool is_json_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int json_parse_untrusted(const char *text, size_t size, json_object **ret, size_t *ret_offset,
                         const char **ret_reason) {
        json_tokener *tok;
        json_object *o;
        enum json_tokener_error jerr;
        size_t end, nul, bad, offset_unused;
        const char *reason_unused;
        bool complete;

        /* Callers that only want the verdict pass NULL for where and why. */
        if (!ret_offset)
                ret_offset = &offset_unused;
        if (!ret_reason)
                ret_reason = &reason_unused;
        *ret = NULL;
        *ret_offset = 0;
        *ret_reason = NULL;
        if (size > INT_MAX) {
                *ret_reason = "document too large";
                return -EBADMSG;
        }

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        /* JSON is UTF-8; invalid bytes would end up in D-Bus strings, which must be valid. */
        json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, text, (int) size);
        jerr = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        if (!o && jerr == json_tokener_continue && end == size) {
                /* A bare number at the very end is complete only once something follows it. */
                o = json_tokener_parse_ex(tok, " ", 1);
                jerr = json_tokener_get_error(tok);
                end = size;
        }
        complete = jerr == json_tokener_success;
        json_tokener_free(tok);

        /* Trailing white space after a complete document is fine. */
        while (complete && end < size && is_json_space(text[end]))
                end++;
        if (!complete || end != size) {
                json_object_put(o);
                *ret_offset = end;
                *ret_reason = complete ? "unexpected data after the document"
                            : jerr == json_tokener_continue ? "unexpected end of input"
                            : json_tokener_error_desc(jerr);
                return -EBADMSG;
        }

        nul = find_nul_escape(text, size);
        if (nul != SIZE_MAX) {
                json_object_put(o);
                *ret_offset = nul;
                *ret_reason = "\\u0000 is not allowed in strings";
                return -EBADMSG;
        }

        bad = find_invalid_utf8(text, size);
        if (bad != SIZE_MAX) {
                json_object_put(o);
                *ret_offset = bad;
                *ret_reason = "invalid UTF-8";
                return -EBADMSG;
        }

        if (!json_scan_text(text, size, ret_offset)) {
                json_object_put(o);
                *ret_reason = "not strict JSON (RFC 8259: e.g. a number like 01, 1., 1e or NaN, or a single-quoted string)";
                return -EBADMSG;
        }

        *ret = o; /* NULL for the document "null" */
        return 0;
}

json_object *json_new_string_utf8_lossy(const char *s, size_t n) {
        _cleanup_free_ char *out = malloc(n * 3 + 1);
        size_t o = 0;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n;) {
                size_t len = utf8_char_length((const unsigned char *) s + i, n - i);

                if (len == 0) {
                        memcpy(out + o, "\xef\xbf\xbd", 3);
                        o += 3;
                        i++;
                        continue;
                }
                memcpy(out + o, s + i, len);
                o += len;
                i += len;
        }
        return json_object_new_string_len(out, (int) o);
}
