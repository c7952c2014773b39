/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Declared dependencies against an image (src/worker/program-deps.c): names, versions, requirements,
 * and a site directory made here. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs-util.h"
#include "macro.h"
#include "program-deps.h"
#include "test-main.h"

START_TEST(test_dist_names) {
        char *n, *v;

        ck_assert(program_dist_parse("numpy-1.26.4.dist-info", &n, &v));
        ck_assert_str_eq(n, "numpy");
        ck_assert_str_eq(v, "1.26.4");
        free(n), free(v);
        ck_assert(program_dist_parse("Qiskit_Aer-0.15.1.dist-info", &n, &v));
        ck_assert_str_eq(n, "qiskit-aer");
        free(n), free(v);
        ck_assert(program_dist_parse("numpy-1.24.2.egg-info", &n, &v));
        ck_assert_str_eq(v, "1.24.2");
        free(n), free(v);
        ck_assert(program_dist_parse("six-1.16.0-py3.11.egg-info", &n, &v));
        ck_assert_str_eq(v, "1.16.0");
        free(n), free(v);
        ck_assert(!program_dist_parse("numpy", &n, &v));
        ck_assert(!program_dist_parse("-1.0.dist-info", &n, &v));
        ck_assert(!program_dist_parse("numpy.dist-info", &n, &v));
}
END_TEST

START_TEST(test_versions) {
        ck_assert_int_lt(program_version_compare("1.2", "1.10"), 0);
        ck_assert_int_eq(program_version_compare("1.2", "1.2.0"), 0);
        ck_assert_int_lt(program_version_compare("1.0rc1", "1.0"), 0);
        ck_assert_int_lt(program_version_compare("1.0a1", "1.0b1"), 0);
        ck_assert_int_lt(program_version_compare("1.0.dev1", "1.0a1"), 0);
        ck_assert_int_gt(program_version_compare("1.0.post1", "1.0"), 0);
        ck_assert_int_gt(program_version_compare("2", "1.99.99"), 0);
}
END_TEST

START_TEST(test_requirements) {
        const char *error = NULL;
        char *name = NULL;

        ck_assert_int_eq(program_requirement_parse("Qiskit.Aer[gpu] (>=0.14, <1) ; python_version > '3'", &name, &error), 0);
        ck_assert_str_eq(name, "qiskit-aer");
        free(name);
        ck_assert_int_eq(program_requirement_parse("x @ https://h/x.whl", &name, &error), -EINVAL);
        ck_assert_int_eq(program_requirement_parse(">=1", &name, &error), -EINVAL);
        ck_assert_int_eq(program_requirement_parse("x >>1", &name, &error), -EINVAL);
        ck_assert_int_eq(program_requirement_parse("x ==1 ==2", &name, &error), -EINVAL);
        ck_assert_int_eq(program_requirement_parse("x (==1", &name, &error), -EINVAL);
        ck_assert_int_eq(program_requirement_parse("x[a", &name, &error), -EINVAL);

        ck_assert_int_eq(program_requirement_satisfied("x", "0.1"), 1);
        ck_assert_int_eq(program_requirement_satisfied("x>=1.0,<2", "1.5"), 1);
        ck_assert_int_eq(program_requirement_satisfied("x>=1.0,<2", "2.0"), 0);
        ck_assert_int_eq(program_requirement_satisfied("x==1.2.*", "1.2.9"), 1);
        ck_assert_int_eq(program_requirement_satisfied("x==1.2.*", "1.3"), 0);
        ck_assert_int_eq(program_requirement_satisfied("x!=1.2.*", "1.3"), 1);
        ck_assert_int_eq(program_requirement_satisfied("x~=1.4.2", "1.4.9"), 1);
        ck_assert_int_eq(program_requirement_satisfied("x~=1.4.2", "1.5.0"), 0);
        ck_assert_int_eq(program_requirement_satisfied("x~=1.4", "1.9"), 1);
        ck_assert_int_eq(program_requirement_satisfied("x===1.0", "1.0"), 1);
        ck_assert_int_eq(program_requirement_satisfied("x===1.0", "1.0.0"), 0);
        ck_assert_int_eq(program_requirement_satisfied("x>1.0", "1.0rc1"), 0);
}
END_TEST

START_TEST(test_check_image) {
        char root[] = "/tmp/test-program-deps-XXXXXX", outside[] = "/tmp/test-program-deps-out-XXXXXX", path[256];
        char *ok[] = { "numpy>=1.20", "QISKIT", NULL }, *bad[] = { "numpy<1", "scipy", "qiskit", NULL };
        char *bad_syntax[] = { "numpy >>1", NULL };
        char *message = NULL;

        ck_assert_ptr_nonnull(mkdtemp(root));
        snprintf(path, sizeof(path), "%s/usr/lib/python3.11/site-packages/numpy-1.26.4.dist-info", root);
        ck_assert_int_eq(mkdir_p(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/usr/lib/python3/dist-packages/qiskit-1.2.0.dist-info", root);
        ck_assert_int_eq(mkdir_p(path, 0755), 0);
        /* a link out of the image is not followed */
        snprintf(path, sizeof(path), "%s/usr/local/lib", root);
        ck_assert_int_eq(mkdir_p(path, 0755), 0);
        ck_assert_ptr_nonnull(mkdtemp(outside));
        snprintf(path, sizeof(path), "%s/site-packages/scipy-1.0.dist-info", outside);
        ck_assert_int_eq(mkdir_p(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/usr/local/lib/python3.11", root);
        ck_assert_int_eq(symlink(outside, path), 0);

        ck_assert_int_eq(program_deps_check(root, ok, &message), 0);
        ck_assert_ptr_null(message);
        ck_assert_int_eq(program_deps_check(root, bad, &message), -ENOENT);
        ck_assert_ptr_nonnull(strstr(message, "'numpy<1' (installed: numpy 1.26.4)"));
        ck_assert_ptr_nonnull(strstr(message, "'scipy' (not installed)"));
        ck_assert_ptr_null(strstr(message, "'qiskit'"));
        free(message);
        ck_assert_int_eq(program_deps_check(root, bad_syntax, &message), -EINVAL);
        ck_assert_ptr_nonnull(strstr(message, "numpy >>1"));
        free(message);
        ck_assert_int_eq(rm_rf(root), 0);
        ck_assert_int_eq(rm_rf(outside), 0);
}
END_TEST

int main(void) {
        Suite *s = suite_create("program-deps");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_dist_names);
        tcase_add_test(tc, test_versions);
        tcase_add_test(tc, test_requirements);
        tcase_add_test(tc, test_check_image);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
