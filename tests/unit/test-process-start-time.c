/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "process-util.h"
#include "test-main.h"

/* polkit's unix-process subject and our pid-recycling check both rely on field 22 of
 * /proc/PID/stat (start time in clock ticks since boot). */

static unsigned long long field22(pid_t pid) {
        char path[64], buf[4096], *p;
        unsigned long long t = 0;
        FILE *f;
        size_t n;

        snprintf(path, sizeof(path), "/proc/%i/stat", (int) pid);
        f = fopen(path, "re");
        ck_assert_ptr_nonnull(f);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        p = strrchr(buf, ')');
        ck_assert_ptr_nonnull(p);
        /* After ") " comes field 3; split the rest and take the 20th token (field 22). */
        p += 2;
        for (int field = 3; field <= 22; field++) {
                char *tok = strsep(&p, " ");
                ck_assert_ptr_nonnull(tok);
                if (field == 22)
                        t = strtoull(tok, NULL, 10);
        }
        return t;
}

START_TEST(test_self) {
        uint64_t t = 0;

        ck_assert_int_eq(process_start_time(getpid(), &t), 0);
        ck_assert_uint_eq(t, field22(getpid()));
        ck_assert_int_eq(process_start_time(getppid(), &t), 0);
        ck_assert_uint_eq(t, field22(getppid()));
}
END_TEST

START_TEST(test_hostile_comm) {
        uint64_t t = 0;

        /* The command name is chosen by the process: parentheses and blanks must not shift fields. */
        ck_assert_int_eq(prctl(PR_SET_NAME, "a) 1 2 (b c)"), 0);
        ck_assert_int_eq(process_start_time(getpid(), &t), 0);
        ck_assert_uint_eq(t, field22(getpid()));
}
END_TEST

START_TEST(test_no_such_process) {
        uint64_t t = 0;

        ck_assert_int_eq(process_start_time(0x3fffffff, &t), -ENOENT);
}
END_TEST

int main(void) {
        Suite *s = suite_create("process-start-time");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_self);
        tcase_add_test(tc, test_hostile_comm);
        tcase_add_test(tc, test_no_such_process);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
