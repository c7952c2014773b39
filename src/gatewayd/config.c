/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <netinet/in.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "config.h"
#include "size-util.h"
#include "ssh-session.h"
#include "fs-util.h"
#include "lab-resolv.h"
#include "log.h"
#include "macro.h"
#include "reference.h"

#define KIB UINT64_C(1024)
#define MIB (KIB * KIB)

/* Config files are small; anything bigger than this is a mistake, not a configuration. */
#define CONFIG_FILE_MAX (4 * MIB)

#define DEFAULT_LOCATION "registry-1.docker.io"
#define DEFAULT_PLATFORM "local"

typedef struct ParseContext {
        char *error;          /* first error, "path: message" */
        char **unknown;       /* NULL-terminated paths of unknown keys */
        size_t n_unknown;
        const char *dir;      /* directory of the config file, for relative sslcacert */
} ParseContext;

typedef int (*DispatchFunc)(ParseContext *ctx, const char *path, json_object *v, void *field);

typedef struct Field {
        const char *name;
        DispatchFunc dispatch;  /* NULL: a Shifter key that gatewayd accepts and ignores */
        size_t offset;          /* of the field in the struct being filled */
} Field;

static int config_error(ParseContext *ctx, const char *path, const char *format, ...) _printf_(3, 4);

