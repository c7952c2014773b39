/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "http-router.h"
#include "macro.h"

/* The handlers are only compared by address. */
static void h_status(HttpRequest *req, char **c) {}
static void h_list(HttpRequest *req, char **c) {}
static void h_create(HttpRequest *req, char **c) {}
static void h_get(HttpRequest *req, char **c) {}
static void h_put(HttpRequest *req, char **c) {}
static void h_delete(HttpRequest *req, char **c) {}
static void h_job(HttpRequest *req, char **c) {}
static void h_many(HttpRequest *req, char **c) {}

static const HttpRoute routes[] = {
        { "GET",    "/v1/status",                  h_status },
        { "GET",    "/v1/services",                h_list },
        { "POST",   "/v1/services",                h_create },
        { "GET",    "/v1/services/*",              h_get },
        { "PUT",    "/v1/services/*",              h_put },
        { "DELETE", "/v1/services/*",              h_delete },
        { "GET",    "/planqk/*/*/result",          h_job },
        { "GET",    "/x/*/*/*/*/*",                h_many },
        { "GET",    "/img/*/progress",             h_get },
        { "GET",    "/img/**",                     h_get },
        { "DELETE", "/img/**",                     h_delete },
};

typedef struct Match {
        HttpRouteResult result;
        const HttpRoute *route;
        char *captures[HTTP_ROUTE_MAX_CAPTURES];
        char allow[128];
} Match;

static void match(const char *method, const char *path, Match *m) {
        memset(m, 0, sizeof(*m));
        memset(m->allow, 'X', sizeof(m->allow) - 1); /* must be overwritten */
        m->result = http_route_match(routes, ELEMENTSOF(routes), method, path, &m->route, m->captures,
                                     m->allow, sizeof(m->allow));
}

static void match_done(Match *m) {
        http_route_captures_free(m->captures);
        for (size_t i = 0; i < HTTP_ROUTE_MAX_CAPTURES; i++)
                ck_assert_ptr_null(m->captures[i]);
}

static void assert_found(const char *method, const char *path, HttpHandler h, const char *c0, const char *c1) {
        Match m;

        match(method, path, &m);
        ck_assert_msg(m.result == HTTP_ROUTE_FOUND, "%s %s: result %i", method, path, m.result);
        ck_assert_ptr_eq(m.route->handler, h);
        if (c0)
                ck_assert_str_eq(m.captures[0], c0);
        else
                ck_assert_ptr_null(m.captures[0]);
        if (c1)
                ck_assert_str_eq(m.captures[1], c1);
        else
                ck_assert_ptr_null(m.captures[1]);
        match_done(&m);
}

static void assert_not_found(const char *method, const char *path) {
        Match m;

        match(method, path, &m);
        ck_assert_msg(m.result == HTTP_ROUTE_NOT_FOUND, "%s %s: result %i, expected NOT_FOUND", method, path, m.result);
        for (size_t i = 0; i < HTTP_ROUTE_MAX_CAPTURES; i++)
                ck_assert_ptr_null(m.captures[i]);
        ck_assert_str_eq(m.allow, "");
}

static void assert_not_allowed(const char *method, const char *path, const char *allow) {
        Match m;

        match(method, path, &m);
        ck_assert_msg(m.result == HTTP_ROUTE_METHOD_NOT_ALLOWED, "%s %s: result %i, expected 405", method, path, m.result);
        ck_assert_str_eq(m.allow, allow);
        for (size_t i = 0; i < HTTP_ROUTE_MAX_CAPTURES; i++)
                ck_assert_ptr_null(m.captures[i]);
}

START_TEST(test_found) {
        assert_found("GET", "/v1/status", h_status, NULL, NULL);
        assert_found("GET", "/v1/services", h_list, NULL, NULL);
        assert_found("POST", "/v1/services", h_create, NULL, NULL);
        assert_found("GET", "/v1/services/hello", h_get, "hello", NULL);
        assert_found("PUT", "/v1/services/hello", h_put, "hello", NULL);
        assert_found("DELETE", "/v1/services/a-b-c", h_delete, "a-b-c", NULL);
        assert_found("GET", "/planqk/svc/1234/result", h_job, "svc", "1234");
}
END_TEST

