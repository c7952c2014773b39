/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "job-log.h"
#include "macro.h"
#include "test-tmpdir.h"
#include "test-main.h"

static TestTmpdir tmp;

static void setup(void) {
        test_tmpdir_create(&tmp, "job-log");
}

static void teardown(void) {
        test_tmpdir_remove(&tmp);
}

static char *read_log(size_t *ret_len) {
        static char buf[1 << 16];
        int fd = openat(tmp.fd, "log", O_RDONLY);
        ssize_t n;

        ck_assert_int_ge(fd, 0);
        n = read(fd, buf, sizeof(buf) - 1);
        ck_assert_int_ge(n, 0);
        buf[n] = 0;
        close(fd);
        if (ret_len)
                *ret_len = (size_t) n;
        return buf;
}

static void line(JobLog *l, const char *s) {
        ck_assert_int_eq(job_log_line(l, s, strlen(s), false), 0);
}

START_TEST(test_small_log_untouched) {
        JobLog *l = NULL;
        char *tail;

        ck_assert_int_eq(job_log_open(tmp.fd, 1024, 2, &l), 0);
        line(l, "one");
        ck_assert_int_eq(job_log_line(l, "tw", 2, true), 0);
        line(l, "o");
        ck_assert_int_eq(job_log_note(l, "warning", "careful"), 0);
        ck_assert_int_eq(job_log_finish(l), 0);
        ck_assert_str_eq(read_log(NULL), "one\ntwo\n[gateway-worker] warning: careful\n");
        ck_assert_uint_eq(job_log_dropped(l), 0);
        tail = job_log_tail(l);
        /* the tail keeps the start of each line: "tw", continued by "o", counts as one line */
        ck_assert_str_eq(tail, "tw\n[gateway-worker] warning: careful");
        free(tail);
        job_log_free(l);
        ck_assert_int_lt(faccessat(tmp.fd, "log.old", F_OK, 0), 0);
}
END_TEST

START_TEST(test_truncated_keeps_the_end) {
        JobLog *l = NULL;
        char buf[32], *log, *body;
        size_t len;

        ck_assert_int_eq(job_log_open(tmp.fd, 100, 3, &l), 0);
        for (int i = 0; i < 100; i++) {
                snprintf(buf, sizeof(buf), "line %03d", i);   /* 9 bytes with "\n" */
                line(l, buf);
        }
        ck_assert_int_eq(job_log_finish(l), 0);
        log = read_log(&len);
        ck_assert_msg(strncmp(log, "[gateway-worker] Log truncated", 30) == 0, "%s", log);
        body = strchr(log, '\n') + 1;
        /* whole lines only, at most the limit, at least the last segment (half the limit),
         * ending with the last line */
        ck_assert_uint_le(strlen(body), 100);
        ck_assert_uint_ge(strlen(body), 50 - 9);
        ck_assert_str_eq(body + strlen(body) - 9, "line 099\n");
        ck_assert_msg(strncmp(body, "line ", 5) == 0, "%s", body);
        ck_assert_uint_eq(job_log_dropped(l), 900 - strlen(body));
        ck_assert_ptr_nonnull(strstr(log, "the first "));
        ck_assert_int_lt(faccessat(tmp.fd, "log.old", F_OK, 0), 0);
        job_log_free(l);
}
END_TEST

START_TEST(test_single_huge_piece) {
        JobLog *l = NULL;
        char big[1000];
        char *log, *body;

        memset(big, 'x', sizeof(big));
        ck_assert_int_eq(job_log_open(tmp.fd, 64, 0, &l), 0);
        line(l, "first");
        ck_assert_int_eq(job_log_line(l, big, sizeof(big), false), 0);
        line(l, "last");
        ck_assert_int_eq(job_log_finish(l), 0);
        log = read_log(NULL);
        body = strchr(log, '\n') + 1;
        ck_assert_str_eq(body, "last\n");   /* cut to the line after the cut point */
        job_log_free(l);
}
END_TEST

static uint64_t file_size(const char *name) {
        struct stat st;

        if (fstatat(tmp.fd, name, &st, 0) < 0)
                return 0;
        return (uint64_t) st.st_size;
}

/* LogMax bounds what the log takes of the disk while the job runs, rotated part included. */
START_TEST(test_bound_includes_rotated_part) {
        JobLog *l = NULL;
        char buf[64];
        size_t len;

        ck_assert_int_eq(job_log_open(tmp.fd, 1000, 0, &l), 0);
        for (int i = 0; i < 2000; i++) {
                snprintf(buf, sizeof(buf), "line %04d %.*s", i, i % 40, "0123456789012345678901234567890123456789");
                line(l, buf);
                ck_assert_uint_le(file_size("log") + file_size("log.old"), 1000);
        }
        /* a piece far over the limit, continued: still within it */
        memset(buf, 'y', sizeof(buf));
        for (int i = 0; i < 100; i++) {
                ck_assert_int_eq(job_log_line(l, buf, sizeof(buf), true), 0);
                ck_assert_uint_le(file_size("log") + file_size("log.old"), 1000);
        }
        line(l, "the end");
        ck_assert_int_eq(job_log_finish(l), 0);
        /* the final log, notice included, too */
        read_log(&len);
        ck_assert_uint_le(len, 1000);
        ck_assert_uint_ge(len, 500);
        ck_assert_uint_eq(file_size("log.old"), 0);
        job_log_free(l);
}
END_TEST

int main(void) {
        Suite *s = suite_create("job-log");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_small_log_untouched);
        tcase_add_test(tc, test_truncated_keeps_the_end);
        tcase_add_test(tc, test_single_huge_piece);
        tcase_add_test(tc, test_bound_includes_rotated_part);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
