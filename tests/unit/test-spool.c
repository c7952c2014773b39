/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "macro.h"
#include "test-tmpdir.h"
#include "spool.h"
#include "test-main.h"

static TestTmpdir tmp;

static void setup(void) {
        test_tmpdir_create(&tmp, "spool");
}

static void teardown(void) {
        test_tmpdir_remove(&tmp);
}

static char *slurp(const char *name) {
        static char buf[256];
        int fd = openat(tmp.fd, name, O_RDONLY);
        ssize_t n;

        ck_assert_int_ge(fd, 0);
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        ck_assert_int_ge(n, 0);
        buf[n] = 0;
        return buf;
}

START_TEST(test_write_atomic) {
        ck_assert_int_eq(spool_write_atomic(tmp.fd, "exit.json", "{\"a\":1}", 7), 0);
        ck_assert_str_eq(slurp("exit.json"), "{\"a\":1}");
        ck_assert_int_eq(spool_write_atomic(tmp.fd, "exit.json", "2", 1), 0);
        ck_assert_str_eq(slurp("exit.json"), "2");
        ck_assert_int_lt(faccessat(tmp.fd, ".exit.json.tmp", F_OK, 0), 0);
}
END_TEST

START_TEST(test_pid_file) {
        pid_t holder = 0;
        char expected[32];
        int fd, fd2;

        fd = spool_lock_pid_file(tmp.fd, "worker.pid", &holder);
        ck_assert_int_ge(fd, 0);
        snprintf(expected, sizeof(expected), "%d\n", (int) getpid());
        ck_assert_str_eq(slurp("worker.pid"), expected);
        /* a second worker on the same spool is told who holds it */
        ck_assert_int_eq(spool_lock_pid_file(tmp.fd, "worker.pid", &holder), -EBUSY);
        ck_assert_int_eq(holder, getpid());
        close(fd);
        /* a stale file (its worker died) is taken over */
        fd2 = spool_lock_pid_file(tmp.fd, "worker.pid", &holder);
        ck_assert_int_ge(fd2, 0);
        close(fd2);
}
END_TEST

START_TEST(test_prepare_input) {
        struct stat st;

        ck_assert_int_eq(spool_prepare_input(tmp.fd, getuid(), getgid()), 0);
        ck_assert_str_eq(slurp("input/data.json"), "{}\n");
        ck_assert_str_eq(slurp("input/params.json"), "{}\n");
        ck_assert_int_eq(fstatat(tmp.fd, "input/data.json", &st, 0), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0400);
        /* existing content is kept */
        ck_assert_int_eq(unlinkat(tmp.fd, "input/data.json", 0), 0);
        {
                int fd = openat(tmp.fd, "input/data.json", O_WRONLY | O_CREAT, 0644);
                ck_assert_int_ge(fd, 0);
                ck_assert_int_eq(write(fd, "[1]", 3), 3);
                close(fd);
        }
        ck_assert_int_eq(spool_prepare_input(tmp.fd, getuid(), getgid()), 0);
        ck_assert_str_eq(slurp("input/data.json"), "[1]");
}
END_TEST

START_TEST(test_prepare_input_refuses_symlinks_and_dirs) {
        ck_assert_int_eq(mkdirat(tmp.fd, "input", 0755), 0);
        ck_assert_int_eq(symlinkat("/etc/passwd", tmp.fd, "input/data.json"), 0);
        ck_assert_int_eq(spool_prepare_input(tmp.fd, getuid(), getgid()), -ELOOP);
        ck_assert_int_eq(unlinkat(tmp.fd, "input/data.json", 0), 0);
        ck_assert_int_eq(mkdirat(tmp.fd, "input/data.json", 0755), 0);
        ck_assert_int_eq(spool_prepare_input(tmp.fd, getuid(), getgid()), -EISDIR);
}
END_TEST

int main(void) {
        Suite *s = suite_create("spool");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_write_atomic);
        tcase_add_test(tc, test_pid_file);
        tcase_add_test(tc, test_prepare_input);
        tcase_add_test(tc, test_prepare_input_refuses_symlinks_and_dirs);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
