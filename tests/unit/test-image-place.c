/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs-util.h"
#include "image-place.h"
#include "macro.h"
#include "test-main.h"
#include "test-tmpdir.h"

/* Another platform's image directory gets the converted file under a name of its own: one
 * inode on one file system (a hard link), -EXDEV across file systems (no copy), an old file of that name
 * replaced whole, never a temp file left behind. */

static TestTmpdir a, b;

static void setup(void) {
        test_tmpdir_create(&a, "image-place-a");
        test_tmpdir_create(&b, "image-place-b");
}

static void teardown(void) {
        test_tmpdir_remove(&a);
        test_tmpdir_remove(&b);
}

static char *path_in(const TestTmpdir *t, const char *name) {
        char *p = NULL;
        ck_assert_int_ge(asprintf(&p, "%s/%s", t->path, name), 0);
        return p;
}

static void assert_contents(const char *path, const char *want) {
        char buf[256] = {};
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        ck_assert_int_ge(fd, 0);
        n = read(fd, buf, sizeof(buf) - 1);
        ck_assert_int_eq(n, (ssize_t) strlen(want));
        ck_assert_str_eq(buf, want);
}

static int entries(const TestTmpdir *t) {
        int n = 0;
        _cleanup_free_ char *cmd = NULL;
        FILE *f;
        char line[256];

        ck_assert_int_ge(asprintf(&cmd, "ls -A %s", t->path), 0);
        f = popen(cmd, "r");
        ck_assert_ptr_nonnull(f);
        while (fgets(line, sizeof(line), f))
                n++;
        pclose(f);
        return n;
}

START_TEST(test_hard_link_of_its_own) {
        _cleanup_free_ char *src = path_in(&a, "abc.squashfs"), *placed = NULL;
        struct stat s1, s2;

        ck_assert_int_eq(write_file_atomic(a.path, "abc.squashfs", "squash", 6), 0);
        ck_assert_int_eq(image_place_file(src, b.path, "abc.squashfs", &placed), 0);
        ck_assert_int_eq(stat(src, &s1), 0);
        ck_assert_int_eq(stat(placed, &s2), 0);
        ck_assert(s1.st_dev == s2.st_dev && s1.st_ino == s2.st_ino);
        /* The other directory's removal leaves this one's file. */
        ck_assert_int_eq(unlink(src), 0);
        assert_contents(placed, "squash");
        ck_assert_int_eq(entries(&b), 1);
}
END_TEST

START_TEST(test_replaces_an_old_file_and_the_same_one) {
        _cleanup_free_ char *src = path_in(&a, "abc.squashfs"), *placed = NULL, *again = NULL;

        ck_assert_int_eq(write_file_atomic(b.path, "abc.squashfs", "old", 3), 0);
        ck_assert_int_eq(write_file_atomic(a.path, "abc.squashfs", "new", 3), 0);
        ck_assert_int_eq(image_place_file(src, b.path, "abc.squashfs", &placed), 0);
        assert_contents(placed, "new");
        /* Placed again onto a link of the same file: rename(2) does nothing, no temp file stays. */
        ck_assert_int_eq(image_place_file(src, b.path, "abc.squashfs", &again), 0);
        ck_assert_int_eq(entries(&b), 1);
}
END_TEST

START_TEST(test_no_copy_across_file_systems) {
        TestTmpdir shm;
        _cleanup_free_ char *placed = NULL, *src = NULL;
        struct stat s1, s2;
        int r;

        snprintf(shm.path, sizeof(shm.path), "/dev/shm/test-image-place-XXXXXX");
        if (!mkdtemp(shm.path))
                return;  /* no /dev/shm here */
        shm.fd = open(shm.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        src = path_in(&shm, "abc.meta.json");
        ck_assert_int_eq(write_file_atomic(shm.path, "abc.meta.json", "{\"env\":[]}", 10), 0);
        ck_assert_int_eq(stat(src, &s1), 0);
        ck_assert_int_eq(fstat(b.fd, &s2), 0);
        r = image_place_file(src, b.path, "abc.meta.json", &placed);
        if (s1.st_dev != s2.st_dev) {
                /* tmpfs has no reflinks: no copy either (it would hold gatewayd's loop), the
                 * caller converts instead; nothing is left behind. */
                ck_assert_int_eq(r, -EXDEV);
                ck_assert_ptr_null(placed);
                ck_assert_int_eq(entries(&b), 0);
        } else {
                ck_assert_int_eq(r, 0);
                assert_contents(placed, "{\"env\":[]}");
        }
        test_tmpdir_remove(&shm);
}
END_TEST

START_TEST(test_errors) {
        _cleanup_free_ char *src = path_in(&a, "missing.squashfs"), *placed = NULL;

        ck_assert_int_eq(image_place_file(src, b.path, "missing.squashfs", &placed), -ENOENT);
        ck_assert_ptr_null(placed);
        ck_assert_int_eq(entries(&b), 0);
        ck_assert_int_eq(write_file_atomic(a.path, "abc.squashfs", "x", 1), 0);
        free(src);
        src = path_in(&a, "abc.squashfs");
        ck_assert_int_eq(image_place_file(src, "/nonexistent/images", "abc.squashfs", &placed), -ENOENT);
}
END_TEST

int main(void) {
        Suite *s = suite_create("image-place");
        TCase *tc = tcase_create("place");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_hard_link_of_its_own);
        tcase_add_test(tc, test_replaces_an_old_file_and_the_same_one);
        tcase_add_test(tc, test_no_copy_across_file_systems);
        tcase_add_test(tc, test_errors);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
