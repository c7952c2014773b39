/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The copy of a job's result files into its spool (result-files.c): what a job leaves in its
 * directory is untrusted, so only regular files with plain names are kept, links are never
 * followed, and the limits hold. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

#include "macro.h"
#include "result-files.h"
#include "test-main.h"
#include "test-tmpdir.h"

static TestTmpdir job, spool;
static char notes[8192];

static void setup(void) {
        test_tmpdir_create(&job, "result-job");
        test_tmpdir_create(&spool, "result-spool");
        notes[0] = 0;
}

static void teardown(void) {
        test_tmpdir_remove(&job);
        test_tmpdir_remove(&spool);
}

static void note(void *userdata, const char *level, const char *message) {
        ck_assert_ptr_eq(userdata, notes);
        snprintf(notes + strlen(notes), sizeof(notes) - strlen(notes), "%s: %s\n", level, message);
}

/* A file of size bytes (byte i = i * 7) whose mtime is age seconds ago. */
static void put(const char *name, size_t size, int age) {
        struct timeval now, tv[2];
        char *buf = malloc(size + 1);
        int fd;

        ck_assert_ptr_nonnull(buf);
        for (size_t i = 0; i < size; i++)
                buf[i] = (char) (i * 7);
        fd = openat(job.fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(loop_write(fd, buf, size), 0);
        gettimeofday(&now, NULL);
        tv[0] = tv[1] = (struct timeval) { .tv_sec = now.tv_sec - age };
        ck_assert_int_eq(futimes(fd, tv), 0);
        close(fd);
        free(buf);
}

/* size bytes of the pattern at output/name, or -1 if there is no such regular file. */
static ssize_t check_copy(const char *name) {
        char path[512], buf[65536];
        struct stat st;
        ssize_t n, total = 0;
        int fd;

        snprintf(path, sizeof(path), "output/%s", name);
        fd = openat(spool.fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -1;
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert(S_ISREG(st.st_mode));
        while ((n = read(fd, buf, sizeof(buf))) > 0) {
                for (ssize_t i = 0; i < n; i++)
                        ck_assert_int_eq((unsigned char) buf[i], (unsigned char) ((total + i) * 7));
                total += n;
        }
        close(fd);
        return total;
}

static size_t count_output(void) {
        char cmd[256];
        FILE *f;
        size_t n = 0;
        int c;

        snprintf(cmd, sizeof(cmd), "ls -A '%s/output'", spool.path);
        f = popen(cmd, "r");
        ck_assert_ptr_nonnull(f);
        while ((c = fgetc(f)) != EOF)
                n += c == '\n';
        pclose(f);
        return n;
}

START_TEST(test_regular_files_byte_exact) {
        ResultFilesStats st;

        put("counts.csv", 100000, 10);
        put("a b%.txt", 5, 5);
        put("empty", 0, 1);
        ck_assert_int_eq(result_files_copy(job.fd, spool.fd, 1 << 20, 10, note, notes, &st), 0);
        ck_assert_int_eq(check_copy("counts.csv"), 100000);
        ck_assert_int_eq(check_copy("a b%.txt"), 5);
        ck_assert_int_eq(check_copy("empty"), 0);
        ck_assert_uint_eq(st.files, 3);
        ck_assert_uint_eq(st.bytes, 100005);
        ck_assert_uint_eq(st.dropped, 0);
        ck_assert_uint_eq(count_output(), 3);
        /* no staging directory left behind */
        ck_assert_int_lt(faccessat(spool.fd, ".output.partial", F_OK, AT_SYMLINK_NOFOLLOW), 0);
        ck_assert_str_eq(notes, "");
}
END_TEST

START_TEST(test_untrusted_entries_are_skipped) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        ResultFilesStats st;
        int sock;

        put("ok.txt", 3, 1);
        ck_assert_int_eq(symlinkat("/etc/shadow", job.fd, "shadow"), 0);
        ck_assert_int_eq(symlinkat("ok.txt", job.fd, "link-to-ok"), 0);
        ck_assert_int_eq(mkfifoat(job.fd, "fifo", 0644), 0);
        ck_assert_int_eq(mkdirat(job.fd, "sub", 0755), 0);
        ck_assert_int_eq(close(openat(job.fd, "sub/inner", O_WRONLY | O_CREAT, 0644)), 0);
        put(".hidden", 3, 1);
        put("self", 3, 1);
        put("bad\nname", 3, 1);
        put("bad\xff", 3, 1);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", job.path);
        sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ck_assert_int_eq(bind(sock, (struct sockaddr *) &sa, sizeof(sa)), 0);

        ck_assert_int_eq(result_files_copy(job.fd, spool.fd, 1 << 20, 100, note, notes, &st), 0);
        close(sock);
        ck_assert_int_eq(check_copy("ok.txt"), 3);
        ck_assert_uint_eq(count_output(), 1);
        ck_assert_uint_eq(st.files, 1);
        ck_assert_uint_eq(st.dropped, 9);
        ck_assert_ptr_nonnull(strstr(notes, "'shadow' not kept: it is a symbolic link"));
        ck_assert_ptr_nonnull(strstr(notes, "'fifo' not kept: it is a fifo"));
        ck_assert_ptr_nonnull(strstr(notes, "'sub' not kept: it is a directory"));
        ck_assert_ptr_nonnull(strstr(notes, "'sock' not kept: it is a socket"));
        ck_assert_ptr_nonnull(strstr(notes, "'self' not kept: not a plain file name"));
        /* dot files are the job's own business: no note */
        ck_assert_ptr_null(strstr(notes, "hidden"));
}
END_TEST

START_TEST(test_limits) {
        ResultFilesStats st;

        /* oldest first: 1 and 2 fit (60 of 100 bytes), 3 (50) does not, 4 (40) does, 5 is one
         * file too many */
        put("f1", 30, 50);
        put("f2", 30, 40);
        put("f3", 50, 30);
        put("f4", 40, 20);
        put("f5", 1, 10);
        ck_assert_int_eq(result_files_copy(job.fd, spool.fd, 100, 3, note, notes, &st), 0);
        ck_assert_int_eq(check_copy("f1"), 30);
        ck_assert_int_eq(check_copy("f2"), 30);
        ck_assert_int_eq(check_copy("f3"), -1);
        ck_assert_int_eq(check_copy("f4"), 40);
        ck_assert_int_eq(check_copy("f5"), -1);
        ck_assert_uint_eq(st.files, 3);
        ck_assert_uint_eq(st.bytes, 100);
        ck_assert_uint_eq(st.dropped, 2);
        ck_assert_ptr_nonnull(strstr(notes, "'f3' (50 bytes) not kept: over the limit on the total size"));
        ck_assert_ptr_nonnull(strstr(notes, "'f5' (1 bytes) not kept: over the limit on the number"));
}
END_TEST

START_TEST(test_nothing_no_output_dir) {
        ResultFilesStats st;

        ck_assert_int_eq(symlinkat("/etc/shadow", job.fd, "shadow"), 0);
        ck_assert_int_eq(result_files_copy(job.fd, spool.fd, 100, 3, note, notes, &st), 0);
        ck_assert_int_lt(faccessat(spool.fd, "output", F_OK, AT_SYMLINK_NOFOLLOW), 0);
}
END_TEST

/* A leftover output/ (a worker killed after the rename, before exit.json) is replaced whole. */
START_TEST(test_replaces_old_output) {
        ck_assert_int_eq(mkdirat(spool.fd, "output", 0750), 0);
        ck_assert_int_eq(close(openat(spool.fd, "output/stale", O_WRONLY | O_CREAT, 0644)), 0);
        put("new", 4, 1);
        ck_assert_int_eq(result_files_copy(job.fd, spool.fd, 100, 3, note, notes, NULL), 0);
        ck_assert_int_eq(check_copy("new"), 4);
        ck_assert_uint_eq(count_output(), 1);
}
END_TEST

/* The job's directory as the worker makes it: a tmpfs bounded in bytes (plus a page) and files.
 * A job that wrote past the limit filled it; the file it was writing then is dropped. Needs
 * root (mount). */
START_TEST(test_mounted_dir_full) {
        ResultDir *d = NULL;
        ResultFilesStats st;
        struct timeval tv[2] = { { .tv_sec = 1000000 }, { .tv_sec = 1000000 } };
        char big[65536] = {}, path[256];
        ssize_t n;
        int fd, dfd;

        if (geteuid() != 0)
                return;
        ck_assert_int_eq(result_dir_mount(job.path, 16384, 3, 65534, 65534, &d), 0);
        ck_assert_ptr_nonnull(d);
        snprintf(path, sizeof(path), "%s/output/%d", job.path, (int) getpid());
        ck_assert_str_eq(result_dir_path(d), path);
        dfd = result_dir_fd(d);

        fd = openat(dfd, "old", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, big, 5000), 5000);
        ck_assert_int_eq(futimes(fd, tv), 0);
        close(fd);
        fd = openat(dfd, "cut", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        n = write(fd, big, sizeof(big));
        ck_assert_int_eq(n, 16384 + 4096 - 8192);       /* the rest of the pages, then ENOSPC */
        ck_assert_int_eq(write(fd, big, 1), -1);
        ck_assert_int_eq(errno, ENOSPC);
        close(fd);
        /* the file count bound: root + 3 */
        ck_assert_int_ge((fd = openat(dfd, "e", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)), 0);
        close(fd);
        ck_assert_int_lt(openat(dfd, "f", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644), 0);
        ck_assert_int_eq(errno, ENOSPC);

        result_dir_detach(d);
        ck_assert_int_lt(access(path, F_OK), 0);
        ck_assert_int_eq(result_files_copy(result_dir_fd(d), spool.fd, 16384, 3, note, notes, &st), 0);
        d = result_dir_free(d);
        /* old, and e: newer than cut, but empty (nothing could be written after the fill) */
        ck_assert_int_eq(st.files, 2);
        ck_assert_int_eq(check_copy("e"), 0);
        ck_assert_ptr_nonnull(strstr(notes, "'cut' (12288 bytes) not kept: it was written when the result files reached their size limit"));
}
END_TEST

START_TEST(test_name_ok) {
        ck_assert(result_file_name_ok("result.json"));
        ck_assert(result_file_name_ok("Grüße.txt"));
        ck_assert(result_file_name_ok("a b%.txt"));
        ck_assert(!result_file_name_ok(""));
        ck_assert(!result_file_name_ok(".x"));
        ck_assert(!result_file_name_ok(".."));
        ck_assert(!result_file_name_ok("status"));
        ck_assert(!result_file_name_ok("a\tb"));
        ck_assert(!result_file_name_ok("a\x7f"));
        ck_assert(!result_file_name_ok("\xc3"));
}
END_TEST

int main(void) {
        Suite *s = suite_create("result-files");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_regular_files_byte_exact);
        tcase_add_test(tc, test_untrusted_entries_are_skipped);
        tcase_add_test(tc, test_limits);
        tcase_add_test(tc, test_nothing_no_output_dir);
        tcase_add_test(tc, test_replaces_old_output);
        tcase_add_test(tc, test_name_ok);
        tcase_add_test(tc, test_mounted_dir_full);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