START_TEST(test_captures_are_copies_of_segments) {
        Match m;

        /* A capture is exactly one segment, whatever characters it holds (decoding is not the
         * router's job), and a copy, not a pointer into the path. */
        char path[] = "/v1/services/%41b.c~d";
        match("GET", path, &m);
        ck_assert_int_eq(m.result, HTTP_ROUTE_FOUND);
        ck_assert_str_eq(m.captures[0], "%41b.c~d");
        ck_assert_ptr_ne(m.captures[0], path + strlen("/v1/services/"));
        match_done(&m);
}
END_TEST

START_TEST(test_too_many_captures) {
        /* The route has 5 wildcards, one more than can be captured: it must not match (and must
         * not write past the captures array, which ASan would catch). */
        assert_not_found("GET", "/x/a/b/c/d/e");
}
END_TEST

START_TEST(test_not_found) {
        assert_not_found("GET", "/");
        assert_not_found("GET", "");
        assert_not_found("GET", "/v1");
        assert_not_found("GET", "/v1/");
        assert_not_found("GET", "/v2/services");
        assert_not_found("GET", "/v1/servicesx");
        assert_not_found("GET", "/v1/service");
        assert_not_found("GET", "/v1/services/a/b");
        assert_not_found("GET", "/v1/services/a/b/");
        assert_not_found("GET", "/planqk/svc/1234");
        assert_not_found("GET", "/planqk/svc/1234/results");
        assert_not_found("GET", "v1/services");       /* no leading slash */
        assert_not_found("POST", "/nonexistent");
        assert_not_found("GET", "/V1/STATUS");        /* case matters */
}
END_TEST

START_TEST(test_method_not_allowed) {
        assert_not_allowed("DELETE", "/v1/services", "GET, POST");
        assert_not_allowed("PATCH", "/v1/services/foo", "GET, PUT, DELETE");
        assert_not_allowed("POST", "/v1/status", "GET");
        assert_not_allowed("POST", "/v1/status/", "GET");
        assert_not_allowed("put", "/v1/services/foo", "GET, PUT, DELETE"); /* methods are case-sensitive */
        /* Two routes with GET match: GET is listed once. */
        assert_not_allowed("PATCH", "/img/a/progress", "GET, DELETE");
        assert_not_allowed("POST", "/img/a/b", "GET, DELETE");
}
END_TEST

START_TEST(test_allow_truncated_safely) {
        HttpRoute many[20];
        const HttpRoute *route = NULL;
        char *captures[HTTP_ROUTE_MAX_CAPTURES] = {};
        char allow[16];

        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = (HttpRoute) { "PROPFIND", "/a", h_status };
        ck_assert_int_eq(http_route_match(many, ELEMENTSOF(many), "GET", "/a", &route, captures, allow, sizeof(allow)),
                         HTTP_ROUTE_METHOD_NOT_ALLOWED);
        ck_assert_uint_lt(strlen(allow), sizeof(allow));
        ck_assert(strneq(allow, "PROPFIND", 8));

        /* And no Allow buffer at all is fine. */
        ck_assert_int_eq(http_route_match(many, ELEMENTSOF(many), "GET", "/a", &route, captures, NULL, 0),
                         HTTP_ROUTE_METHOD_NOT_ALLOWED);
}
END_TEST

START_TEST(test_trailing_slash) {
        assert_found("GET", "/v1/status/", h_status, NULL, NULL);
        assert_found("GET", "/v1/services/", h_list, NULL, NULL);
        assert_found("GET", "/v1/services/foo/", h_get, "foo", NULL);
        assert_found("GET", "/planqk/s/1/result/", h_job, "s", "1");
        /* Only one. */
        assert_not_found("GET", "/v1/status//");
        assert_not_found("GET", "/v1/services/foo//");
}
END_TEST

START_TEST(test_double_slash) {
        assert_not_found("GET", "//v1/status");
        assert_not_found("GET", "/v1//status");
        assert_not_found("GET", "/v1//services");
        assert_not_found("GET", "/v1/services//foo");
        assert_not_found("PUT", "/v1/services//foo");
        assert_not_found("GET", "/planqk//1/result");
        assert_not_found("GET", "/planqk/s//result");
        assert_not_found("GET", "//");
}
END_TEST

START_TEST(test_head_is_get) {
        assert_found("HEAD", "/v1/status", h_status, NULL, NULL);
        assert_found("HEAD", "/v1/services/foo", h_get, "foo", NULL);
        assert_found("HEAD", "/v1/services/", h_list, NULL, NULL);
        assert_not_found("HEAD", "/nope");

        /* HEAD on a path that has no GET is not allowed. */
        static const HttpRoute post_only[] = { { "POST", "/submit", h_create } };
        const HttpRoute *route;
        char *captures[HTTP_ROUTE_MAX_CAPTURES] = {};
        char allow[64];
        ck_assert_int_eq(http_route_match(post_only, 1, "HEAD", "/submit", &route, captures, allow, sizeof(allow)),
                         HTTP_ROUTE_METHOD_NOT_ALLOWED);
        ck_assert_str_eq(allow, "POST");
}
END_TEST

