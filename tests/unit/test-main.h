/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <check.h>

/* Runs a check suite and turns its result into the test program's exit status. */
static inline int test_run_suite(Suite *s) {
        SRunner *sr = srunner_create(s);
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? 0 : 1;
}
