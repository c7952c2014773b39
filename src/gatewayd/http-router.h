/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct HttpRequest HttpRequest;

#define HTTP_ROUTE_MAX_CAPTURES 4

/* Handlers get the path segments that matched "*" in the route's pattern. */
typedef void (*HttpHandler)(HttpRequest *req, char **captures);

typedef struct HttpRoute {
        const char *method;   /* "GET", "POST", ... */
        /* "/v1/services/{}"-like: a "*" segment matches one non-empty segment; a final "**"
         * matches the rest of the path (one or more segments). The first matching route wins. */
        const char *pattern;
        HttpHandler handler;
        /* What a TCP/TLS caller's credential must allow (AuthScope bits, auth-source.h); 0:
         * "read" for GET, every scope otherwise. HTTP_ROUTE_LOCAL_ONLY: never over the network. */
        unsigned scope;
} HttpRoute;

#define HTTP_ROUTE_LOCAL_ONLY (1U << 31)
/* The body is not kept in memory but streamed to a file (HttpRequest.body_path), up to
 * ProgramArtifactMax instead of MaxRequestBody: program uploads. */
#define HTTP_ROUTE_BODY_FILE (1U << 30)
/* With HTTP_ROUTE_BODY_FILE: the body is multipart/form-data, parsed as it arrives (form-upload.h):
 * only its file part goes to the file, its fields to HttpRequest.form. */
#define HTTP_ROUTE_BODY_FORM (1U << 29)
/* The handler checks a job's token itself (job-token.h): on TCP/TLS no identity source is asked,
 * and the bearer credential is never an identity. */
#define HTTP_ROUTE_JOB_TOKEN (1U << 28)

/* Whether path matches one pattern (as in the table). */
bool http_path_matches(const char *pattern, const char *path);

typedef enum HttpRouteResult {
        HTTP_ROUTE_FOUND,
        HTTP_ROUTE_NOT_FOUND,           /* no pattern matches the path */
        HTTP_ROUTE_METHOD_NOT_ALLOWED,  /* the path exists, but not with this method */
} HttpRouteResult;

/* Matches path against the table. On FOUND sets *ret_route and fills captures (strings owned by
 * the caller, freed with http_route_captures_free()). On METHOD_NOT_ALLOWED writes the methods the
 * path does allow ("GET, PUT") into allow. A trailing '/' is ignored; "//" never matches. */
HttpRouteResult http_route_match(const HttpRoute *table, size_t n, const char *method, const char *path,
                                 const HttpRoute **ret_route, char *captures[HTTP_ROUTE_MAX_CAPTURES],
                                 char *allow, size_t allow_size);

void http_route_captures_free(char *captures[HTTP_ROUTE_MAX_CAPTURES]);
