/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* POST /token's input: form bodies and HTTP Basic credentials (src/gatewayd/http-form.c). */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http-form.h"
#include "macro.h"
#include "test-main.h"

static int get(const char *body, const char *key, char **ret) {
        return form_get(body, strlen(body), key, ret);
}

START_TEST(test_form_get) {
        _cleanup_free_ char *v = NULL;

        ck_assert_int_eq(get("grant_type=client_credentials", "grant_type", &v), 0);
        ck_assert_str_eq(v, "client_credentials");
        v = mfree(v);
        ck_assert_int_eq(get("a=1&scope=read+submit&b=%41%2b%2F", "scope", &v), 0);
        ck_assert_str_eq(v, "read submit");
        v = mfree(v);
        ck_assert_int_eq(get("a=1&scope=read+submit&b=%41%2b%2F", "b", &v), 0);
        ck_assert_str_eq(v, "A+/");
        v = mfree(v);
        /* names are decoded too; empty pairs and values are fine */
        ck_assert_int_eq(get("&&client%5Fid=x&", "client_id", &v), 0);
        ck_assert_str_eq(v, "x");
        v = mfree(v);
        ck_assert_int_eq(get("flag&x=1", "flag", &v), 0);
        ck_assert_str_eq(v, "");
        v = mfree(v);
        ck_assert_int_eq(get("k=", "k", &v), 0);
        ck_assert_str_eq(v, "");
        v = mfree(v);
        /* a prefix of a name is another name */
        ck_assert_int_eq(get("grant_types=x&grant=y", "grant_type", &v), -ENOENT);
        ck_assert_int_eq(get("", "grant_type", &v), -ENOENT);
}
END_TEST

START_TEST(test_form_get_refuses) {
        char *v = NULL;

        ck_assert_int_eq(get("k=1&k=2", "k", &v), -ENOTUNIQ);
        ck_assert_int_eq(get("k=%zz", "k", &v), -EINVAL);
        ck_assert_int_eq(get("k=%4", "k", &v), -EINVAL);
        ck_assert_int_eq(get("k=%", "k", &v), -EINVAL);
        ck_assert_int_eq(get("k=a%00b", "k", &v), -EINVAL);
        /* a malformed pair anywhere makes the body malformed */
        ck_assert_int_eq(get("x=%G0&k=1", "k", &v), -EINVAL);
        /* a raw NUL inside the body */
        ck_assert_int_eq(form_get("k=a\0b", 5, "k", &v), -EINVAL);
        ck_assert_ptr_null(v);
}
END_TEST

START_TEST(test_content_type) {
        ck_assert(form_content_type_is_urlencoded("application/x-www-form-urlencoded"));
        ck_assert(form_content_type_is_urlencoded("application/x-www-form-urlencoded;charset=UTF-8"));
        ck_assert(form_content_type_is_urlencoded("Application/X-WWW-Form-Urlencoded; charset=utf-8"));
        ck_assert(!form_content_type_is_urlencoded("application/x-www-form-urlencodedx"));
        ck_assert(!form_content_type_is_urlencoded("application/json"));
        ck_assert(!form_content_type_is_urlencoded(NULL));
}
END_TEST

START_TEST(test_basic) {
        _cleanup_free_ char *u = NULL, *p = NULL;

        /* "gwc_1:s3cr:et" */
        ck_assert_int_eq(http_basic_parse("Basic Z3djXzE6czNjcjpldA==", &u, &p), 0);
        ck_assert_str_eq(u, "gwc_1");
        ck_assert_str_eq(p, "s3cr:et");
        u = mfree(u), p = mfree(p);
        /* each half form-urlencoded (RFC 6749 §2.3.1): "a%3Ab:c+d" */
        ck_assert_int_eq(http_basic_parse("basic  YSUzQWI6YytkIA", &u, &p), 0);
        ck_assert_str_eq(u, "a:b");
        ck_assert_str_eq(p, "c d ");
        u = mfree(u), p = mfree(p);
        ck_assert_int_eq(http_basic_parse("Basic Og==", &u, &p), 0);   /* ":" */
        ck_assert_str_eq(u, "");
        ck_assert_str_eq(p, "");
        u = mfree(u), p = mfree(p);

        ck_assert_int_eq(http_basic_parse(NULL, &u, &p), -ENOENT);
        ck_assert_int_eq(http_basic_parse("Bearer gwt_x", &u, &p), -ENOENT);
        ck_assert_int_eq(http_basic_parse("Basic !!!", &u, &p), -EINVAL);
        ck_assert_int_eq(http_basic_parse("Basic eA==", &u, &p), -EINVAL);        /* "x": no colon */
        ck_assert_int_eq(http_basic_parse("Basic eDoAeQ==", &u, &p), -EINVAL);    /* "x:\0y" */
        ck_assert_int_eq(http_basic_parse("Basic eDp5=x", &u, &p), -EINVAL);      /* data after padding */
        ck_assert_int_eq(http_basic_parse("Basic eDolMDA=", &u, &p), -EINVAL);    /* "x:%00" */
        ck_assert_ptr_null(u);
        ck_assert_ptr_null(p);
}
END_TEST

int main(void) {
        Suite *s = suite_create("http-form");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_form_get);
        tcase_add_test(tc, test_form_get_refuses);
        tcase_add_test(tc, test_content_type);
        tcase_add_test(tc, test_basic);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
