/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "program-deps.h"

/* Entries read per site directory: an image is an admin's, but a bound is cheap. */
#define SITE_ENTRIES_MAX 20000
#define RELEASE_MAX 8

static const char *const site_globs[] = {
        "usr/lib/python3/dist-packages",
        "usr/lib/python3*/site-packages",
        "usr/lib/python3*/dist-packages",
        "usr/lib64/python3*/site-packages",
        "usr/local/lib/python3*/site-packages",
        "usr/local/lib/python3*/dist-packages",
        "opt/conda/lib/python3*/site-packages",
};

/* PEP 503: lower case, runs of '-', '_', '.' as one '-'. */
static char *normalize_name(const char *s, size_t n) {
        char *out = malloc(n + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (strchr("-_.", s[i])) {
                        if (o == out || o[-1] != '-')
                                *o++ = '-';
                } else
                        *o++ = (char) tolower((unsigned char) s[i]);
        }
        *o = 0;
        return out;
}

static bool name_char(char c) {
        return isalnum((unsigned char) c) || c == '-' || c == '_' || c == '.';
}

bool program_dist_parse(const char *entry, char **ret_name, char **ret_version) {
        const char *suffix, *dash;
        size_t n = strlen(entry);

        if (n > 10 && streq(entry + n - 10, ".dist-info"))
                suffix = entry + n - 10;
        else if (n > 9 && streq(entry + n - 9, ".egg-info"))
                suffix = entry + n - 9;
        else
                return false;
        /* NAME-VERSION[-pyX.Y]: the name has no '-' in dist-info names (it is escaped to '_') */
        dash = memchr(entry, '-', (size_t) (suffix - entry));
        if (!dash || dash == entry || dash + 1 >= suffix || !isalnum((unsigned char) entry[0]) ||
            !isalnum((unsigned char) dash[1]))
                return false;
        *ret_name = normalize_name(entry, (size_t) (dash - entry));
        {
                const char *v = dash + 1, *end = memchr(v, '-', (size_t) (suffix - v)) ?: suffix;
                *ret_version = strndup(v, (size_t) (end - v));
        }
        if (!*ret_name || !*ret_version) {
                free(*ret_name);
                free(*ret_version);
                return false;
        }
        return true;
}

typedef struct Version {
        long release[RELEASE_MAX];
        unsigned n;
        int phase;      /* dev -4, a -3, b -2, rc -1, final 0, post 1 */
        long phase_n;
} Version;

static void version_parse(const char *s, Version *v) {
        *v = (Version) {};
        if (*s == 'v' || *s == 'V')
                s++;
        while (isdigit((unsigned char) *s)) {
                long x = 0;

                while (isdigit((unsigned char) *s)) {
                        x = x < LONG_MAX / 10 ? x * 10 + (*s - '0') : LONG_MAX;
                        s++;
                }
                if (v->n < RELEASE_MAX)
                        v->release[v->n++] = x;
                if (*s != '.' || !isdigit((unsigned char) s[1]))
                        break;
                s++;
        }
        s += strspn(s, ".-_");
        if (strncasecmp(s, "dev", 3) == 0)
                v->phase = -4, s += 3;
        else if (strncasecmp(s, "alpha", 5) == 0)
                v->phase = -3, s += 5;
        else if (strncasecmp(s, "beta", 4) == 0)
                v->phase = -2, s += 4;
        else if (strncasecmp(s, "rc", 2) == 0)
                v->phase = -1, s += 2;
        else if (strncasecmp(s, "post", 4) == 0)
                v->phase = 1, s += 4;
        else if (*s == 'a' || *s == 'A')
                v->phase = -3, s += 1;
        else if (*s == 'b' || *s == 'B')
                v->phase = -2, s += 1;
        else if (*s == 'c' || *s == 'C')
                v->phase = -1, s += 1;
        v->phase_n = strtol(s + strspn(s, ".-_"), NULL, 10);
}

static int version_cmp(const Version *a, const Version *b, unsigned release_only) {
        unsigned n = MAX(a->n, b->n);

        if (release_only)
                n = release_only;
        for (unsigned i = 0; i < n; i++) {
                long x = i < a->n ? a->release[i] : 0, y = i < b->n ? b->release[i] : 0;
                if (x != y)
                        return x < y ? -1 : 1;
        }
        if (release_only)
                return 0;
        if (a->phase != b->phase)
                return a->phase < b->phase ? -1 : 1;
        return a->phase_n < b->phase_n ? -1 : a->phase_n > b->phase_n;
}

int program_version_compare(const char *a, const char *b) {
        Version x, y;

        version_parse(a, &x);
        version_parse(b, &y);
        return version_cmp(&x, &y, 0);
}

