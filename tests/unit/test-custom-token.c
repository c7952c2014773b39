/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The token service's answers (auth-custom-token.c), as the Qiskit serverless gateway's
 * custom_token backend reads them: which are a verdict on the token (401) and which say the
 * service failed (503). */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth-custom-token.h"
#include "macro.h"

static int login(long status, const char *body, char **user, char **id) {
        _cleanup_free_ char *msg = NULL;
        int r;

        *user = *id = NULL;
        r = custom_token_parse_login(status, body, body ? strlen(body) : 0, "userId", user, id, &msg);
        ck_assert(r == 0 ? !msg : msg != NULL);
        return r;
}

START_TEST(test_login) {
        _cleanup_free_ char *user = NULL, *id = NULL;

        ck_assert_int_eq(login(200, "{\"userId\": \"alice\", \"id\": \"abc\", \"ttl\": 3}", &user, &id), 0);
        ck_assert_str_eq(user, "alice");
        ck_assert_str_eq(id, "abc");
        user = mfree(user);
        id = mfree(id);
        ck_assert_int_eq(login(201, "{\"userId\": 42, \"id\": 7}", &user, &id), 0);
        ck_assert_str_eq(user, "42");
        ck_assert_str_eq(id, "7");
        user = mfree(user);
        id = mfree(id);

        /* verdicts on the token */
        ck_assert_int_eq(login(401, "{\"detail\": \"bad\"}", &user, &id), -EACCES);
        ck_assert_int_eq(login(403, NULL, &user, &id), -EACCES);
        ck_assert_int_eq(login(404, "", &user, &id), -EACCES);
        /* the service failed */
        ck_assert_int_eq(login(500, "{}", &user, &id), -EIO);
        ck_assert_int_eq(login(429, "{}", &user, &id), -EIO);
        ck_assert_int_eq(login(408, "{}", &user, &id), -EIO);
        ck_assert_int_eq(login(302, "{}", &user, &id), -EIO);
        ck_assert_int_eq(login(200, "not json", &user, &id), -EBADMSG);
        ck_assert_int_eq(login(200, "[1]", &user, &id), -EBADMSG);
        ck_assert_int_eq(login(200, NULL, &user, &id), -EBADMSG);
        ck_assert_int_eq(login(200, "{\"id\": \"abc\"}", &user, &id), -EBADMSG);
        ck_assert_int_eq(login(200, "{\"userId\": \"alice\"}", &user, &id), -EBADMSG);
        ck_assert_int_eq(login(200, "{\"userId\": \"\", \"id\": \"x\"}", &user, &id), -EBADMSG);
        ck_assert_int_eq(login(200, "{\"userId\": true, \"id\": \"x\"}", &user, &id), -EBADMSG);
        /* what lands in a header or a log line is checked */
        ck_assert_int_eq(login(200, "{\"userId\": \"a\", \"id\": \"x\\r\\nX-Evil: 1\"}", &user, &id), -EBADMSG);
        ck_assert_int_eq(login(200, "{\"userId\": \"a\\nb\", \"id\": \"x\"}", &user, &id), -EBADMSG);
        ck_assert_int_eq(login(200, "{\"userId\": \"a\", \"id\": \"\\u00e9\"}", &user, &id), -EBADMSG);
        ck_assert_int_eq(login(200, "{\"userId\": \"a\\u0000b\", \"id\": \"x\"}", &user, &id), -EBADMSG);
        ck_assert_ptr_null(user);
        ck_assert_ptr_null(id);
}
END_TEST

static int verify(long status, const char *body, const char *spec, char **msg) {
        _cleanup_strv_free_ char **fields = NULL;

        *msg = mfree(*msg);
        ck_assert_int_eq(custom_token_split_fields(spec, &fields), 0);
        return custom_token_parse_verification(status, body, body ? strlen(body) : 0, fields, msg);
}

START_TEST(test_verification) {
        _cleanup_free_ char *msg = NULL;
        const char *spec = "is_valid;some,nested,field";

        ck_assert_int_eq(verify(200, "{\"is_valid\": true, \"some\": {\"nested\": {\"field\": \"x\"}}}", spec, &msg), 0);
        ck_assert_int_eq(verify(200, "{\"is_valid\": 1, \"some\": {\"nested\": {\"field\": [0]}}}", spec, &msg), 0);
        /* falsy or missing, Python's way */
        for (const char *const *b = (const char *const[]) {
                     "{\"is_valid\": false, \"some\": {\"nested\": {\"field\": 1}}}",
                     "{\"is_valid\": true, \"some\": {\"nested\": {\"field\": 0}}}",
                     "{\"is_valid\": true, \"some\": {\"nested\": {\"field\": \"\"}}}",
                     "{\"is_valid\": true, \"some\": {\"nested\": {\"field\": []}}}",
                     "{\"is_valid\": true, \"some\": {\"nested\": {\"field\": {}}}}",
                     "{\"is_valid\": true, \"some\": {\"nested\": {\"field\": null}}}",
                     "{\"is_valid\": true, \"some\": {\"nested\": 5}}",
                     "{\"is_valid\": true}",
                     "{\"is_valid\": 0.0, \"some\": {\"nested\": {\"field\": 1}}}",
                     NULL }; *b; b++) {
                ck_assert_msg(verify(200, *b, spec, &msg) == -EACCES, "verified: %s", *b);
                ck_assert_ptr_nonnull(msg);
        }
        ck_assert_ptr_nonnull(strstr(msg, "is_valid"));
        ck_assert_int_eq(verify(401, "{}", spec, &msg), -EACCES);
        ck_assert_int_eq(verify(503, "{}", spec, &msg), -EIO);
        ck_assert_int_eq(verify(200, "nope", spec, &msg), -EBADMSG);
        /* no fields: a 2xx answer verifies, whatever it says */
        ck_assert_int_eq(verify(200, "nope", "", &msg), 0);
        ck_assert_int_eq(verify(204, NULL, NULL, &msg), 0);
}
END_TEST

START_TEST(test_split_fields) {
        _cleanup_strv_free_ char **l = NULL;

        ck_assert_int_eq(custom_token_split_fields("a;b,c;d", &l), 0);
        ck_assert_str_eq(l[0], "a");
        ck_assert_str_eq(l[1], "b,c");
        ck_assert_str_eq(l[2], "d");
        ck_assert_ptr_null(l[3]);
        strv_free(l);
        ck_assert_int_eq(custom_token_split_fields(NULL, &l), 0);
        ck_assert_ptr_null(l[0]);
}
END_TEST

int main(void) {
        Suite *s = suite_create("custom-token");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_login);
        tcase_add_test(tc, test_verification);
        tcase_add_test(tc, test_split_fields);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