static int config_error(ParseContext *ctx, const char *path, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int r;

        /* Keep the first, innermost error: outer levels only propagate it. */
        if (ctx->error)
                return -EINVAL;

        va_start(ap, format);
        r = vasprintf(&msg, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;

        if (asprintf(&ctx->error, "%s: %s", path ?: "(top level)", msg) < 0) {
                ctx->error = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

static char *path_join(const char *parent, const char *key) {
        char *p;

        if (!parent)
                return strdup(key);
        if (asprintf(&p, "%s.%s", parent, key) < 0)
                return NULL;
        return p;
}

static int strv_push(char ***l, size_t *n, const char *s) {
        char **t;

        t = reallocarray(*l, *n + 2, sizeof(char *));
        if (!t)
                return -ENOMEM;
        *l = t;
        t[*n] = strdup(s);
        if (!t[*n])
                return -ENOMEM;
        t[++*n] = NULL;
        return 0;
}

static const char *json_type_article(json_object *v) {
        switch (json_object_get_type(v)) {
        case json_type_null:    return "null";
        case json_type_boolean: return "a boolean";
        case json_type_double:  return "a number";
        case json_type_int:     return "an integer";
        case json_type_object:  return "an object";
        case json_type_array:   return "an array";
        case json_type_string:  return "a string";
        }
        return "something else";
}

static int dispatch_object(ParseContext *ctx, const char *path, json_object *obj,
                           const Field *fields, void *base) {
        if (!json_object_is_type(obj, json_type_object))
                return config_error(ctx, path, "expected an object, got %s", json_type_article(obj));

        json_object_object_foreach(obj, key, v) {
                _cleanup_free_ char *p = path_join(path, key);
                const Field *f;
                int r;

                if (!p)
                        return -ENOMEM;

                for (f = fields; f->name; f++)
                        if (streq(f->name, key))
                                break;

                if (!f->name) {
                        log_warning("%s: unknown key, ignored.", p);
                        r = strv_push(&ctx->unknown, &ctx->n_unknown, p);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!f->dispatch) {
                        log_info("%s: ignored (Shifter key not used by gatewayd).", p);
                        continue;
                }

                r = f->dispatch(ctx, p, v, (uint8_t *) base + f->offset);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- scalar values ---- */

static int dispatch_string(ParseContext *ctx, const char *path, json_object *v, void *field) {
        char **s = field;

        if (json_object_is_type(v, json_type_null)) {
                *s = mfree(*s);
                return 0;
        }
        if (!json_object_is_type(v, json_type_string))
                return config_error(ctx, path, "expected a string, got %s", json_type_article(v));
        if (json_object_get_string_len(v) == 0)
                return config_error(ctx, path, "must not be empty");
        if (strlen(json_object_get_string(v)) != (size_t) json_object_get_string_len(v))
                return config_error(ctx, path, "must not contain NUL characters");

        return free_and_strdup(s, json_object_get_string(v));
}

static int dispatch_path(ParseContext *ctx, const char *path, json_object *v, void *field) {
        char **s = field;
        int r;

        r = dispatch_string(ctx, path, v, field);
        if (r < 0)
                return r;
        if (*s && (*s)[0] != '/')
                return config_error(ctx, path, "expected an absolute path, got \"%s\"", *s);
        return 0;
}

/* Shifter resolves a relative sslcacert against its working directory; a daemon has no
 * meaningful one, so use the directory of the config file instead. */
static int dispatch_ca_path(ParseContext *ctx, const char *path, json_object *v, void *field) {
        char **s = field;
        char *abs;
        int r;

        r = dispatch_string(ctx, path, v, field);
        if (r < 0 || !*s || (*s)[0] == '/')
                return r;
        if (!ctx->dir)
                return config_error(ctx, path, "expected an absolute path, got \"%s\"", *s);

        if (asprintf(&abs, "%s/%s", ctx->dir, *s) < 0)
                return -ENOMEM;
        free(*s);
        *s = abs;
        return 0;
}

static int dispatch_bool(ParseContext *ctx, const char *path, json_object *v, void *field) {
        bool *b = field;

        if (!json_object_is_type(v, json_type_boolean))
                return config_error(ctx, path, "expected true or false, got %s", json_type_article(v));
        *b = json_object_get_boolean(v);
        return 0;
}

static int parse_uint64(const char *s, uint64_t *ret) {
        uint64_t n = 0;

        if (!isdigit((unsigned char) *s))
                return -EINVAL;
        for (; isdigit((unsigned char) *s); s++)
                if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, (uint64_t) (*s - '0'), &n))
                        return -ERANGE;
        if (*s)
                return -EINVAL;
        *ret = n;
        return 0;
}

/* Integers may be JSON numbers or decimal strings: Shifter passes some of them through int(),
 * so site configs contain both. */
static int get_uint64(ParseContext *ctx, const char *path, json_object *v, uint64_t max, uint64_t *ret) {
        uint64_t n;

        if (json_object_is_type(v, json_type_int)) {
                int64_t i = json_object_get_int64(v);

                if (i < 0)
                        return config_error(ctx, path, "must not be negative");
                /* json-c keeps values above INT64_MAX as unsigned and clamps get_int64() */
                n = i == INT64_MAX ? json_object_get_uint64(v) : (uint64_t) i;
        } else if (json_object_is_type(v, json_type_string)) {
                if (parse_uint64(json_object_get_string(v), &n) < 0)
                        return config_error(ctx, path, "expected a non-negative integer, got \"%s\"",
                                            json_object_get_string(v));
        } else
                return config_error(ctx, path, "expected an integer, got %s", json_type_article(v));

        if (n > max)
                return config_error(ctx, path, "out of range (maximum %" PRIu64 ")", max);
        *ret = n;
        return 0;
}

static int dispatch_uint64(ParseContext *ctx, const char *path, json_object *v, void *field) {
        return get_uint64(ctx, path, v, INT64_MAX, field);
}

static int dispatch_unsigned(ParseContext *ctx, const char *path, json_object *v, void *field) {
        uint64_t n;
        int r;

        r = get_uint64(ctx, path, v, UINT_MAX, &n);
        if (r < 0)
                return r;
        *(unsigned *) field = (unsigned) n;
        return 0;
}

static int dispatch_int(ParseContext *ctx, const char *path, json_object *v, void *field) {
        uint64_t n;
        int r;

        r = get_uint64(ctx, path, v, INT_MAX, &n);
        if (r < 0)
                return r;
        *(int *) field = (int) n;
        return 0;
}

static int dispatch_positive(ParseContext *ctx, const char *path, json_object *v, void *field) {
        int r;

        r = dispatch_unsigned(ctx, path, v, field);
        if (r < 0)
                return r;
        if (*(unsigned *) field == 0)
                return config_error(ctx, path, "must be at least 1");
        return 0;
}

static int dispatch_port(ParseContext *ctx, const char *path, json_object *v, void *field) {
        uint64_t n;
        int r;

        r = get_uint64(ctx, path, v, 65535, &n);
        if (r < 0)
                return r;
        if (n == 0)
                return config_error(ctx, path, "must be a port number between 1 and 65535");
        *(unsigned *) field = (unsigned) n;
        return 0;
}

static int dispatch_size(ParseContext *ctx, const char *path, json_object *v, void *field) {
        uint64_t *ret = field;

        if (json_object_is_type(v, json_type_string)) {
                int r = parse_size(json_object_get_string(v), ret);
                if (r == -ERANGE)
                        return config_error(ctx, path, "out of range");
                if (r < 0)
                        return config_error(ctx, path,
                                            "expected a byte count such as 1048576 or \"16M\", got \"%s\"",
                                            json_object_get_string(v));
                return 0;
        }
        return get_uint64(ctx, path, v, INT64_MAX, ret);
}

static int dispatch_size_nonzero(ParseContext *ctx, const char *path, json_object *v, void *field) {
        int r;

        r = dispatch_size(ctx, path, v, field);
        if (r < 0)
                return r;
        if (*(uint64_t *) field == 0)
                return config_error(ctx, path, "must be at least 1");
        return 0;
}

/* 0 (a plain directory) or an ext4 of 16 MiB (room for its metadata and some files) to 1 TiB
 * (a sparse file of that size fits any file system the state directory is likely on). */
static int dispatch_lab_writable_max(ParseContext *ctx, const char *path, json_object *v, void *field) {
        uint64_t n;
        int r;

        r = dispatch_size(ctx, path, v, field);
        if (r < 0)
                return r;
        n = *(uint64_t *) field;
        if (n != 0 && (n < 16 * MIB || n > MIB * MIB))
                return config_error(ctx, path, "must be 0 (a plain directory) or between 16M and 1T");
        return 0;
}

/* Durations become microseconds that are added to the current time: capped at 100 years, which
 * keeps that far from overflowing and is longer than any meaningful timeout. */
#define DURATION_MAX_SEC (UINT64_C(36500) * 24 * 3600)

static int dispatch_duration(ParseContext *ctx, const char *path, json_object *v, void *field) {
        uint64_t *ret = field;
        int r;

        if (json_object_is_type(v, json_type_string)) {
                r = config_parse_duration(json_object_get_string(v), ret);
                if (r == -ERANGE || (r >= 0 && *ret > DURATION_MAX_SEC))
                        return config_error(ctx, path, "\"%s\" is out of range (at most \"36500:00:00:00\", 100 years)",
                                            json_object_get_string(v));
                if (r < 0)
                        return config_error(ctx, path,
                                            "expected a duration \"D:HH:MM:SS\" (or seconds), got \"%s\"",
                                            json_object_get_string(v));
                return 0;
        }
        return get_uint64(ctx, path, v, DURATION_MAX_SEC, ret);
}

/* Whole seconds (Shifter's PullUpdateTimeout), with the same cap as durations. */
static int dispatch_seconds(ParseContext *ctx, const char *path, json_object *v, void *field) {
        return get_uint64(ctx, path, v, DURATION_MAX_SEC, field);
}

/* Idle HTTP connections: at least a second (0 would mean "never" to libmicrohttpd), at most a day. */
static int dispatch_connection_timeout(ParseContext *ctx, const char *path, json_object *v, void *field) {
        uint64_t sec;
        int r;

        r = dispatch_duration(ctx, path, v, &sec);
        if (r < 0)
                return r;
        if (sec < 1 || sec > 24 * 3600)
                return config_error(ctx, path, "must be between 1 second and 1 day");
        *(unsigned *) field = (unsigned) sec;
        return 0;
}

static int dispatch_enum(ParseContext *ctx, const char *path, json_object *v, char **field,
                         const char * const *allowed) {
        _cleanup_free_ char *list = NULL;
        size_t len = 0;
        FILE *f;
        int r;

        r = dispatch_string(ctx, path, v, field);
        if (r < 0 || !*field)
                return r;
        for (const char * const *a = allowed; *a; a++)
                if (streq(*field, *a))
                        return 0;

        f = open_memstream(&list, &len);
        if (!f)
                return -ENOMEM;
        for (const char * const *a = allowed; *a; a++)
                fprintf(f, "%s\"%s\"", a == allowed ? "" : a[1] ? ", " : " or ", *a);
        if (fclose(f) != 0)
                return -ENOMEM;
        return config_error(ctx, path, "unsupported value \"%s\" (expected %s)", *field, list);
}

static int dispatch_image_format(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const char * const allowed[] = { "squashfs", NULL };
        return dispatch_enum(ctx, path, v, field, allowed);
}

static int dispatch_remotetype(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const char * const allowed[] = { "dockerv2", "dockerhub", NULL };
        return dispatch_enum(ctx, path, v, field, allowed);
}

static int dispatch_authentication(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const char * const allowed[] = { "http", "basic", "none", NULL };
        return dispatch_enum(ctx, path, v, field, allowed);
}

static int dispatch_algorithm(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const char * const allowed[] = { "zstd", "lz4", "gzip", "xz", NULL };
        return dispatch_enum(ctx, path, v, field, allowed);
}

static int dispatch_accesstype(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const char * const allowed[] = { "local", "remote", NULL };
        ConfigPlatform *p = field;
        int r;

        r = dispatch_enum(ctx, path, v, &p->accesstype, allowed);
        if (r < 0)
                return r;
        p->access = p->accesstype && streq(p->accesstype, "remote") ? CONFIG_ACCESS_REMOTE : CONFIG_ACCESS_LOCAL;
        return 0;
}

static int dispatch_url(ParseContext *ctx, const char *path, json_object *v, void *field) {
        char **s = field;
        int r;

        r = dispatch_string(ctx, path, v, field);
        if (r < 0 || !*s)
                return r;
        if (!strneq(*s, "http://", 7) && !strneq(*s, "https://", 8))
                return config_error(ctx, path, "expected an http:// or https:// URL, got \"%s\"", *s);
        return 0;
}

/* "A.B.C.D/N": where outbound lab instances get their /30s (docs/labs.md). At least 4 of them,
 * and a private (RFC 1918) or shared (RFC 6598) range: these addresses never leave the host
 * unmasqueraded, but a public range would hide the real hosts that own it. */
static int dispatch_lab_network_pool(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const struct { uint32_t net; unsigned prefix; } private[] = {
                { 10U << 24, 8 }, { 172U << 24 | 16U << 16, 12 }, { 192U << 24 | 168U << 16, 16 }, { 100U << 24 | 64U << 16, 10 },
        };
        Config *c = field;      /* offset 0: the whole configuration */
        unsigned a, b, d, e, n;
        uint32_t base;
        char tail;

        if (!json_object_is_type(v, json_type_string))
                return config_error(ctx, path, "expected a string \"A.B.C.D/N\"");
        if (sscanf(json_object_get_string(v), "%3u.%3u.%3u.%3u/%2u%c", &a, &b, &d, &e, &n, &tail) != 5 ||
            a > 255 || b > 255 || d > 255 || e > 255 || n < 8 || n > 28)
                return config_error(ctx, path, "expected an IPv4 network \"A.B.C.D/N\" with N between 8 and 28, got \"%s\"",
                                    json_object_get_string(v));
        base = a << 24 | b << 16 | d << 8 | e;
        if (base & ~(UINT32_MAX << (32 - n)))
                return config_error(ctx, path, "\"%s\" has host bits set", json_object_get_string(v));
        for (size_t i = 0; i < ELEMENTSOF(private); i++)
                if (n >= private[i].prefix && (base & (UINT32_MAX << (32 - private[i].prefix))) == private[i].net) {
                        c->lab_network_pool = base;
                        c->lab_network_pool_prefix = n;
                        return 0;
                }
        return config_error(ctx, path, "\"%s\" is not inside 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 100.64.0.0/10",
                            json_object_get_string(v));
}

static int dispatch_slurm_url(ParseContext *ctx, const char *path, json_object *v, void *field) {
        char **s = field;
        int r;

        r = dispatch_string(ctx, path, v, field);
        if (r < 0 || !*s)
                return r;
        if (!strneq(*s, "http://", 7) && !strneq(*s, "https://", 8) && !strneq(*s, "unix:/", 6))
                return config_error(ctx, path, "expected an http://, https:// or unix:/PATH URL, got \"%s\"", *s);
        return 0;
}

static int dispatch_slurm_spool_watch(ParseContext *ctx, const char *path, json_object *v, void *field) {
        char **s = field;
        int r;

        r = dispatch_string(ctx, path, v, field);
        if (r < 0 || !*s)
                return r;
        if (!streq(*s, "auto") && !streq(*s, "inotify") && !streq(*s, "poll"))
                return config_error(ctx, path, "expected \"auto\", \"inotify\" or \"poll\", got \"%s\"", *s);
        return 0;
}

static int dispatch_log_level(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const struct { const char *name; int level; } levels[] = {
                /* Shifter's names first, then syslog's */
                { "debug", LOG_DEBUG }, { "info", LOG_INFO }, { "warn", LOG_WARNING },
                { "error", LOG_ERR }, { "critical", LOG_CRIT },
                { "notice", LOG_NOTICE }, { "warning", LOG_WARNING }, { "err", LOG_ERR },
                { "crit", LOG_CRIT }, { "alert", LOG_ALERT }, { "emerg", LOG_EMERG },
        };
        const char *s;

        if (json_object_is_type(v, json_type_null)) {
                *(int *) field = -1;
                return 0;
        }
        if (!json_object_is_type(v, json_type_string))
                return config_error(ctx, path, "expected a string, got %s", json_type_article(v));
        s = json_object_get_string(v);
        for (size_t i = 0; i < ELEMENTSOF(levels); i++)
                if (strcasecmp(s, levels[i].name) == 0) {
                        *(int *) field = levels[i].level;
                        return 0;
                }
        return config_error(ctx, path,
                            "unsupported value \"%s\" (expected \"debug\", \"info\", \"warn\", \"error\" or \"critical\")", s);
}

/* Host and user names may end up on a command line on the far side (or in ours, for
 * debugging with ssh): refuse anything that could be read as an option or split into two. */
static bool ssh_name_is_valid(const char *s) {
        if (!*s || *s == '-' || strlen(s) > 255)
                return false;
        for (; *s; s++)
                if ((unsigned char) *s <= ' ' || strchr("@/\\'\"`$;&|<>()", *s))
                        return false;
        return true;
}

static int dispatch_ssh_name(ParseContext *ctx, const char *path, json_object *v, void *field) {
        char **s = field;
        int r;

        r = dispatch_string(ctx, path, v, field);
        if (r < 0 || !*s)
                return r;
        if (!ssh_name_is_valid(*s))
                return config_error(ctx, path, "invalid name \"%s\"", *s);
        return 0;
}

/* "host" is a list in Shifter (only the first entry is used there), a plain string is accepted
 * as well. */
static int dispatch_hosts(ParseContext *ctx, const char *path, json_object *v, void *field) {
        ConfigPlatform *p = field;
        size_t n = 0;
        int r;

        strv_free(p->hosts);
        p->hosts = NULL;
        p->host = mfree(p->host);

        if (json_object_is_type(v, json_type_null))
                return 0;

        if (json_object_is_type(v, json_type_string)) {
                _cleanup_free_ char *h = NULL;

                r = dispatch_ssh_name(ctx, path, v, &h);
                if (r < 0)
                        return r;
                r = strv_push(&p->hosts, &n, h);
                if (r < 0)
                        return r;
        } else if (json_object_is_type(v, json_type_array)) {
                size_t len = json_object_array_length(v);

                if (len == 0)
                        return config_error(ctx, path, "must list at least one host");
                for (size_t i = 0; i < len; i++) {
                        _cleanup_free_ char *h = NULL, *p_i = NULL;

                        if (asprintf(&p_i, "%s[%zu]", path, i) < 0)
                                return -ENOMEM;
                        r = dispatch_ssh_name(ctx, p_i, json_object_array_get_idx(v, i), &h);
                        if (r < 0)
                                return r;
                        if (!h)
                                return config_error(ctx, p_i, "expected a string, got null");
                        r = strv_push(&p->hosts, &n, h);
                        if (r < 0)
                                return r;
                }
        } else
                return config_error(ctx, path, "expected a string or a list of strings, got %s",
                                    json_type_article(v));

        p->host = strdup(p->hosts[0]);
        return p->host ? 0 : -ENOMEM;
}

/* Shifter's "admins": a list of user names (checked against the caller's account name). Shifter's
 * sample configurations also write a single name as a string. */
static int dispatch_platform_admins(ParseContext *ctx, const char *path, json_object *v, void *field) {
        char ***l = field;
        size_t n = 0;
        int r;

        strv_free(*l);
        *l = NULL;
        if (json_object_is_type(v, json_type_null))
                return 0;
        if (json_object_is_type(v, json_type_string)) {
                _cleanup_free_ char *name = NULL;

                r = dispatch_string(ctx, path, v, &name);
                return r < 0 ? r : strv_push(l, &n, name);
        }
        if (!json_object_is_type(v, json_type_array))
                return config_error(ctx, path, "expected a list of user names, got %s", json_type_article(v));
        for (size_t i = 0; i < json_object_array_length(v); i++) {
                _cleanup_free_ char *name = NULL, *p_i = NULL;

                if (asprintf(&p_i, "%s[%zu]", path, i) < 0)
                        return -ENOMEM;
                r = dispatch_string(ctx, p_i, json_object_array_get_idx(v, i), &name);
                if (r < 0)
                        return r;
                if (!name)
                        return config_error(ctx, p_i, "expected a user name, got null");
                r = strv_push(l, &n, name);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- nested objects ---- */

static int dispatch_compression(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const Field fields[] = {
                { "algorithm", dispatch_algorithm, offsetof(Config, compressor) },
                { "level",     dispatch_int,       offsetof(Config, compression_level) },
                {}
        };
        Config *c = field;

        /* Levels depend on the algorithm, so a level from the defaults must not survive an
         * algorithm change; -1 is resolved in config_finalize(). */
        c->compression_level = -1;

        /* Shorthand: "Compression": "xz" */
        if (json_object_is_type(v, json_type_string))
                return dispatch_algorithm(ctx, path, v, &c->compressor);

        /* Without "algorithm" the level applies to the default, zstd. */
        return dispatch_object(ctx, path, v, fields, c);
}

/* Result files of a job (the worker's /var/runtime/output): its tmpfs has one inode per file. */
static int dispatch_output_files(ParseContext *ctx, const char *path, json_object *v, void *field) {
        return get_uint64(ctx, path, v, 1000000, field);
}

static int dispatch_limits(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const Field fields[] = {
                { "ResultMax",    dispatch_size_nonzero, offsetof(Config, result_max) },
                { "InterimMax",   dispatch_size_nonzero, offsetof(Config, interim_max) },
                { "InterimCount", dispatch_uint64,       offsetof(Config, interim_count) },
                { "LogMax",       dispatch_size_nonzero, offsetof(Config, log_max) },
                { "RuntimeMax",   dispatch_duration,     offsetof(Config, runtime_max_sec) },
                { "MemoryMax",    dispatch_size,         offsetof(Config, memory_max) },
                { "TasksMax",     dispatch_uint64,       offsetof(Config, tasks_max) },
                { "OutputMax",    dispatch_size,         offsetof(Config, output_max) },
                { "OutputFiles",  dispatch_output_files,       offsetof(Config, output_files) },
                {}
        };
        return dispatch_object(ctx, path, v, fields, field);
}

static int dispatch_ssh(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const Field fields[] = {
                { "username",      dispatch_ssh_name, offsetof(ConfigPlatform, ssh_username) },
                { "key",           dispatch_path,    offsetof(ConfigPlatform, ssh_key) },
                { "imageDir",      dispatch_path,    offsetof(ConfigPlatform, ssh_image_dir) },
                { "port",          dispatch_port,    offsetof(ConfigPlatform, ssh_port) },
                { "knownHosts",    dispatch_path,    offsetof(ConfigPlatform, ssh_known_hosts) },
                { "sshCmdOptions", NULL, 0 },
                { "scpCmdOptions", NULL, 0 },
                {}
        };
        return dispatch_object(ctx, path, v, fields, field);
}

static int dispatch_local(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const Field fields[] = {
                { "imageDir", dispatch_path, offsetof(ConfigPlatform, local_image_dir) },
                {}
        };
        return dispatch_object(ctx, path, v, fields, field);
}

static int dispatch_slurm(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const Field fields[] = {
                { "url",       dispatch_slurm_url, offsetof(ConfigPlatform, slurm_url) },
                { "user",      dispatch_string,    offsetof(ConfigPlatform, slurm_user) },
                { "tokenFile", dispatch_path,      offsetof(ConfigPlatform, slurm_token_file) },
                { "jwtKey",    dispatch_path,      offsetof(ConfigPlatform, slurm_jwt_key) },
                { "launcher",  dispatch_path,      offsetof(ConfigPlatform, slurm_launcher) },
                { "partition", dispatch_string,    offsetof(ConfigPlatform, slurm_partition) },
                { "account",   dispatch_string,    offsetof(ConfigPlatform, slurm_account) },
                { "spoolDir",  dispatch_path,      offsetof(ConfigPlatform, slurm_spool_dir) },
                { "spoolWatch", dispatch_slurm_spool_watch, offsetof(ConfigPlatform, slurm_spool_watch) },
                {}
        };
        ConfigPlatform *p = field;
        int r;

        r = dispatch_object(ctx, path, v, fields, field);
        if (r < 0)
                return r;
        if (!p->slurm_url) {
                _cleanup_free_ char *u = path_join(path, "url");
                return u ? config_error(ctx, u, "required when \"slurm\" is set") : -ENOMEM;
        }
        /* Who gatewayd is to slurmrestd: a key to mint each owner's token, or one token of the
         * SlurmUser acting for each owner. Exactly one of the two. */
        if (!p->slurm_jwt_key == !p->slurm_token_file) {
                _cleanup_free_ char *u = path_join(path, p->slurm_jwt_key ? "tokenFile" : "jwtKey");
                return u ? config_error(ctx, u, p->slurm_jwt_key ? "conflicts with \"jwtKey\": set one of the two"
                                                                 : "required (or \"tokenFile\" with \"user\")") : -ENOMEM;
        }
        if (p->slurm_token_file && !p->slurm_user) {
                _cleanup_free_ char *u = path_join(path, "user");
                return u ? config_error(ctx, u, "required with \"tokenFile\"") : -ENOMEM;
        }
        return 0;
}

static int dispatch_oidc_issuer(ParseContext *ctx, const char *path, json_object *v, void *field) {
        char **s = field;
        int r;

        r = dispatch_string(ctx, path, v, field);
        if (r < 0 || !*s)
                return r;
        if (!strneq(*s, "https://", 8) && !strneq(*s, "http://", 7))
                return config_error(ctx, path, "must be an http:// or https:// URL");
        return 0;
}

static int dispatch_oidc(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const Field fields[] = {
                { "issuer",    dispatch_oidc_issuer, offsetof(Config, oidc_issuer) },
                { "audience",  dispatch_string,      offsetof(Config, oidc_audience) },
                { "userClaim", dispatch_string,      offsetof(Config, oidc_user_claim) },
                { "localUser", dispatch_string,      offsetof(Config, oidc_local_user) },
                { "caFile",    dispatch_path,        offsetof(Config, oidc_ca_file) },
                {}
        };
        Config *c = field;
        const char *missing;
        int r;

        r = dispatch_object(ctx, path, v, fields, field);
        if (r < 0)
                return r;
        missing = !c->oidc_issuer ? "issuer" : !c->oidc_audience ? "audience" : NULL;
        if (missing) {
                _cleanup_free_ char *p = path_join(path, missing);
                return p ? config_error(ctx, p, "required when \"oidc\" is set") : -ENOMEM;
        }
        return 0;
}

/* Names end up in D-Bus object paths, URLs and file names: keep them boring. */
static bool platform_name_is_valid(const char *s) {
        if (!*s || strlen(s) > 64)
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char) *s) && !strchr("._-", *s))
                        return false;
        return true;
}

/* Registry host names, optionally with ":port". */
static bool location_name_is_valid(const char *s) {
        if (!*s || strlen(s) > 255)
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char) *s) && !strchr(".-_:[]", *s))
                        return false;
        return true;
}

