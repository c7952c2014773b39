/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdbool.h>

#include "http-router.h"
#include "macro.h"

void http_route_captures_free(char *captures[HTTP_ROUTE_MAX_CAPTURES]) {
        for (size_t i = 0; i < HTTP_ROUTE_MAX_CAPTURES; i++)
                captures[i] = mfree(captures[i]);
}

/* Walks pattern and path segment by segment. Captures are recorded only when wanted. */
static bool path_matches(const char *pattern, const char *path, char *captures[HTTP_ROUTE_MAX_CAPTURES]) {
        const char *p = pattern, *q = path;
        size_t n_captures = 0;

        while (*p == '/' && *q == '/') {
                size_t plen, qlen;

                p++, q++;
                plen = strcspn(p, "/");
                qlen = strcspn(q, "/");

                if (qlen == 0)
                        return false; /* empty segment: "//" or a trailing slash where a segment is due */
                if (plen == 2 && p[0] == '*' && p[1] == '*' && p[2] == 0) {
                        /* "**" ends a pattern and takes the rest of the path: image references
                         * contain slashes. */
                        size_t rest = strlen(q);
                        if (rest > 0 && q[rest - 1] == '/')
                                rest--;
                        if (captures) {
                                if (n_captures >= HTTP_ROUTE_MAX_CAPTURES)
                                        return false;
                                captures[n_captures] = strndup(q, rest);
                                if (!captures[n_captures])
                                        return false;
                        }
                        return rest > 0 && !strstr(q, "//");
                }
                if (plen == 1 && *p == '*') {
                        if (captures) {
                                if (n_captures >= HTTP_ROUTE_MAX_CAPTURES)
                                        return false;
                                captures[n_captures] = strndup(q, qlen);
                                if (!captures[n_captures++])
                                        return false;
                        }
                } else if (plen != qlen || memcmp(p, q, plen) != 0)
                        return false;
                p += plen;
                q += qlen;
        }

        /* Tolerate one trailing slash on the request path. */
        if (*q == '/' && q[1] == 0)
                q++;
        return *p == 0 && *q == 0;
}

bool http_path_matches(const char *pattern, const char *path) {
        return path_matches(pattern, path, NULL);
}

/* Whether method is one of the comma-separated methods in allow already. */
static bool allow_has(const char *allow, const char *method) {
        size_t n = strlen(method);

        for (const char *p = allow; (p = strstr(p, method)); p += n)
                if ((p == allow || p[-1] == ' ') && (p[n] == ',' || p[n] == 0))
                        return true;
        return false;
}

HttpRouteResult http_route_match(const HttpRoute *table, size_t n, const char *method, const char *path,
                                 const HttpRoute **ret_route, char *captures[HTTP_ROUTE_MAX_CAPTURES],
                                 char *allow, size_t allow_size) {
        bool path_known = false;

        if (allow_size > 0)
                allow[0] = 0;

        for (size_t i = 0; i < n; i++) {
                if (!path_matches(table[i].pattern, path, NULL))
                        continue;

                if (streq(table[i].method, method) ||
                    (streq(method, "HEAD") && streq(table[i].method, "GET"))) {
                        if (!path_matches(table[i].pattern, path, captures)) {
                                http_route_captures_free(captures);
                                return HTTP_ROUTE_NOT_FOUND;
                        }
                        *ret_route = &table[i];
                        return HTTP_ROUTE_FOUND;
                }

                path_known = true;
                /* A path can match several routes with the same method (an image id route and the
                 * rest-of-path route): list each method once. */
                if (allow_size > 0 && !allow_has(allow, table[i].method)) {
                        size_t l = strlen(allow);
                        snprintf(allow + l, allow_size - l, "%s%s", l > 0 ? ", " : "", table[i].method);
                }
        }

        return path_known ? HTTP_ROUTE_METHOD_NOT_ALLOWED : HTTP_ROUTE_NOT_FOUND;
}
