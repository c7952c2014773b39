/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The fsync pool (fsync-pool.h): every request is answered once, on the loop, with the first
 * error of its files, and its fds are closed; what is under way at free is answered too. */
#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "fsync-pool.h"
#include "macro.h"

#define N_REQUESTS 12

static int results[N_REQUESTS];
static unsigned n_done;

static void on_done(int r, void *userdata) {
        results[(intptr_t) userdata] = r;
        n_done++;
}

static int *temp_fds(size_t n, int *copy) {
        int *fds = calloc(n + 1, sizeof(int));

        ck_assert_ptr_nonnull(fds);
        for (size_t i = 0; i < n; i++) {
                char path[] = "/tmp/test-fsync-pool-XXXXXX";

                fds[i] = mkstemp(path);
                ck_assert_int_ge(fds[i], 0);
                ck_assert_int_eq(unlink(path), 0);
                ck_assert_int_eq(write(fds[i], "{}", 2), 2);
                copy[i] = fds[i];
        }
        return fds;
}

static bool fd_is_open(int fd) {
        return fcntl(fd, F_GETFD) >= 0;
}

START_TEST(test_requests_answered) {
        sd_event *e = NULL;
        FsyncPool *p = NULL;
        int copies[N_REQUESTS][3], pipe_fds[2];

        ck_assert_int_ge(sd_event_new(&e), 0);
        ck_assert_int_ge(fsync_pool_new(e, &p), 0);
        n_done = 0;
        for (intptr_t i = 0; i < N_REQUESTS; i++) {
                results[i] = 1;
                ck_assert_int_ge(fsync_pool_sync(p, temp_fds(i % 3 + 1, copies[i]), i % 3 + 1, on_done, (void *) i), 0);
        }
        /* a pipe cannot be flushed: EINVAL, the request's first error */
        ck_assert_int_eq(pipe2(pipe_fds, O_CLOEXEC), 0);
        {
                int *fds = calloc(2, sizeof(int));
                ck_assert_ptr_nonnull(fds);
                fds[0] = pipe_fds[0];
                results[0] = 1;
                ck_assert_int_ge(fsync_pool_sync(p, fds, 1, on_done, (void *) 0), 0);
        }
        /* nothing is answered inside fsync_pool_sync(): only from the loop */
        ck_assert_uint_eq(n_done, 0);
        while (n_done < N_REQUESTS + 1)
                ck_assert_int_ge(sd_event_run(e, 10 * 1000 * 1000), 0);
        ck_assert_int_eq(results[0], -EINVAL);
        for (int i = 1; i < N_REQUESTS; i++)
                ck_assert_int_eq(results[i], 0);
        for (int i = 0; i < N_REQUESTS; i++)
                for (int k = 0; k < i % 3 + 1; k++)
                        ck_assert(!fd_is_open(copies[i][k]));
        ck_assert(!fd_is_open(pipe_fds[0]));
        safe_close(pipe_fds[1]);

        /* under way at free: answered by free */
        n_done = 0;
        ck_assert_int_ge(fsync_pool_sync(p, temp_fds(2, copies[0]), 2, on_done, (void *) 1), 0);
        ck_assert_int_ge(fsync_pool_sync(p, calloc(1, sizeof(int)), 0, on_done, (void *) 2), 0);
        p = fsync_pool_free(p);
        ck_assert_uint_eq(n_done, 2);
        ck_assert_int_eq(results[1], 0);
        ck_assert_int_eq(results[2], 0);
        sd_event_unref(e);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("fsync-pool");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_requests_answered);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