static void location_done(ConfigLocation *l) {
        free(l->name);
        free(l->remotetype);
        free(l->authentication);
        free(l->url);
        free(l->sslcacert);
}

static void platform_done(ConfigPlatform *p) {
        free(p->name);
        free(p->accesstype);
        free(p->host);
        strv_free(p->hosts);
        strv_free(p->admins);
        free(p->munge_socket_path);
        free(p->ssh_username);
        free(p->ssh_key);
        free(p->ssh_image_dir);
        free(p->ssh_known_hosts);
        free(p->local_image_dir);
        free(p->worker_path);
        free(p->slurm_url);
        free(p->slurm_user);
        free(p->slurm_token_file);
        free(p->slurm_jwt_key);
        free(p->slurm_launcher);
        free(p->slurm_partition);
        free(p->slurm_account);
        free(p->slurm_spool_dir);
        free(p->slurm_spool_watch);
}

static ConfigLocation *config_add_location(Config *c, const char *name) {
        ConfigLocation *t;

        t = reallocarray(c->locations, c->n_locations + 1, sizeof(ConfigLocation));
        if (!t)
                return NULL;
        c->locations = t;
        t = &c->locations[c->n_locations];
        *t = (ConfigLocation) {};
        /* Counted before it is complete so that config_free() cleans up after a failure. */
        c->n_locations++;

        t->name = strdup(name);
        t->remotetype = strdup("dockerv2");
        t->authentication = strdup("http");
        if (!t->name || !t->remotetype || !t->authentication)
                return NULL;
        return t;
}

