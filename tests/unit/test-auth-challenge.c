/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>

#include "auth-challenge.h"
#include "macro.h"
#include "test-main.h"

START_TEST(test_bearer) {
        _cleanup_(auth_challenge_freep) AuthChallenge *c = NULL;

        ck_assert_int_eq(auth_challenge_parse("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/alpine:pull\"", &c), 0);
        ck_assert_str_eq(c->scheme, "bearer");
        ck_assert_str_eq(c->realm, "https://auth.docker.io/token");
        ck_assert_str_eq(c->service, "registry.docker.io");
        ck_assert_str_eq(c->scope, "repository:library/alpine:pull");
        ck_assert_ptr_null(c->error);
}
END_TEST

START_TEST(test_spacing_escapes_and_tokens) {
        _cleanup_(auth_challenge_freep) AuthChallenge *c = NULL;

        ck_assert_int_eq(auth_challenge_parse("  BEARER   realm = \"http://h/t\\\"x\" , service=plain-token ,error=\"insufficient_scope\"", &c), 0);
        ck_assert_str_eq(c->scheme, "bearer");
        ck_assert_str_eq(c->realm, "http://h/t\"x");
        ck_assert_str_eq(c->service, "plain-token");
        ck_assert_ptr_null(c->scope);
        ck_assert_str_eq(c->error, "insufficient_scope");
}
END_TEST

START_TEST(test_basic) {
        _cleanup_(auth_challenge_freep) AuthChallenge *c = NULL;

        ck_assert_int_eq(auth_challenge_parse("Basic realm=\"Registry Realm\"", &c), 0);
        ck_assert_str_eq(c->scheme, "basic");
        ck_assert_str_eq(c->realm, "Registry Realm");
}
END_TEST

START_TEST(test_first_of_several) {
        _cleanup_(auth_challenge_freep) AuthChallenge *c = NULL;

        ck_assert_int_eq(auth_challenge_parse("Basic realm=\"a\", Bearer realm=\"b\"", &c), 0);
        ck_assert_str_eq(c->scheme, "basic");
        ck_assert_str_eq(c->realm, "a");
}
END_TEST

START_TEST(test_invalid) {
        static const char * const bad[] = {
                "", "   ", "Bearer realm=\"unterminated", "Bearer service=\"x\"" /* no realm */,
                "Bearer realm=", "Bearer realm=\"a\" junk", "Bearer =x",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                AuthChallenge *c = NULL;
                ck_assert_msg(auth_challenge_parse(bad[i], &c) < 0, "accepted '%s'", bad[i]);
                ck_assert_ptr_null(c);
        }
        ck_assert_int_eq(auth_challenge_parse(NULL, &(AuthChallenge *){ NULL }), -EINVAL);
}
END_TEST

int main(void) {
        Suite *s = suite_create("auth-challenge");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_bearer);
        tcase_add_test(tc, test_spacing_escapes_and_tokens);
        tcase_add_test(tc, test_basic);
        tcase_add_test(tc, test_first_of_several);
        tcase_add_test(tc, test_invalid);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