static bool spec_satisfied(const char *op, const char *want, const char *have) {
        size_t wl = strlen(want);
        Version w, h;

        if (streq(op, "==="))
                return streq(want, have);
        if ((streq(op, "==") || streq(op, "!=")) && wl >= 2 && streq(want + wl - 2, ".*")) {
                _cleanup_free_ char *prefix = strndup(want, wl - 2);
                bool eq;

                if (!prefix)
                        return false;
                version_parse(prefix, &w);
                version_parse(have, &h);
                eq = version_cmp(&h, &w, w.n) == 0;
                return streq(op, "==") ? eq : !eq;
        }
        version_parse(want, &w);
        version_parse(have, &h);
        if (streq(op, "=="))
                return version_cmp(&h, &w, 0) == 0;
        if (streq(op, "!="))
                return version_cmp(&h, &w, 0) != 0;
        if (streq(op, ">="))
                return version_cmp(&h, &w, 0) >= 0;
        if (streq(op, "<="))
                return version_cmp(&h, &w, 0) <= 0;
        if (streq(op, ">"))
                return version_cmp(&h, &w, 0) > 0;
        if (streq(op, "<"))
                return version_cmp(&h, &w, 0) < 0;
        /* ~=X.Y.Z: >= X.Y.Z and == X.Y.* */
        return version_cmp(&h, &w, 0) >= 0 && w.n >= 2 && version_cmp(&h, &w, w.n - 1) == 0;
}

/* Walks the specifiers of req (after its name and extras); for each calls check unless have is
 * NULL (syntax only). Returns -EINVAL with *ret_error, or 1 if all hold (or have is NULL), 0 if not. */
static int walk_specs(const char *p, const char *have, const char **ret_error) {
        static const char *const ops[] = { "===", "==", "!=", "<=", ">=", "~=", "<", ">" };
        bool paren = false, all = true;

        p += strspn(p, " \t");
        if (*p == '@') {
                *ret_error = "URL requirements are not supported";
                return -EINVAL;
        }
        if (*p == '(') {
                paren = true;
                p++;
        }
        for (;;) {
                const char *op = NULL, *v;
                size_t vl;
                char want[128], opbuf[4];

                p += strspn(p, " \t");
                if (!*p || *p == ';' || (paren && *p == ')'))
                        break;
                for (size_t i = 0; i < ELEMENTSOF(ops); i++)
                        if (strncmp(p, ops[i], strlen(ops[i])) == 0) {
                                op = ops[i];
                                break;
                        }
                if (!op) {
                        *ret_error = "expected a version specifier (==, !=, <=, >=, <, >, ~=, ===)";
                        return -EINVAL;
                }
                p += strlen(op);
                p += strspn(p, " \t");
                v = p;
                vl = strcspn(p, " \t,;)");
                if (vl == 0 || vl >= sizeof(want)) {
                        *ret_error = "expected a version";
                        return -EINVAL;
                }
                for (size_t i = 0; i < vl; i++)
                        if (!isalnum((unsigned char) v[i]) && !strchr(".*+!_-", v[i])) {
                                *ret_error = "invalid character in a version";
                                return -EINVAL;
                        }
                memcpy(want, v, vl);
                want[vl] = 0;
                snprintf(opbuf, sizeof(opbuf), "%s", op);
                if (have && !spec_satisfied(opbuf, want, have))
                        all = false;
                p = v + vl;
                p += strspn(p, " \t");
                if (*p == ',')
                        p++;
                else if (*p && *p != ';' && !(paren && *p == ')')) {
                        *ret_error = "expected ',' between specifiers";
                        return -EINVAL;
                }
        }
        if (paren) {
                if (*p != ')') {
                        *ret_error = "unbalanced parenthesis";
                        return -EINVAL;
                }
                p++;
                p += strspn(p, " \t");
        }
        if (*p && *p != ';') {
                *ret_error = "unexpected text after the specifiers";
                return -EINVAL;
        }
        return all;
}

/* The name's end and the rest after [extras]. */
static int split_name(const char *req, size_t *ret_name_len, const char **ret_rest, const char **ret_error) {
        const char *p = req + strspn(req, " \t"), *start = p;

        while (name_char(*p))
                p++;
        if (p == start || !isalnum((unsigned char) *start)) {
                *ret_error = "expected a package name";
                return -EINVAL;
        }
        *ret_name_len = (size_t) (p - start);
        p += strspn(p, " \t");
        if (*p == '[') {
                const char *close = strchr(p, ']');
                if (!close) {
                        *ret_error = "unbalanced '[' of extras";
                        return -EINVAL;
                }
                p = close + 1;
        }
        *ret_rest = p;
        return (int) (start - req);
}

int program_requirement_parse(const char *req, char **ret_name, const char **ret_error) {
        const char *rest;
        size_t n;
        int k;

        if (strlen(req) > 1024) {
                *ret_error = "too long";
                return -EINVAL;
        }
        k = split_name(req, &n, &rest, ret_error);
        if (k < 0)
                return k;
        k = walk_specs(rest, NULL, ret_error);
        if (k < 0)
                return k;
        *ret_name = normalize_name(req + strspn(req, " \t"), n);
        return *ret_name ? 0 : -ENOMEM;
}