static ConfigPlatform *config_add_platform(Config *c, const char *name) {
        ConfigPlatform *t;

        t = reallocarray(c->platforms, c->n_platforms + 1, sizeof(ConfigPlatform));
        if (!t)
                return NULL;
        c->platforms = t;
        t = &c->platforms[c->n_platforms];
        *t = (ConfigPlatform) { .ssh_port = 22 };
        c->n_platforms++;

        t->name = strdup(name);
        return t->name ? t : NULL;
}

static int dispatch_locations(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const Field fields[] = {
                { "remotetype",     dispatch_remotetype,     offsetof(ConfigLocation, remotetype) },
                { "authentication", dispatch_authentication, offsetof(ConfigLocation, authentication) },
                { "url",            dispatch_url,            offsetof(ConfigLocation, url) },
                { "sslcacert",      dispatch_ca_path,        offsetof(ConfigLocation, sslcacert) },
                { "insecure",       dispatch_bool,           offsetof(ConfigLocation, insecure) },
                {}
        };
        Config *c = field;

        if (!json_object_is_type(v, json_type_object))
                return config_error(ctx, path, "expected an object, got %s", json_type_article(v));

        json_object_object_foreach(v, name, lv) {
                _cleanup_free_ char *p = path_join(path, name);
                ConfigLocation *l;
                int r;

                if (!p)
                        return -ENOMEM;
                if (!location_name_is_valid(name))
                        return config_error(ctx, p, "invalid registry name (expected host or host:port)");

                l = config_add_location(c, name);
                if (!l)
                        return -ENOMEM;
                r = dispatch_object(ctx, p, lv, fields, l);
                if (r < 0)
                        return r;
                /* null resets optional keys to their defaults; these two have no "unset" */
                if (!l->remotetype && free_and_strdup(&l->remotetype, "dockerv2") < 0)
                        return -ENOMEM;
                if (!l->authentication && free_and_strdup(&l->authentication, "http") < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int platform_verify(ParseContext *ctx, const char *path, ConfigPlatform *p) {
        _cleanup_free_ char *k = NULL;
        const char *missing = NULL;

        if (!p->accesstype)
                missing = "accesstype";
        else if (p->access == CONFIG_ACCESS_REMOTE) {
                if (!p->host)
                        missing = "host";
                else if (!p->ssh_username)
                        missing = "ssh.username";
                else if (!p->ssh_image_dir)
                        missing = "ssh.imageDir";
        }
        if (!missing)
                return 0;

        k = path_join(path, missing);
        if (!k)
                return -ENOMEM;
        if (streq(missing, "accesstype"))
                return config_error(ctx, k, "missing (expected \"local\" or \"remote\")");
        return config_error(ctx, k, "required when accesstype is \"remote\"");
}

static int dispatch_platforms(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const Field fields[] = {
                { "accesstype",       dispatch_accesstype, 0 },
                { "host",             dispatch_hosts,      0 },
                { "ssh",              dispatch_ssh,        0 },
                { "local",            dispatch_local,      0 },
                { "slurm",            dispatch_slurm,      0 },
                { "workerPath",       dispatch_path,       offsetof(ConfigPlatform, worker_path) },
                /* Shifter: munge authentication, admin lists, user lookup, site mounts */
                { "mungeSocketPath",  dispatch_path, offsetof(ConfigPlatform, munge_socket_path) },
                { "admins",           dispatch_platform_admins, offsetof(ConfigPlatform, admins) },
                { "usergroupService", NULL, 0 },
                { "ldap",             NULL, 0 },
                { "mountCommand",     NULL, 0 },
                { "use_external",     NULL, 0 },
                { "policy_file",      NULL, 0 },
                { "ExpandDirectory",  NULL, 0 },
                {}
        };
        Config *c = field;

        if (!json_object_is_type(v, json_type_object))
                return config_error(ctx, path, "expected an object, got %s", json_type_article(v));

        json_object_object_foreach(v, name, pv) {
                _cleanup_free_ char *p = path_join(path, name);
                ConfigPlatform *pl;
                int r;

                if (!p)
                        return -ENOMEM;
                if (!platform_name_is_valid(name))
                        return config_error(ctx, p, "invalid platform name (use letters, digits, \".\", \"_\", \"-\")");

                pl = config_add_platform(c, name);
                if (!pl)
                        return -ENOMEM;
                r = dispatch_object(ctx, p, pv, fields, pl);
                if (r < 0)
                        return r;
                r = platform_verify(ctx, p, pl);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- remote access ---- */

/* "HOST:PORT" or "[V6]:PORT", checked here so that a typo stops start-up with the key's path. */
static int dispatch_listen_address(ParseContext *ctx, const char *path, json_object *v, void *field) {
        char **s = field;
        int r;

        r = dispatch_string(ctx, path, v, field);
        if (r < 0 || !*s)
                return r;
        if (config_parse_listen_address(*s, NULL, NULL) < 0)
                return config_error(ctx, path, "expected \"HOST:PORT\" with a numeric address (e.g. \"127.0.0.1:8080\" or \"[::1]:8443\"), got \"%s\"", *s);
        return 0;
}

static int dispatch_listen(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const Field fields[] = {
                { "tcp", dispatch_listen_address, offsetof(Config, listen_tcp) },
                { "tls", dispatch_listen_address, offsetof(Config, listen_tls) },
                {}
        };
        return dispatch_object(ctx, path, v, fields, field);
}

static int dispatch_tls(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const Field fields[] = {
                { "certificate", dispatch_path, offsetof(Config, tls_certificate) },
                { "key",         dispatch_path, offsetof(Config, tls_key) },
                {}
        };
        return dispatch_object(ctx, path, v, fields, field);
}

/* A list of non-empty strings; validate, if set, checks each. */
static int dispatch_strv_checked(ParseContext *ctx, const char *path, json_object *v, char ***field,
                                 bool (*validate)(const char *s), const char *expected) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;

        if (!json_object_is_type(v, json_type_array))
                return config_error(ctx, path, "expected an array of strings, got %s", json_type_article(v));
        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < json_object_array_length(v); i++) {
                json_object *e = json_object_array_get_idx(v, i);
                const char *s = json_object_get_string(e);

                if (!json_object_is_type(e, json_type_string) || !*s ||
                    strlen(s) != (size_t) json_object_get_string_len(e) || (validate && !validate(s)))
                        return config_error(ctx, path, "entry %zu: expected %s", i, expected);
                if (strv_push(&l, &n, s) < 0)
                        return -ENOMEM;
        }
        strv_free(*field);
        *field = TAKE_PTR(l);
        return 0;
}

/* Outbound lab members' name servers (lab-resolv.h): 1 to 3 IPv4 addresses they can reach;
 * null: the host's. */
static int dispatch_lab_name_servers(ParseContext *ctx, const char *path, json_object *v, void *field) {
        char ***l = field;
        int r;

        if (json_object_is_type(v, json_type_null)) {
                strv_free(*l);
                *l = NULL;
                return 0;
        }
        r = dispatch_strv_checked(ctx, path, v, field, lab_name_server_is_valid,
                                  "an IPv4 address that is not loopback, 0.0.0.0/8 or multicast (e.g. \"192.0.2.53\")");
        if (r < 0)
                return r;
        if (strv_length(*l) < 1 || strv_length(*l) > LAB_NAME_SERVERS_MAX)
                return config_error(ctx, path, "expected 1 to %u name servers (resolvers ask no more), got %zu",
                                    LAB_NAME_SERVERS_MAX, strv_length(*l));
        return 0;
}

static bool anonymous_route_is_valid(const char *s) {
        const char *sp = strchr(s, ' ');

        return sp && sp > s && sp[1] == '/' && !strchr(sp + 1, ' ');
}

static int dispatch_anonymous_routes(ParseContext *ctx, const char *path, json_object *v, void *field) {
        return dispatch_strv_checked(ctx, path, v, field, anonymous_route_is_valid,
                                     "\"METHOD /path\" (e.g. \"GET /v1/status\", \"*\" matches one segment)");
}

static int dispatch_admins(ParseContext *ctx, const char *path, json_object *v, void *field) {
        return dispatch_strv_checked(ctx, path, v, field, NULL, "a user name or \"@group\"");
}

/* "ProgramImages": checked against Locations once the whole file is read (config_finalize()). */
static int dispatch_program_images(ParseContext *ctx, const char *path, json_object *v, void *field) {
        return dispatch_strv_checked(ctx, path, v, field, NULL, "an image reference, \"PREFIX/*\" or \"*\"");
}

/* ---- ProgramImages patterns ---- */

/* An entry of "ProgramImages" ("*" aside): a prefix, "PREFIX/" and "*" (*ret_prefix: ret's repository
 * is the prefix, "" for a whole registry), or a reference (*ret_any_tag: it names no tag or digest). */
static int program_image_pattern_parse(const char *pattern, const char *default_registry, ImageReference **ret,
                                       bool *ret_prefix, bool *ret_any_tag) {
        size_t n = strlen(pattern);
        const char *last = strrchr(pattern, '/');
        _cleanup_free_ char *probe = NULL;
        ImageReference *ref = NULL;
        int r;

        *ret_prefix = n >= 2 && streq(pattern + n - 2, "/*");
        *ret_any_tag = false;
        if (!*ret_prefix) {
                r = image_reference_parse(pattern, default_registry, &ref);
                if (r < 0)
                        return r;
                *ret_any_tag = !strchr(last ?: pattern, ':') && !strchr(pattern, '@');
                *ret = ref;
                return 0;
        }
        /* "PREFIX/x/x" is parsed as a reference: the registry is told apart from the path as in
         * any reference, and Docker Hub's "library/" (single components) is not added. */
        if (n == 2 || memchr(pattern, '@', n) || memchr(pattern, '*', n - 2))
                return -EINVAL;
        if (asprintf(&probe, "%.*s/x/x", (int) (n - 2), pattern) < 0)
                return -ENOMEM;
        r = image_reference_parse(probe, default_registry, &ref);
        if (r < 0)
                return r;
        n = strlen(ref->repository);
        if (n < 3 || !streq(ref->repository + n - 3, "x/x") || (n > 3 && ref->repository[n - 4] != '/')) {
                image_reference_free(ref);
                return -EINVAL;
        }
        ref->repository[n > 3 ? n - 4 : 0] = 0;        /* "team/x/x" → "team", "x/x" → "" */
        *ret = ref;
        return 0;
}

static bool program_image_pattern_matches(const char *pattern, const char *default_registry, const ImageReference *image) {
        _cleanup_(image_reference_freep) ImageReference *p = NULL;
        _cleanup_free_ char *a = NULL, *b = NULL;
        bool prefix, any_tag;
        size_t n;

        if (streq(pattern, "*"))
                return true;
        if (program_image_pattern_parse(pattern, default_registry, &p, &prefix, &any_tag) < 0 ||
            !registry_name_equal(p->registry, image->registry))
                return false;
        if (prefix) {
                n = strlen(p->repository);
                return n == 0 || (strneq(image->repository, p->repository, n) && image->repository[n] == '/');
        }
        if (!streq(p->repository, image->repository))
                return false;
        if (any_tag)
                return true;
        a = image_reference_to_string(p);
        b = image_reference_to_string(image);
        return a && b && streq(a, b);
}

bool config_program_image_permitted(const Config *c, const char *reference) {
        _cleanup_(image_reference_freep) ImageReference *image = NULL;

        if (!c || image_reference_parse(reference, c->default_image_location, &image) < 0)
                return false;
        for (char **p = c->program_images; p && *p; p++)
                if (program_image_pattern_matches(*p, c->default_image_location, image))
                        return true;
        return false;
}

/* Each entry is a pattern, and names a registry of Locations (an image elsewhere is never pulled). */
static int program_images_verify(ParseContext *ctx, Config *c) {
        for (size_t i = 0; c->program_images && c->program_images[i]; i++) {
                _cleanup_(image_reference_freep) ImageReference *p = NULL;
                const char *s = c->program_images[i];
                bool prefix, any_tag;
                int r;

                if (streq(s, "*"))
                        continue;
                r = program_image_pattern_parse(s, c->default_image_location, &p, &prefix, &any_tag);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return config_error(ctx, "ProgramImages", "entry %zu: \"%s\" is not an image reference, "
                                            "\"PREFIX/*\" or \"*\"", i, s);
                if (!config_location_for_registry(c, p->registry))
                        return config_error(ctx, "ProgramImages", "entry %zu: registry \"%s\" is not defined in Locations",
                                            i, p->registry);
        }
        return 0;
}

/* "ProgramProviders": {"NAME": {"admins": [...], "users": [...]}}; the lists are parsed as
 * "Admins" is (user names and "@group"s) and matched by the same code (auth_user_list_matches()). */
bool config_program_provider_name_is_valid(const char *name) {
        size_t n = strlen(name);

        return n > 0 && n <= 64 &&
               strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

static int dispatch_program_providers(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const Field fields[] = {
                { "admins", dispatch_admins, offsetof(ConfigProgramProvider, admins) },
                { "users",  dispatch_admins, offsetof(ConfigProgramProvider, users) },
                {}
        };
        Config *c = field;

        if (!json_object_is_type(v, json_type_object))
                return config_error(ctx, path, "expected an object of providers, got %s", json_type_article(v));
        json_object_object_foreach(v, name, pv) {
                _cleanup_free_ char *p = path_join(path, name);
                ConfigProgramProvider *t;
                int r;

                if (!p)
                        return -ENOMEM;
                if (!config_program_provider_name_is_valid(name))
                        return config_error(ctx, p, "invalid provider name (1-64 of A-Z a-z 0-9 _ -)");
                t = reallocarray(c->program_providers, c->n_program_providers + 1, sizeof(ConfigProgramProvider));
                if (!t)
                        return -ENOMEM;
                c->program_providers = t;
                t = &t[c->n_program_providers++];
                *t = (ConfigProgramProvider) { .name = strdup(name) };
                if (!t->name)
                        return -ENOMEM;
                r = dispatch_object(ctx, p, pv, fields, t);
                if (r < 0)
                        return r;
        }
        return 0;
}

const ConfigProgramProvider *config_program_provider_find(const Config *c, const char *name) {
        for (size_t i = 0; c && name && i < c->n_program_providers; i++)
                if (streq(c->program_providers[i].name, name))
                        return &c->program_providers[i];
        return NULL;
}

/* "Authentication" (top level; Locations have their own): Shifter writes the one scheme as a
 * string ("munge"; its test-only "mock" is refused), gatewayd's object form names each scheme
 * with its settings, e.g. {"munge": {"socket": "/run/munge/munge.socket.2"}}. */
static int dispatch_munge(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const Field fields[] = {
                { "socket", dispatch_path, offsetof(Config, munge_socket) },
                {}
        };
        Config *c = field;

        c->munge = true;
        return dispatch_object(ctx, path, v, fields, c);
}

static int dispatch_custom_token(ParseContext *ctx, const char *path, json_object *v, void *field);
static int dispatch_oidc(ParseContext *ctx, const char *path, json_object *v, void *field);

static int dispatch_top_authentication(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const Field fields[] = {
                { "munge",       dispatch_munge,        0 },
                { "customToken", dispatch_custom_token, offsetof(Config, custom_token) },
                { "oidc",        dispatch_oidc,         0 },
                {}
        };
        Config *c = field;

        if (json_object_is_type(v, json_type_string)) {
                if (!streq(json_object_get_string(v), "munge"))
                        return config_error(ctx, path, "unsupported value \"%s\" (expected \"munge\" or an object such as "
                                            "{\"munge\": {\"socket\": PATH}})", json_object_get_string(v));
                c->munge = true;
                return 0;
        }
        return dispatch_object(ctx, path, v, fields, c);
}

/* "Authentication".customToken: the site's token service (auth-custom-token.c). */
static bool verification_field_is_valid(const char *s) {
        /* "a;b,c": fields separated by ';', each a path of keys separated by ','. */
        for (const char *p = s; ; p++) {
                if (*p == ';' || *p == ',' || *p == 0) {
                        if (p == s || p[-1] == ';' || p[-1] == ',')
                                return false;  /* an empty key */
                        if (*p == 0)
                                return true;
                } else if ((unsigned char) *p < ' ')
                        return false;
        }
}

static int dispatch_custom_token(ParseContext *ctx, const char *path, json_object *v, void *field) {
        static const Field fields[] = {
                { "tokenUrl",          dispatch_url,    offsetof(ConfigCustomToken, token_url) },
                { "verificationUrl",   dispatch_url,    offsetof(ConfigCustomToken, verification_url) },
                { "tokenField",        dispatch_string, offsetof(ConfigCustomToken, token_field) },
                { "userField",         dispatch_string, offsetof(ConfigCustomToken, user_field) },
                { "verificationField", dispatch_string, offsetof(ConfigCustomToken, verification_field) },
                { "localUser",         dispatch_string, offsetof(ConfigCustomToken, local_user) },
                {}
        };
        ConfigCustomToken *t = field;
        int r;

        r = dispatch_object(ctx, path, v, fields, t);
        if (r < 0)
                return r;
        if (!t->token_url || !t->verification_url)
                return config_error(ctx, path, "tokenUrl and verificationUrl are required");
        if (t->verification_field && !verification_field_is_valid(t->verification_field))
                return config_error(ctx, path, "verificationField: expected \"field;nested,field\", got \"%s\"",
                                    t->verification_field);
        if ((!t->token_field && !(t->token_field = strdup("apiToken"))) ||
            (!t->user_field && !(t->user_field = strdup("userId"))))
                return -ENOMEM;
        return 0;
}

static const Field config_fields[] = {
        { "DefaultImageLocation",     dispatch_string,       offsetof(Config, default_image_location) },
        { "DefaultImageFormat",       dispatch_image_format, offsetof(Config, default_image_format) },
        { "PullUpdateTimeout",        dispatch_seconds,      offsetof(Config, pull_update_timeout_sec) },
        { "ImageExpirationTimeout",   dispatch_duration,     offsetof(Config, image_expiration_sec) },
        { "CacheDirectory",           dispatch_path,         offsetof(Config, cache_directory) },
        { "ExpandDirectory",          dispatch_path,         offsetof(Config, expand_directory) },
        { "LogLevel",                 dispatch_log_level,    offsetof(Config, log_level) },
        { "Locations",                dispatch_locations,    0 },
        { "Platforms",                dispatch_platforms,    0 },

        /* Shifter keys for its own machinery (MongoDB, celery, munge, Lustre striping, ...) */
        { "WorkerThreads",            NULL, 0 },
        { "DefaultLustreReplication", NULL, 0 },
        { "DefaultOstCount",          NULL, 0 },
        { "MongoDBURI",               NULL, 0 },
        { "MongoDB",                  NULL, 0 },
        { "Broker",                   NULL, 0 },
        { "Metrics",                  NULL, 0 },
        { "ImportUsers",              NULL, 0 },
        { "ConverterOptions",         NULL, 0 },
        { "examiner",                 NULL, 0 },

        /* gatewayd */
        { "DefaultPlatform",          dispatch_string,       offsetof(Config, default_platform) },
        { "StateDirectory",           dispatch_path,         offsetof(Config, state_directory) },
        { "WorkerPath",               dispatch_path,         offsetof(Config, worker_path) },
        { "MaxRequestBody",           dispatch_size_nonzero, offsetof(Config, max_request_body) },
        { "JobsPerUser",              dispatch_unsigned,     offsetof(Config, jobs_per_user) },
        { "ActiveJobsPerUser",        dispatch_unsigned,     offsetof(Config, active_jobs_per_user) },
        { "LabInstancesPerUser",      dispatch_unsigned,     offsetof(Config, lab_instances_per_user) },
        { "LabTokenLifetime",         dispatch_duration,     offsetof(Config, lab_token_lifetime_sec) },
        { "LabProxyURL",              dispatch_url,          offsetof(Config, lab_proxy_url) },
        { "LabNetworkPool",           dispatch_lab_network_pool, 0 },
        { "LabNameServers",           dispatch_lab_name_servers, offsetof(Config, lab_name_servers) },
        { "LabWritableMax",           dispatch_lab_writable_max, offsetof(Config, lab_writable_max) },
        { "MaxClusters",              dispatch_positive,     offsetof(Config, max_clusters) },
        { "ConnectionsPerUser",       dispatch_positive,     offsetof(Config, connections_per_user) },
        { "ConnectionsMax",           dispatch_positive,     offsetof(Config, connections_max) },
        { "ConnectionTimeout",        dispatch_connection_timeout, offsetof(Config, connection_timeout_sec) },
        { "Compression",              dispatch_compression,  0 },
        { "Limits",                   dispatch_limits,       0 },
        { "JobRetention",             dispatch_duration,     offsetof(Config, job_retention_sec) },
        { "ImageSizeMax",             dispatch_size_nonzero, offsetof(Config, image_size_max) },
        { "ImageFilesMax",            dispatch_positive,     offsetof(Config, image_files_max) },
        { "NodeLostTimeout",          dispatch_duration,     offsetof(Config, node_lost_timeout_sec) },
        /* programs */
        { "ProgramImage",             dispatch_string,       offsetof(Config, program_image) },
        { "ProgramArtifactMax",       dispatch_size_nonzero, offsetof(Config, program_artifact_max) },
        { "ProgramImages",            dispatch_program_images, offsetof(Config, program_images) },
        { "ProgramProviders",         dispatch_program_providers, 0 },
        /* remote access */
        { "Listen",                   dispatch_listen,       0 },
        { "TLS",                      dispatch_tls,          0 },
        { "AnonymousRoutes",          dispatch_anonymous_routes, offsetof(Config, anonymous_routes) },
        { "ConnectionsPerAddress",    dispatch_positive,     offsetof(Config, connections_per_address) },
        { "Admins",                   dispatch_admins,       offsetof(Config, admins) },
        { "TokenExpiry",              dispatch_duration,     offsetof(Config, token_expiry_sec) },
        { "TokenExpiryMax",           dispatch_duration,     offsetof(Config, token_expiry_max_sec) },
        { "Authentication",           dispatch_top_authentication, 0 },
        { "ClientTokenExpiry",        dispatch_duration,     offsetof(Config, client_token_expiry_sec) },
        {}
};

/* ---- whole configuration ---- */

static int compression_default_level(const char *algorithm, int *ret_default, int *ret_min, int *ret_max) {
        /* Ranges are mksquashfs's: -Xcompression-level for zstd/gzip, -Xpreset for xz, and
         * for lz4 0 (fast) or 1 (-Xhc). */
        static const struct { const char *name; int def, min, max; } table[] = {
                { "zstd", 3, 1, 22 },
                { "gzip", 6, 1, 9 },
                { "xz",   6, 0, 9 },
                { "lz4",  0, 0, 1 },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(table[i].name, algorithm)) {
                        *ret_default = table[i].def;
                        *ret_min = table[i].min;
                        *ret_max = table[i].max;
                        return 0;
                }
        return -EINVAL;
}

/* Defaults for everything that is not a list; see docs/configuration.md. */
static Config *config_alloc(void) {
        Config *c;

        c = calloc(1, sizeof(Config));
        if (!c)
                return NULL;

        *c = (Config) {
                .pull_update_timeout_sec = 300,
                .image_expiration_sec = 90 * 24 * 3600, /* Shifter's "90:00:00:00" */
                .log_level = -1,
                .max_request_body = 1 * MIB,
                /* the serverless gateway's LIMITS_JOBS_PER_USER and LIMITS_ACTIVE_JOBS_PER_USER */
                .jobs_per_user = 2,
                .active_jobs_per_user = 50,
                .lab_instances_per_user = 2,
                .lab_token_lifetime_sec = 600,
                .lab_network_pool = 10U << 24 | 250U << 16,     /* 10.250.0.0/16 */
                .lab_network_pool_prefix = 16,
                .lab_writable_max = 1024 * MIB,
                .max_clusters = 4,
                .connections_per_user = 64,
                .connections_max = 4096,
                .connection_timeout_sec = 60,
                .compression_level = -1,
                .result_max = 16 * MIB,
                .interim_max = 1 * MIB,
                .interim_count = 10000,
                .log_max = 50 * MIB,
                .runtime_max_sec = 24 * 3600,
                .memory_max = 0,
                .tasks_max = 512,
                .output_max = 64 * MIB,
                .output_files = 1000,
                .job_retention_sec = 7 * 24 * 3600,
                .image_size_max = 64 * KIB * MIB,
                .image_files_max = 2000000,
                .node_lost_timeout_sec = 600,
                .program_artifact_max = 64 * MIB,
                .connections_per_address = 64,
                .token_expiry_sec = 30 * 24 * 3600,
                .token_expiry_max_sec = 365 * 24 * 3600,
                .client_token_expiry_sec = 3600,
        };
        c->default_image_format = strdup("squashfs");
        c->compressor = strdup("zstd");
        if (!c->default_image_format || !c->compressor)
                return config_free(c);
        return c;
}

/* A quarter of the machine's physical memory: jobs run on this machine (the local platform),
 * and without a limit one job could take all of it. */
static uint64_t default_memory_max(void) {
        long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);

        if (pages <= 0 || page_size <= 0)
                return 0;
        return (uint64_t) pages * (uint64_t) page_size / 4;
}

/* Fills in what depends on the whole file: the implicit registry and platform, the defaults
 * that name one of them, the compression level that depends on the algorithm, and the defaults
 * that depend on the machine. */
static int config_finalize(ParseContext *ctx, Config *c) {
        int def, min, max;

        if (c->n_locations == 0) {
                if (c->default_image_location && !location_name_is_valid(c->default_image_location))
                        return config_error(ctx, "DefaultImageLocation",
                                            "invalid registry name \"%s\" (expected host or host:port)",
                                            c->default_image_location);
                if (!config_add_location(c, c->default_image_location ?: DEFAULT_LOCATION))
                        return -ENOMEM;
        }
        if (!c->default_image_location) {
                c->default_image_location = strdup(c->locations[0].name);
                if (!c->default_image_location)
                        return -ENOMEM;
        } else if (!config_location_find(c, c->default_image_location))
                return config_error(ctx, "DefaultImageLocation", "\"%s\" is not defined in Locations",
                                    c->default_image_location);

        if (c->n_platforms == 0) {
                ConfigPlatform *p = config_add_platform(c, DEFAULT_PLATFORM);
                if (!p || !(p->accesstype = strdup("local")))
                        return -ENOMEM;
                p->access = CONFIG_ACCESS_LOCAL;
        }
        if (!c->default_platform) {
                c->default_platform = strdup(c->platforms[0].name);
                if (!c->default_platform)
                        return -ENOMEM;
        } else if (!config_platform_find(c, c->default_platform))
                return config_error(ctx, "DefaultPlatform", "\"%s\" is not defined in Platforms",
                                    c->default_platform);

        if (!c->default_image_format && !(c->default_image_format = strdup("squashfs")))
                return -ENOMEM;
        if (!c->compressor && !(c->compressor = strdup("zstd")))
                return -ENOMEM;
        if (compression_default_level(c->compressor, &def, &min, &max) < 0)
                return config_error(ctx, "Compression.algorithm", "unsupported value \"%s\"", c->compressor);
        if (c->compression_level < 0)
                c->compression_level = def;
        else if (c->compression_level < min || c->compression_level > max)
                return config_error(ctx, "Compression.level", "%d is out of range for %s (%d..%d)",
                                    c->compression_level, c->compressor, min, max);

        if (c->memory_max == 0)
                c->memory_max = default_memory_max();

        if (!c->anonymous_routes) {
                /* The status and PlanQK's health route: what load balancers and SDKs probe. */
                size_t n = 0;

                if (strv_push(&c->anonymous_routes, &n, "GET /v1/status") < 0 ||
                    strv_push(&c->anonymous_routes, &n, "GET /planqk/*") < 0 ||
                    /* PlanQK clients prove themselves there (client credentials): it takes none. */
                    strv_push(&c->anonymous_routes, &n, "POST /token") < 0)
                        return -ENOMEM;
        }
        if (c->listen_tls && (!c->tls_certificate || !c->tls_key))
                return config_error(ctx, "TLS", "certificate and key are required with Listen.tls");
        if (c->token_expiry_sec == 0 || c->token_expiry_max_sec == 0)
                return config_error(ctx, c->token_expiry_sec == 0 ? "TokenExpiry" : "TokenExpiryMax", "must not be 0");
        if (c->token_expiry_sec > c->token_expiry_max_sec)
                return config_error(ctx, "TokenExpiry", "exceeds TokenExpiryMax");
        /* Shifter authenticates with munge unless told otherwise, and its sample configurations
         * name only the platforms' sockets: a mungeSocketPath enables munge as it does there
         * (it matters only on TCP/TLS listeners, which are never on by default). */
        for (size_t i = 0; !c->munge && i < c->n_platforms; i++)
                if (c->platforms[i].munge_socket_path)
                        c->munge = true;
        if (c->client_token_expiry_sec == 0)
                return config_error(ctx, "ClientTokenExpiry", "must not be 0");
        return program_images_verify(ctx, c);
}

Config *config_new(void) {
        ParseContext ctx = {};
        Config *c;

        c = config_alloc();
        if (!c)
                return NULL;
        if (config_finalize(&ctx, c) < 0) {
                free(ctx.error);
                return config_free(c);
        }
        return c;
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;

        free(c->path);
        free(c->default_image_location);
        free(c->default_image_format);
        free(c->cache_directory);
        free(c->expand_directory);
        for (size_t i = 0; i < c->n_locations; i++)
                location_done(&c->locations[i]);
        free(c->locations);
        for (size_t i = 0; i < c->n_platforms; i++)
                platform_done(&c->platforms[i]);
        free(c->platforms);
        free(c->default_platform);
        free(c->state_directory);
        free(c->worker_path);
        free(c->lab_proxy_url);
        strv_free(c->lab_name_servers);
        free(c->program_image);
        strv_free(c->program_images);
        for (size_t i = 0; i < c->n_program_providers; i++) {
                free(c->program_providers[i].name);
                strv_free(c->program_providers[i].admins);
                strv_free(c->program_providers[i].users);
        }
        free(c->program_providers);
        free(c->compressor);
        free(c->listen_tcp);
        free(c->listen_tls);
        free(c->tls_certificate);
        free(c->tls_key);
        strv_free(c->anonymous_routes);
        strv_free(c->admins);
        free(c->oidc_issuer);
        free(c->oidc_audience);
        free(c->oidc_user_claim);
        free(c->oidc_local_user);
        free(c->oidc_ca_file);
        free(c->munge_socket);
        free(c->custom_token.token_url);
        free(c->custom_token.verification_url);
        free(c->custom_token.token_field);
        free(c->custom_token.user_field);
        free(c->custom_token.verification_field);
        free(c->custom_token.local_user);
        strv_free(c->unknown_keys);
        free(c);
        return NULL;
}

static void offset_to_line_column(const char *text, size_t offset, unsigned *ret_line, unsigned *ret_column) {
        unsigned line = 1, column = 1;

        for (size_t i = 0; i < offset && text[i]; i++) {
                if (text[i] == '\n') {
                        line++;
                        column = 1;
                } else
                        column++;
        }
        *ret_line = line;
        *ret_column = column;
}

static int parse_json(const char *text, json_object **ret, char **ret_error) {
        json_tokener *tok;
        json_object *root;
        enum json_tokener_error jerr;
        size_t len = strlen(text), end;
        unsigned line, column;

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);

        root = json_tokener_parse_ex(tok, text, (int) len);
        jerr = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);

        if (!root || jerr != json_tokener_success) {
                const char *why = jerr == json_tokener_continue ? "unexpected end of input"
                                                                : json_tokener_error_desc(jerr);
                json_object_put(root);
                offset_to_line_column(text, end, &line, &column);
                if (ret_error && asprintf(ret_error, "line %u, column %u: invalid JSON: %s", line, column, why) < 0)
                        *ret_error = NULL;
                return -EBADMSG;
        }

        /* json-c stops after the first value; anything but white space after it is an error. */
        for (size_t i = end; i < len; i++)
                if (!strchr(" \t\r\n", text[i])) {
                        json_object_put(root);
                        offset_to_line_column(text, i, &line, &column);
                        if (ret_error &&
                            asprintf(ret_error, "line %u, column %u: invalid JSON: trailing characters", line, column) < 0)
                                *ret_error = NULL;
                        return -EBADMSG;
                }

        *ret = root;
        return 0;
}

int config_parse(const char *text, const char *path, Config **ret, char **ret_error) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *dir = NULL;
        ParseContext ctx = {};
        json_object *root = NULL;
        int r;

        if (ret_error)
                *ret_error = NULL;

        r = parse_json(text, &root, ret_error);
        if (r < 0)
                return r;

        c = config_alloc();
        if (!c) {
                r = -ENOMEM;
                goto finish;
        }
        if (path) {
                _cleanup_free_ char *copy = strdup(path);

                c->path = strdup(path);
                dir = copy ? strdup(dirname(copy)) : NULL;
                if (!c->path || !dir) {
                        r = -ENOMEM;
                        goto finish;
                }
                ctx.dir = dir;
        }

        r = dispatch_object(&ctx, NULL, root, config_fields, c);
        if (r >= 0)
                r = config_finalize(&ctx, c);
        if (r >= 0) {
                c->unknown_keys = TAKE_PTR(ctx.unknown);
                *ret = TAKE_PTR(c);
        }

finish:
        json_object_put(root);
        strv_free(ctx.unknown);
        if (r == -ENOMEM && !ctx.error)
                ctx.error = strdup("out of memory");
        if (r < 0 && ret_error)
                *ret_error = TAKE_PTR(ctx.error);
        free(ctx.error);
        return r;
}

