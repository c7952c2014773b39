/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>

#include "layer-path.h"
#include "macro.h"
#include "test-main.h"

static void check_norm(const char *in, const char *out) {
        _cleanup_free_ char *s = NULL;

        ck_assert_msg(layer_path_normalize(in, &s) == 0, "refused '%s'", in);
        ck_assert_str_eq(s, out);
}

START_TEST(test_normalize) {
        check_norm("usr/bin/sh", "usr/bin/sh");
        check_norm("./usr/bin/sh", "usr/bin/sh");
        check_norm("usr//bin/./sh", "usr/bin/sh");
        check_norm("usr/bin/", "usr/bin");
        check_norm("./", "");
        check_norm(".", "");
        check_norm("..foo/..bar", "..foo/..bar");
        check_norm("a/...", "a/...");
}
END_TEST

START_TEST(test_refuse) {
        static const char * const bad[] = {
                "/etc/passwd", "../x", "a/../../x", "a/..", "..", "./../x", "a/b/../c", "//x",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *s = NULL;
                ck_assert_msg(layer_path_normalize(bad[i], &s) == -EINVAL, "accepted '%s'", bad[i]);
                ck_assert_ptr_null(s);
        }
}
END_TEST

START_TEST(test_long) {
        char name[300], *s = NULL;

        memset(name, 'a', sizeof(name) - 1);
        name[sizeof(name) - 1] = 0;
        ck_assert_int_eq(layer_path_normalize(name, &s), -ENAMETOOLONG);
}
END_TEST

START_TEST(test_whiteouts) {
        WhiteoutKind k;
        const char *t = NULL;

        ck_assert_int_eq(layer_whiteout_kind("file", &k, &t), 0);
        ck_assert_int_eq(k, WHITEOUT_NONE);
        ck_assert_int_eq(layer_whiteout_kind(".wh.file", &k, &t), 0);
        ck_assert_int_eq(k, WHITEOUT_FILE);
        ck_assert_str_eq(t, "file");
        ck_assert_int_eq(layer_whiteout_kind(".wh..wh..opq", &k, &t), 0);
        ck_assert_int_eq(k, WHITEOUT_OPAQUE);
        ck_assert_int_eq(layer_whiteout_kind(".wh..wh.plnk", &k, &t), 0);
        ck_assert_int_eq(k, WHITEOUT_META);
        ck_assert_int_eq(layer_whiteout_kind(".wh.", &k, &t), -EINVAL);
        ck_assert_int_eq(layer_whiteout_kind(".wh..", &k, &t), -EINVAL);
        ck_assert_int_eq(layer_whiteout_kind(".wh...", &k, &t), -EINVAL);
        ck_assert_int_eq(layer_whiteout_kind(".whx", &k, &t), 0);
        ck_assert_int_eq(k, WHITEOUT_NONE);
}
END_TEST

START_TEST(test_split) {
        _cleanup_free_ char *p = NULL, *q = NULL;
        const char *b;

        ck_assert_int_eq(layer_path_split("usr/bin/sh", &p, &b), 0);
        ck_assert_str_eq(p, "usr/bin");
        ck_assert_str_eq(b, "sh");
        ck_assert_int_eq(layer_path_split("etc", &q, &b), 0);
        ck_assert_str_eq(q, "");
        ck_assert_str_eq(b, "etc");
}
END_TEST

int main(void) {
        Suite *s = suite_create("layer-path");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_normalize);
        tcase_add_test(tc, test_refuse);
        tcase_add_test(tc, test_long);
        tcase_add_test(tc, test_whiteouts);
        tcase_add_test(tc, test_split);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