int program_requirement_satisfied(const char *req, const char *version) {
        const char *rest, *error;
        size_t n;
        int k;

        k = split_name(req, &n, &rest, &error);
        if (k < 0)
                return k;
        return walk_specs(rest, version, &error);
}

typedef struct Installed {
        char **names, **versions;
        size_t n, allocated;
} Installed;

static void installed_done(Installed *in) {
        for (size_t i = 0; i < in->n; i++) {
                free(in->names[i]);
                free(in->versions[i]);
        }
        free(in->names);
        free(in->versions);
}

static int scan_site(const char *dir, Installed *in) {
        DIR *d = opendir(dir);
        struct dirent *de;
        unsigned seen = 0;
        int r = 0;

        if (!d)
                return 0;
        while (r >= 0 && (de = readdir(d)) && seen++ < SITE_ENTRIES_MAX) {
                char *name, *version;

                if (!program_dist_parse(de->d_name, &name, &version))
                        continue;
                if (in->n == in->allocated) {
                        size_t a = in->allocated ? 2 * in->allocated : 64;
                        char **nn = realloc(in->names, a * sizeof(char *)), **vv;

                        if (nn)
                                in->names = nn;
                        vv = nn ? realloc(in->versions, a * sizeof(char *)) : NULL;
                        if (!vv) {
                                free(name);
                                free(version);
                                r = -ENOMEM;
                                break;
                        }
                        in->versions = vv;
                        in->allocated = a;
                }
                in->names[in->n] = name;
                in->versions[in->n++] = version;
        }
        closedir(d);
        return r;
}

/* Site directories of the image, resolved inside it only: a symlink that leads out of root (an
 * absolute link in the image) is not followed into the host. */
static int scan_image(const char *root, Installed *in) {
        char real_root[PATH_MAX];
        size_t rl;
        int r = 0;

        if (!realpath(root, real_root))
                return -errno;
        rl = strlen(real_root);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(site_globs); i++) {
                _cleanup_free_ char *pattern = NULL;
                glob_t g = {};

                if (asprintf(&pattern, "%s/%s", real_root, site_globs[i]) < 0)
                        return -ENOMEM;
                if (glob(pattern, GLOB_NOSORT, NULL, &g) != 0)
                        continue;
                for (size_t j = 0; r >= 0 && j < g.gl_pathc && j < 16; j++) {
                        char real[PATH_MAX];

                        if (!realpath(g.gl_pathv[j], real) || strncmp(real, real_root, rl) != 0 || real[rl] != '/')
                                continue;
                        r = scan_site(real, in);
                }
                globfree(&g);
        }
        return r;
}

static int append(char **buf, size_t *len, const char *format, ...) _printf_(3, 4);
static int append(char **buf, size_t *len, const char *format, ...) {
        va_list ap;
        char *piece, *b;
        int n;

        va_start(ap, format);
        n = vasprintf(&piece, format, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        b = realloc(*buf, *len + (size_t) n + 1);
        if (!b) {
                free(piece);
                return -ENOMEM;
        }
        memcpy(b + *len, piece, (size_t) n + 1);
        *buf = b;
        *len += (size_t) n;
        free(piece);
        return 0;
}

int program_deps_check(const char *root, char * const *requirements, char **ret_message) {
        _cleanup_free_ char *msg = NULL;
        Installed in = {};
        size_t len = 0, missing = 0;
        int r;

        *ret_message = NULL;
        for (char * const *q = requirements; q && *q; q++) {
                _cleanup_free_ char *name = NULL;
                const char *error = NULL;

                r = program_requirement_parse(*q, &name, &error);
                if (r < 0) {
                        if (r == -EINVAL && asprintf(ret_message, "Dependency '%s' cannot be read: %s.", *q, error) < 0)
                                *ret_message = NULL;
                        return r;
                }
        }
        r = scan_image(root, &in);
        for (char * const *q = requirements; r >= 0 && q && *q; q++) {
                _cleanup_free_ char *name = NULL;
                const char *error = NULL, *found = NULL;
                bool ok = false;

                if (program_requirement_parse(*q, &name, &error) < 0)
                        continue;
                for (size_t i = 0; i < in.n && !ok; i++)
                        if (streq(in.names[i], name)) {
                                found = in.versions[i];
                                ok = program_requirement_satisfied(*q, in.versions[i]) > 0;
                        }
                if (ok)
                        continue;
                if (found)
                        r = append(&msg, &len, "%s'%s' (installed: %s %s)", missing ? ", " : "", *q, name, found);
                else
                        r = append(&msg, &len, "%s'%s' (not installed)", missing ? ", " : "", *q);
                missing++;
        }
        installed_done(&in);
        if (r < 0)
                return r;
        if (missing == 0)
                return 0;
        if (asprintf(ret_message, "The program image does not satisfy %s %s; programs get no network installs: "
                     "use an image that has %s.", missing == 1 ? "the dependency" : "the dependencies", msg,
                     missing == 1 ? "it" : "them") < 0)
                return -ENOMEM;
        return -ENOENT;
}