static int read_file(const char *path, char **ret, size_t *ret_size) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t n;

        f = fopen(path, "re");
        if (!f)
                return -errno;

        buf = malloc(CONFIG_FILE_MAX + 1);
        if (!buf)
                return -ENOMEM;
        n = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
        if (ferror(f))
                return errno > 0 ? -errno : -EIO;
        if (n > CONFIG_FILE_MAX)
                return -EFBIG;
        buf[n] = 0;

        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

int config_parse_listen_address(const char *s, struct sockaddr_storage *ret, socklen_t *ret_len) {
        union { struct sockaddr_storage ss; struct sockaddr_in in; struct sockaddr_in6 in6; } sa = {};
        _cleanup_free_ char *host = NULL;
        const char *colon, *h, *port;
        unsigned long p;
        char *end;

        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                h = s + 1;
                host = strndup(h, close - h);
                port = close + 2;
        } else {
                colon = strrchr(s, ':');
                if (!colon)
                        return -EINVAL;
                host = strndup(s, colon - s);
                port = colon + 1;
        }
        if (!host)
                return -ENOMEM;
        errno = 0;
        p = strtoul(port, &end, 10);
        if (!*port || *end || errno != 0 || p == 0 || p > 65535)
                return -EINVAL;
        if (inet_pton(AF_INET, host, &sa.in.sin_addr) == 1) {
                sa.in.sin_family = AF_INET;
                sa.in.sin_port = htons((uint16_t) p);
                if (ret_len)
                        *ret_len = sizeof(sa.in);
        } else if (inet_pton(AF_INET6, host, &sa.in6.sin6_addr) == 1) {
                sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_port = htons((uint16_t) p);
                if (ret_len)
                        *ret_len = sizeof(sa.in6);
        } else
                return -EINVAL;
        if (ret)
                *ret = sa.ss;
        return 0;
}

