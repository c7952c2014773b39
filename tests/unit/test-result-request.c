/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The in-job save_result request (src/worker/result-request.c): head, path, token, body. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "result-request.h"
#include "test-main.h"

static const char HEAD[] =
        "POST /api/v1/jobs/j-1/result/ HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        "authorization:  Bearer abc \r\n"
        "Content-Type: Application/X-WWW-Form-Urlencoded; charset=utf-8\r\n"
        "Content-Length: 12\r\n"
        "\r\n";

static int parse(const char *s, ResultRequest *r) {
        return result_request_parse_head(s, strlen(s), r);
}

START_TEST(test_head) {
        ResultRequest r = {};

        ck_assert_int_eq(result_request_parse_head(HEAD, strlen(HEAD) - 2, &r), -EAGAIN);
        ck_assert_int_eq(result_request_parse_head(HEAD, strlen(HEAD), &r), 0);
        ck_assert_str_eq(r.method, "POST");
        ck_assert_str_eq(r.path, "/api/v1/jobs/j-1/result/");
        ck_assert_str_eq(r.authorization, "Bearer abc");
        ck_assert_str_eq(r.content_type, "application/x-www-form-urlencoded");
        ck_assert(r.has_content_length);
        ck_assert_uint_eq(r.content_length, 12);
        ck_assert_uint_eq(r.head_len, strlen(HEAD));
        ck_assert(!r.chunked);
        result_request_done(&r);

        ck_assert_int_eq(parse("GET / HTTP/2.0\r\n\r\n", &r), -EBADMSG);
        ck_assert_int_eq(parse("GET /\r\n\r\n", &r), -EBADMSG);
        ck_assert_int_eq(parse("GET / HTTP/1.1\r\nnocolon\r\n\r\n", &r), -EBADMSG);
        ck_assert_int_eq(parse("POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", &r), -EBADMSG);
        ck_assert_int_eq(parse("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", &r), -EBADMSG);
        ck_assert_int_eq(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &r), 0);
        ck_assert(r.chunked);
        result_request_done(&r);

        char *big = malloc(RESULT_REQUEST_HEAD_MAX + 10);
        memset(big, 'a', RESULT_REQUEST_HEAD_MAX + 10);
        ck_assert_int_eq(result_request_parse_head(big, RESULT_REQUEST_HEAD_MAX + 10, &r), -E2BIG);
        free(big);
}
END_TEST

START_TEST(test_path_and_token) {
        ck_assert(result_request_path_matches("/api/v1/jobs/j-1/result/", "j-1"));
        ck_assert(result_request_path_matches("/api/v1/jobs/j-1/result", "j-1"));
        ck_assert(!result_request_path_matches("/api/v1/jobs/j-12/result/", "j-1"));
        ck_assert(!result_request_path_matches("/api/v1/jobs/j-1/logs/", "j-1"));
        ck_assert(!result_request_path_matches("/api/v1/jobs//result/", ""));
        ck_assert(result_request_token_matches("Bearer abc", "abc"));
        ck_assert(result_request_token_matches("bearer abc", "abc"));
        ck_assert(!result_request_token_matches("Bearer abd", "abc"));
        ck_assert(!result_request_token_matches("Bearer abcd", "abc"));
        ck_assert(!result_request_token_matches("Basic abc", "abc"));
        ck_assert(!result_request_token_matches("Bearer ", ""));
        ck_assert(!result_request_token_matches(NULL, "abc"));
}
END_TEST

static int decode(const char *type, const char *body, size_t max, char **json) {
        const char *error = NULL;
        /* not NUL-terminated, as in the endpoint's buffer */
        size_t n = strlen(body);
        char *copy = malloc(n + 8);
        int k;

        memcpy(copy, body, n);
        memcpy(copy + n, "garbage", 8);
        *json = NULL;
        k = result_request_decode_body(type, copy, n, max, json, &error);
        free(copy);
        ck_assert(k >= 0 || error);
        return k;
}

START_TEST(test_body) {
        char *j;

        /* the client's form: result=json.dumps(result) */
        ck_assert_int_eq(decode("application/x-www-form-urlencoded", "a=1&result=%7B%22k%22%3A+1%7D&b=2", 100, &j), 0);
        ck_assert_str_eq(j, "{\"k\": 1}");
        free(j);
        ck_assert_int_eq(decode("application/json", "{\"result\": \"[1, 2]\"}", 100, &j), 0);
        ck_assert_str_eq(j, "[1, 2]");
        free(j);
        ck_assert_int_eq(decode("application/json", "{\"result\": {\"a\": [1, 2]}}", 100, &j), 0);
        ck_assert_str_eq(j, "{\"a\":[1,2]}");
        free(j);
        ck_assert_int_eq(decode("application/json", "{\"other\": 1}", 100, &j), -EINVAL);
        ck_assert_int_eq(decode("application/json", "[1]", 100, &j), -EINVAL);
        ck_assert_int_eq(decode("application/x-www-form-urlencoded", "result=%7Bnope", 100, &j), -EINVAL);
        ck_assert_int_eq(decode("application/x-www-form-urlencoded", "result=%7", 100, &j), -EINVAL);
        ck_assert_int_eq(decode("application/x-www-form-urlencoded", "result=1%002", 100, &j), -EINVAL);
        ck_assert_int_eq(decode("application/x-www-form-urlencoded", "result=%27a%27", 100, &j), -EINVAL);
        ck_assert_int_eq(decode("application/x-www-form-urlencoded", "result=12345", 4, &j), -E2BIG);
        ck_assert_int_eq(decode("text/plain", "result=1", 100, &j), -EMEDIUMTYPE);
        ck_assert_int_eq(decode(NULL, "result=1", 100, &j), -EMEDIUMTYPE);
}
END_TEST

int main(void) {
        Suite *s = suite_create("result-request");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_head);
        tcase_add_test(tc, test_path_and_token);
        tcase_add_test(tc, test_body);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
