/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#include "ctl-util.h"
#include "macro.h"

int ctl_parse_size(const char *s, uint64_t *ret) {
        static const struct {
                char unit;
                unsigned shift;
        } units[] = {
                { 'K', 10 }, { 'M', 20 }, { 'G', 30 }, { 'T', 40 }, { 'P', 50 }, { 'E', 60 },
        };
        unsigned long long whole;
        uint64_t frac_num = 0, frac_den = 1, result;
        unsigned shift = 0;
        const char *p = s;
        char *end;

        if (!s || !isdigit((unsigned char) *s))
                return -EINVAL;   /* also rejects "-1", " 1", "+1" that strtoull would take */

        errno = 0;
        whole = strtoull(p, &end, 10);
        if (errno == ERANGE)
                return -ERANGE;
        p = end;

        if (*p == '.') {
                p++;
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                /* Up to 9 fractional digits are significant; more are ignored. */
                for (unsigned n = 0; isdigit((unsigned char) *p); p++, n++)
                        if (n < 9) {
                                frac_num = frac_num * 10 + (uint64_t) (*p - '0');
                                frac_den *= 10;
                        }
        }

        if (*p) {
                size_t i;
                for (i = 0; i < ELEMENTSOF(units); i++)
                        if (toupper((unsigned char) *p) == units[i].unit)
                                break;
                if (i >= ELEMENTSOF(units))
                        return -EINVAL;
                shift = units[i].shift;
                p++;
                if (streq(p, "iB") || streq(p, "B"))
                        p += strlen(p);
        }
        if (*p)
                return -EINVAL;
        if (frac_num > 0 && shift == 0)
                return -EINVAL;   /* "1.5" bytes makes no sense */

        if (shift > 0 && whole > (UINT64_MAX >> shift))
                return -ERANGE;
        result = (uint64_t) whole << shift;
        if (frac_num > 0) {
                /* frac_num < frac_den ≤ 10^9 < 2^30, so (frac_num << shift) fits for shift ≤ 30;
                 * for larger units divide first and accept the rounding. */
                uint64_t add = shift <= 30 ? (frac_num << shift) / frac_den
                                           : (frac_num * (UINT64_C(1) << 30) / frac_den) << (shift - 30);
                if (result > UINT64_MAX - add)
                        return -ERANGE;
                result += add;
        }

        *ret = result;
        return 0;
}

int parse_timespan_sec(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t sec;
        } units[] = {
                /* longest first, so "min" is not read as "m" followed by "in" */
                { "sec", 1 }, { "min", 60 }, { "hr", 3600 }, { "s", 1 }, { "m", 60 }, { "h", 3600 },
                { "d", 86400 },
        };
        uint64_t total = 0;
        const char *p = s;

        if (!s || !*s)
                return -EINVAL;

        while (*p) {
                unsigned long long n;
                uint64_t mult = 1;
                char *end;

                while (*p == ' ')
                        p++;
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                errno = 0;
                n = strtoull(p, &end, 10);
                if (errno == ERANGE)
                        return -ERANGE;
                p = end;

                if (isalpha((unsigned char) *p)) {
                        size_t i;
                        for (i = 0; i < ELEMENTSOF(units); i++) {
                                size_t l = strlen(units[i].suffix);
                                if (strneq(p, units[i].suffix, l) && !isalpha((unsigned char) p[l]))
                                        break;
                        }
                        if (i >= ELEMENTSOF(units))
                                return -EINVAL;
                        mult = units[i].sec;
                        p += strlen(units[i].suffix);
                }
                if (n > (UINT64_MAX - total) / mult)
                        return -ERANGE;
                total += n * mult;
                while (*p == ' ')
                        p++;
        }

        *ret = total;
        return 0;
}

int parse_cpus(const char *s, double *ret) {
        char *end;
        double d;

        if (!s || !(isdigit((unsigned char) *s) || *s == '.'))
                return -EINVAL;
        errno = 0;
        d = strtod(s, &end);
        if (errno != 0 || *end || !isfinite(d) || d < 0)
                return -EINVAL;
        if (d > 1e6)
                return -ERANGE;
        *ret = d;
        return 0;
}

