/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "macro.h"
#include "manager.h"
#include "polkit-grants.h"
#include "test-main.h"

/* A grant is per action and subject; the map holds at most 1024 subjects. */

START_TEST(test_keys_and_lookup) {
        Manager m = {};
        _cleanup_free_ char *a = polkit_grant_key("org.gatewayd.submit-job", NULL, 42, 1000, 1001);
        _cleanup_free_ char *b = polkit_grant_key("org.gatewayd.submit-job", NULL, 42, 1001, 1001);  /* pid reused */
        _cleanup_free_ char *c = polkit_grant_key("org.gatewayd.pull-image", NULL, 42, 1000, 1001);
        _cleanup_free_ char *d = polkit_grant_key("org.gatewayd.submit-job", ":1.42", 42, 1000, 1001);

        ck_assert_ptr_nonnull(a);
        ck_assert(!polkit_grants_has(&m, a));
        polkit_grants_add(&m, a);
        ck_assert(polkit_grants_has(&m, a));
        ck_assert(!polkit_grants_has(&m, b));
        ck_assert(!polkit_grants_has(&m, c));
        ck_assert(!polkit_grants_has(&m, d));
        ck_assert(!polkit_grants_has(&m, NULL));
        polkit_grants_add(&m, NULL);
        polkit_grants_free(&m);
        ck_assert_ptr_null(m.polkit_grants);
}
END_TEST

START_TEST(test_bounded) {
        Manager m = {};

        for (int pid = 1; pid <= 2000; pid++) {
                _cleanup_free_ char *k = polkit_grant_key("org.gatewayd.submit-job", NULL, pid, 1, 1001);
                polkit_grants_add(&m, k);
        }
        ck_assert_uint_eq(hashmap_size(m.polkit_grants), 1024);
        polkit_grants_free(&m);
}
END_TEST

int main(void) {
        Suite *s = suite_create("polkit-grants");
        TCase *tc = tcase_create("grants");

        tcase_add_test(tc, test_keys_and_lookup);
        tcase_add_test(tc, test_bounded);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