static int verify_readable(const char *key, const char *path, char **ret_error) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 || fstat(fd, &st) < 0)
                r = -errno;
        else if (!S_ISREG(st.st_mode))
                r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        if (r < 0 && ret_error && asprintf(ret_error, "%s: cannot read \"%s\": %s", key, path,
                                           r == -EINVAL ? "not a regular file" : strerror(-r)) < 0)
                *ret_error = NULL;
        return r;
}

int config_verify_files(const Config *c, char **ret_error) {
        if (c->listen_tls) {
                int k = verify_readable("TLS.certificate", c->tls_certificate, ret_error);
                if (k >= 0)
                        k = verify_readable("TLS.key", c->tls_key, ret_error);
                if (k < 0)
                        return k;
        }
        for (size_t i = 0; i < c->n_locations; i++) {
                const ConfigLocation *l = &c->locations[i];
                _cleanup_close_ int fd = -1;
                struct stat st;
                int r = 0;

                if (!l->sslcacert)
                        continue;
                fd = open(l->sslcacert, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                if (fd < 0 || fstat(fd, &st) < 0)
                        r = -errno;
                else if (!S_ISREG(st.st_mode))
                        r = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
                if (r < 0) {
                        if (ret_error && asprintf(ret_error, "Locations.%s.sslcacert: cannot read \"%s\": %s",
                                                  l->name, l->sslcacert,
                                                  r == -EINVAL ? "not a regular file" : strerror(-r)) < 0)
                                *ret_error = NULL;
                        return r;
                }
        }
        for (size_t i = 0; i < c->n_platforms; i++) {
                const ConfigPlatform *p = &c->platforms[i];
                _cleanup_free_ char *why = NULL;
                int r;

                if (p->access != CONFIG_ACCESS_REMOTE)
                        continue;
                /* The nodes are logged in to with it: a key libssh2 cannot use is an error now,
                 * not a node that never comes up. */
                if (!p->ssh_key) {
                        if (ret_error && asprintf(ret_error, "Platforms.%s.ssh.key: a remote platform needs the private key "
                                                  "its nodes accept", p->name) < 0)
                                *ret_error = NULL;
                        return -EINVAL;
                }
                r = ssh_key_check(p->ssh_key, &why);
                if (r < 0) {
                        if (ret_error && asprintf(ret_error, "Platforms.%s.ssh.key: %s", p->name, strna(why)) < 0)
                                *ret_error = NULL;
                        return r;
                }
        }
        return 0;
}

int config_load(const char *path, bool missing_ok, Config **ret, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        int r;

        if (ret_error)
                *ret_error = NULL;

        r = read_file(path, &text, &size);
        if (r == -ENOENT && missing_ok) {
                log_debug("%s: not found, using defaults.", path);
                *ret = config_new();
                return *ret ? 0 : -ENOMEM;
        }
        if (r < 0) {
                if (ret_error && asprintf(ret_error, "%s: %s", path,
                                          r == -EFBIG ? "file too large" : strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        if (strlen(text) != size) {
                if (ret_error && asprintf(ret_error, "%s: contains a NUL byte", path) < 0)
                        *ret_error = NULL;
                return -EBADMSG;
        }

        r = config_parse(text, path, ret, ret_error);
        if (r < 0 && ret_error && *ret_error) {
                /* "FILE: key: message", like a compiler's "file:line: message" */
                char *e;

                if (asprintf(&e, "%s: %s", path, *ret_error) >= 0) {
                        free(*ret_error);
                        *ret_error = e;
                }
        }
        return r;
}

int config_parse_duration(const char *s, uint64_t *ret_sec) {
        /* Seconds per field, counted from the right: SS, MM, HH, D. A field that is not the
         * leftmost one must stay below its limit and have at most two digits. */
        static const uint64_t unit[] = { 1, 60, 3600, 86400 };
        static const uint64_t limit[] = { 60, 60, 24, 0 };
        const char *fields[4];
        size_t n = 0, lens[4];
        uint64_t total = 0;
        const char *p = s;

        if (!s || !*s)
                return -EINVAL;

        for (;;) {
                const char *colon = strchr(p, ':');
                size_t l = colon ? (size_t) (colon - p) : strlen(p);

                if (n >= ELEMENTSOF(fields) || l == 0)
                        return -EINVAL;
                fields[n] = p;
                lens[n++] = l;
                if (!colon)
                        break;
                p = colon + 1;
        }

        for (size_t i = 0; i < n; i++) {
                size_t pos = n - 1 - i; /* 0 = seconds */
                uint64_t v = 0;

                for (size_t j = 0; j < lens[i]; j++) {
                        char ch = fields[i][j];
                        if (ch < '0' || ch > '9')
                                return -EINVAL;
                        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t) (ch - '0'), &v))
                                return -ERANGE;
                }
                if (i > 0 && (lens[i] > 2 || v >= limit[pos]))
                        return -EINVAL;
                if (__builtin_mul_overflow(v, unit[pos], &v) || __builtin_add_overflow(total, v, &total))
                        return -ERANGE;
        }

        *ret_sec = total;
        return 0;
}

ConfigPlatform *config_platform_find(Config *c, const char *name) {
        if (!c || !name)
                return NULL;
        for (size_t i = 0; i < c->n_platforms; i++)
                if (streq(c->platforms[i].name, name))
                        return &c->platforms[i];
        return NULL;
}

const char *config_munge_socket(const Config *c, const ConfigPlatform *p) {
        return p && p->munge_socket_path ? p->munge_socket_path : c->munge_socket;
}

bool config_platform_is_admin(const ConfigPlatform *p, const char *user_name) {
        if (!p || !user_name)
                return false;
        for (char **a = p->admins; a && *a; a++)
                if (streq(*a, user_name))
                        return true;
        return false;
}

ConfigPlatform *config_platform_default(Config *c) {
        if (!c)
                return NULL;
        return config_platform_find(c, c->default_platform) ?: (c->n_platforms > 0 ? c->platforms : NULL);
}

const char *config_platform_image_dir(const ConfigPlatform *p) {
        if (!p)
                return NULL;
        return p->access == CONFIG_ACCESS_REMOTE ? p->ssh_image_dir : p->local_image_dir;
}

ConfigLocation *config_location_find(Config *c, const char *name) {
        if (!c)
                return NULL;
        if (!name)
                name = c->default_image_location;
        if (!name)
                return NULL;
        for (size_t i = 0; i < c->n_locations; i++)
                if (streq(c->locations[i].name, name))
                        return &c->locations[i];
        return NULL;
}

ConfigLocation *config_location_for_registry(Config *c, const char *registry) {
        if (!c || !registry)
                return NULL;
        for (size_t i = 0; i < c->n_locations; i++)
                if (registry_name_equal(c->locations[i].name, registry))
                        return &c->locations[i];
        return NULL;
}

int config_location_base_url(const ConfigLocation *l, char **ret) {
        const char *host;
        size_t len;
        char *u;

        if (l->url) {
                /* "https://host/" and "https://host" mean the same base */
                len = strlen(l->url);
                while (len > 0 && l->url[len - 1] == '/')
                        len--;
                u = strndup(l->url, len);
        } else {
                host = l->name;
                if (streq(host, "docker.io") || streq(host, "index.docker.io") || streq(l->remotetype, "dockerhub"))
                        host = "registry-1.docker.io";
                if (asprintf(&u, "%s://%s", l->insecure ? "http" : "https", host) < 0)
                        u = NULL;
        }
        if (!u)
                return -ENOMEM;
        *ret = u;
        return 0;
}

/* ---- directories, at start ---- */

static int prepare_directory(const char *config_path, const char *key, const char *dir, char **ret_error) {
        _cleanup_free_ char *why = NULL;
        struct stat st;
        int r;

        /* Missing: created, as systemd creates a unit's StateDirectory=. Present but not a
         * directory: the configuration names the wrong thing, which must stop the start rather
         * than the first pull. */
        r = mkdir_p(dir, 0755);
        if (r < 0) {
                if (asprintf(&why, "cannot be created (%s)", strerror(-r)) < 0)
                        return -ENOMEM;
        } else if (stat(dir, &st) < 0) {
                r = -errno;
                if (asprintf(&why, "cannot be accessed (%s)", strerror(-r)) < 0)
                        return -ENOMEM;
        } else if (!S_ISDIR(st.st_mode)) {
                r = -ENOTDIR;
                if (!(why = strdup("is not a directory")))
                        return -ENOMEM;
        } else
                return 0;

        if (ret_error && asprintf(ret_error, "%s%s%s: %s %s", strempty(config_path), config_path ? ": " : "",
                                  key, dir, why) < 0)
                *ret_error = NULL;
        return r;
}

int config_prepare_directories(const Config *c, const char *state_dir, char **ret_error) {
        _cleanup_free_ char *cache = NULL, *expand = NULL, *images = NULL;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (asprintf(&cache, "%s/cache", state_dir) < 0 || asprintf(&expand, "%s/expand", state_dir) < 0 ||
            asprintf(&images, "%s/images", state_dir) < 0)
                return -ENOMEM;

        r = prepare_directory(c->path, c->cache_directory ? "CacheDirectory" : "CacheDirectory (default)",
                              c->cache_directory ?: cache, ret_error);
        if (r < 0)
                return r;
        r = prepare_directory(c->path, c->expand_directory ? "ExpandDirectory" : "ExpandDirectory (default)",
                              c->expand_directory ?: expand, ret_error);
        if (r < 0)
                return r;
        r = prepare_directory(c->path, "local.imageDir (default)", images, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < c->n_platforms; i++) {
                const ConfigPlatform *p = &c->platforms[i];
                _cleanup_free_ char *key = NULL;

                /* ssh.imageDir lives on the node; only this host's directories are ours. */
                if (p->access != CONFIG_ACCESS_LOCAL || !p->local_image_dir)
                        continue;
                if (asprintf(&key, "Platforms.%s.local.imageDir", p->name) < 0)
                        return -ENOMEM;
                r = prepare_directory(c->path, key, p->local_image_dir, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

const char *config_state_directory(const Config *c, const char *cmdline, const char *fallback) {
        return cmdline ?: c->state_directory ?: fallback;
}

int config_log_level(const Config *c, int cmdline, int fallback) {
        if (cmdline >= 0)
                return cmdline;
        return c->log_level >= 0 ? c->log_level : fallback;
}

int config_location_worker_args(const ConfigLocation *l, char ***ret) {
        _cleanup_strv_free_ char **args = NULL;
        _cleanup_free_ char *url = NULL, *a = NULL;
        size_t n = 0;
        int r;

        /* Only an explicit base URL: otherwise the worker derives it from the name, loopback and
         * --insecure-registry rules included. */
        if (l->url || streq(l->remotetype, "dockerhub")) {
                r = config_location_base_url(l, &url);
                if (r < 0)
                        return r;
                if (asprintf(&a, "--registry-url=%s=%s", l->name, url) < 0 || strv_push(&args, &n, a) < 0)
                        return -ENOMEM;
                a = mfree(a);
        }
        if (l->sslcacert) {
                if (asprintf(&a, "--registry-cacert=%s=%s", l->name, l->sslcacert) < 0 || strv_push(&args, &n, a) < 0)
                        return -ENOMEM;
                a = mfree(a);
        }
        if (asprintf(&a, "--registry-auth=%s=%s", l->name, l->authentication) < 0 || strv_push(&args, &n, a) < 0)
                return -ENOMEM;

        *ret = TAKE_PTR(args);
        return 0;
}