int parse_boolean(const char *s) {
        static const char * const yes[] = { "1", "yes", "y", "true", "t", "on" };
        static const char * const no[] = { "0", "no", "n", "false", "f", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        return -EINVAL;
}

const char *format_bytes(char *buf, size_t size, uint64_t bytes) {
        static const char units[] = "KMGTPE";
        unsigned i = 0;

        if (bytes < 1024) {
                snprintf(buf, size, "%" PRIu64 "B", bytes);
                return buf;
        }
        /* Find the largest unit that keeps the value ≥ 1, show one decimal unless it is whole. */
        while (i + 1 < sizeof(units) - 1 && bytes >= (UINT64_C(1024) << (10 * (i + 1))))
                i++;
        uint64_t base = UINT64_C(1) << (10 * (i + 1));
        uint64_t whole = bytes / base, tenths = (bytes % base) * 10 / base;
        if (tenths == 0)
                snprintf(buf, size, "%" PRIu64 "%c", whole, units[i]);
        else
                snprintf(buf, size, "%" PRIu64 ".%" PRIu64 "%c", whole, tenths, units[i]);
        return buf;
}

const char *format_timespan_sec(char *buf, size_t size, uint64_t sec) {
        static const struct {
                const char *suffix;
                uint64_t sec;
        } units[] = {
                { "d", 86400 }, { "h", 3600 }, { "min", 60 }, { "s", 1 },
        };
        size_t l = 0;

        if (sec == 0) {
                snprintf(buf, size, "0s");
                return buf;
        }
        buf[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(units) && sec > 0; i++) {
                if (sec < units[i].sec)
                        continue;
                int n = snprintf(buf + l, size - l, "%s%" PRIu64 "%s", l > 0 ? " " : "",
                                 sec / units[i].sec, units[i].suffix);
                if (n < 0 || (size_t) n >= size - l)
                        break;
                l += (size_t) n;
                sec %= units[i].sec;
        }
        return buf;
}

const char *format_timestamp_usec(char *buf, size_t size, uint64_t usec) {
        time_t t = (time_t) (usec / 1000000);
        struct tm tm;

        if (usec == 0 || !localtime_r(&t, &tm) ||
            strftime(buf, size, "%a %Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                snprintf(buf, size, "n/a");
        return buf;
}

int read_full_file(const char *path, size_t max, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, allocated = 0;
        int in;

        if (streq(path, "-"))
                in = STDIN_FILENO;
        else {
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return -errno;
                in = fd;
        }

        for (;;) {
                if (allocated - n < 4096) {
                        size_t a = MAX(allocated * 2, (size_t) 8192);
                        char *t = realloc(buf, a + 1);
                        if (!t)
                                return -ENOMEM;
                        buf = t;
                        allocated = a;
                }
                ssize_t k = read(in, buf + n, allocated - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > max)
                        return -EFBIG;
        }
        if (!buf) {
                buf = strdup("");
                if (!buf)
                        return -ENOMEM;
        }
        buf[n] = 0;
        if (ret_size)
                *ret_size = n;
        *ret = TAKE_PTR(buf);
        return 0;
}

static void json_tokener_freep(json_tokener **t) {
        if (*t)
                json_tokener_free(*t);
}

int json_parse_text(const char *text, json_object **ret, char **ret_error) {
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        json_object *o;
        size_t len = strlen(text);

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;

        o = json_tokener_parse_ex(tok, text, (int) MIN(len, (size_t) INT32_MAX));
        enum json_tokener_error e = json_tokener_get_error(tok);
        if (!o && e == json_tokener_continue)
                e = json_tokener_error_parse_eof;
        if (o && e == json_tokener_success) {
                /* Anything but whitespace after the value is an error, like any JSON parser. */
                size_t off = json_tokener_get_parse_end(tok);
                for (; off < len; off++)
                        if (!strchr(" \t\r\n", text[off])) {
                                json_object_put(o);
                                if (ret_error && asprintf(ret_error, "trailing data at offset %zu", off) < 0)
                                        *ret_error = NULL;
                                return -EINVAL;
                        }
                *ret = o;
                return 0;
        }
        json_object_put(o);
        if (ret_error && asprintf(ret_error, "%s at offset %zu", json_tokener_error_desc(e),
                                  json_tokener_get_parse_end(tok)) < 0)
                *ret_error = NULL;
        return -EINVAL;
}

int json_print(json_object *o, bool pretty, FILE *f) {
        int flags = JSON_C_TO_STRING_NOSLASHESCAPE |
                    (pretty ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED : JSON_C_TO_STRING_PLAIN);
        const char *s = json_object_to_json_string_ext(o, flags);

        if (!s)
                return -ENOMEM;
        fputs(s, f);
        fputc('\n', f);
        return 0;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if it is not valid. */
static size_t utf8_sequence(const char *s, uint32_t *ret_cp) {
        const unsigned char *u = (const unsigned char *) s;
        uint32_t cp;
        size_t len;

        if (u[0] < 0x80) {
                *ret_cp = u[0];
                return 1;
        }
        if ((u[0] & 0xe0) == 0xc0) {
                len = 2;
                cp = u[0] & 0x1f;
        } else if ((u[0] & 0xf0) == 0xe0) {
                len = 3;
                cp = u[0] & 0x0f;
        } else if ((u[0] & 0xf8) == 0xf0) {
                len = 4;
                cp = u[0] & 0x07;
        } else
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((u[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (u[i] & 0x3f);
        }
        /* overlong forms, surrogates and values beyond Unicode are invalid */
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
                return 0;
        *ret_cp = cp;
        return len;
}

static bool is_unicode_control(uint32_t cp) {
        return cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || cp == 0x2028 || cp == 0x2029 ||
               (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

char *escape_for_terminal(const char *s) {
        char *buf, *o;

        buf = malloc(strlen(s) * 10 + 1);   /* worst case: "\u{XXXXXX}" per byte */
        if (!buf)
                return NULL;
        for (o = buf; *s;) {
                uint32_t cp;
                size_t l = utf8_sequence(s, &cp);

                if (l == 0) {
                        o += sprintf(o, "\\x%02x", (unsigned char) *s);
                        s++;
                        continue;
                }
                if (is_unicode_control(cp)) {
                        switch (cp) {
                        case '\n': o = stpcpy(o, "\\n"); break;
                        case '\t': o = stpcpy(o, "\\t"); break;
                        case '\r': o = stpcpy(o, "\\r"); break;
                        default:
                                if (cp < 0x100)
                                        o += sprintf(o, "\\x%02x", (unsigned) cp);
                                else
                                        o += sprintf(o, "\\u%04x", (unsigned) cp);
                        }
                } else {
                        memcpy(o, s, l);
                        o += l;
                }
                s += l;
        }
        *o = 0;
        return buf;
}

static size_t codepoint_width(uint32_t cp) {
        int w;

        if (cp < 0x80)
                return 1;
        w = wcwidth((wchar_t) cp);
        /* Without a UTF-8 locale wcwidth() knows nothing; assume one column. */
        return w < 0 ? 1 : (size_t) w;
}

size_t utf8_width(const char *s) {
        size_t w = 0;

        while (*s) {
                uint32_t cp;
                size_t l = utf8_sequence(s, &cp);
                if (l == 0) {
                        w++;
                        s++;
                        continue;
                }
                w += codepoint_width(cp);
                s += l;
        }
        return w;
}

char *ellipsize(const char *s, size_t width, const char *ellipsis) {
        size_t ew = utf8_width(ellipsis), w = 0;
        const char *p = s;
        char *r;

        if (utf8_width(s) <= width)
                return strdup(s);
        if (width < ew)   /* not even room for the ellipsis: cut without it */
                ew = 0, ellipsis = "";

        while (*p) {
                uint32_t cp;
                size_t l = utf8_sequence(p, &cp), cw;
                if (l == 0)
                        l = 1, cw = 1;
                else
                        cw = codepoint_width(cp);
                if (w + cw > width - ew)
                        break;
                w += cw;
                p += l;
        }
        if (asprintf(&r, "%.*s%s", (int) (p - s), s, ellipsis) < 0)
                return NULL;
        return r;
}