/* A final "**" takes the rest of the path (image references contain slashes). */
static const HttpRoute rest_routes[] = {
        { "GET",    "/v1/images",           h_list },
        { "GET",    "/v1/images/**",        h_get },
        { "DELETE", "/v1/images/**",        h_delete },
        { "GET",    "/p/*/x/**",            h_job },
};

static HttpRouteResult match_rest(const char *method, const char *path, char *captures[HTTP_ROUTE_MAX_CAPTURES],
                                  const HttpRoute **route, char *allow, size_t allow_size) {
        return http_route_match(rest_routes, ELEMENTSOF(rest_routes), method, path, route, captures, allow, allow_size);
}

static void assert_rest(const char *method, const char *path, HttpHandler h, const char *c0, const char *c1) {
        char *captures[HTTP_ROUTE_MAX_CAPTURES] = {};
        const HttpRoute *route = NULL;
        char allow[64];

        ck_assert_msg(match_rest(method, path, captures, &route, allow, sizeof(allow)) == HTTP_ROUTE_FOUND, "%s", path);
        ck_assert_ptr_eq(route->handler, h);
        if (c0)
                ck_assert_str_eq(captures[0], c0);
        else
                ck_assert_ptr_null(captures[0]);
        if (c1)
                ck_assert_str_eq(captures[1], c1);
        else
                ck_assert_ptr_null(captures[1]);
        http_route_captures_free(captures);
}

static void assert_rest_not_found(const char *path) {
        char *captures[HTTP_ROUTE_MAX_CAPTURES] = {};
        const HttpRoute *route = NULL;
        char allow[64];

        ck_assert_msg(match_rest("GET", path, captures, &route, allow, sizeof(allow)) == HTTP_ROUTE_NOT_FOUND, "%s", path);
        for (size_t i = 0; i < HTTP_ROUTE_MAX_CAPTURES; i++)
                ck_assert_ptr_null(captures[i]);
}

START_TEST(test_rest_of_path) {
        char *captures[HTTP_ROUTE_MAX_CAPTURES] = {};
        const HttpRoute *route = NULL;
        char allow[64];

        assert_rest("GET", "/v1/images/busybox", h_get, "busybox", NULL);
        assert_rest("GET", "/v1/images/docker.io/library/busybox:latest", h_get, "docker.io/library/busybox:latest", NULL);
        assert_rest("DELETE", "/v1/images/a/b@sha256:00", h_delete, "a/b@sha256:00", NULL);
        assert_rest("HEAD", "/v1/images/a/b", h_get, "a/b", NULL);
        assert_rest("GET", "/v1/images/a/b/", h_get, "a/b", NULL);        /* one trailing slash ignored */
        assert_rest("GET", "/p/svc/x/1/2/3", h_job, "svc", "1/2/3");
        assert_rest("GET", "/v1/images/", h_list, NULL, NULL);            /* the list, not an empty reference */

        assert_rest_not_found("/v1/images/a//b");
        assert_rest_not_found("/v1/images//a");
        assert_rest_not_found("/v1/images/a/b//");
        assert_rest_not_found("/p/svc/x/");
        assert_rest_not_found("/p/svc/x");
        assert_rest_not_found("/p//x/1");

        ck_assert_int_eq(match_rest("PUT", "/v1/images/a/b", captures, &route, allow, sizeof(allow)),
                         HTTP_ROUTE_METHOD_NOT_ALLOWED);
        ck_assert_str_eq(allow, "GET, DELETE");
}
END_TEST

static Suite *router_suite(void) {
        Suite *s = suite_create("http-router");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_found);
        tcase_add_test(tc, test_captures_are_copies_of_segments);
        tcase_add_test(tc, test_too_many_captures);
        tcase_add_test(tc, test_not_found);
        tcase_add_test(tc, test_method_not_allowed);
        tcase_add_test(tc, test_allow_truncated_safely);
        tcase_add_test(tc, test_trailing_slash);
        tcase_add_test(tc, test_double_slash);
        tcase_add_test(tc, test_head_is_get);
        tcase_add_test(tc, test_rest_of_path);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(router_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
