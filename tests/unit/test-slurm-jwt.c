/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* HS256 tokens for Slurm's auth/jwt: known vectors (checked independently with
 * `openssl dgst -sha256 -hmac` and python's hmac), base64url and the key file's checks. */
#include <check.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "macro.h"
#include "slurm-jwt.h"
#include "test-main.h"
#include "test-tmpdir.h"

START_TEST(test_known_vector) {
        static const char key[] = "0123456789abcdef0123456789abcdef";
        _cleanup_free_ char *t = NULL;

        ck_assert_int_eq(slurm_jwt_mint((const uint8_t *) key, 32, "gwtest-user", 1700000000, 600, &t), 0);
        ck_assert_str_eq(t, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                            "eyJleHAiOjE3MDAwMDA2MDAsImlhdCI6MTcwMDAwMDAwMCwic3VuIjoiZ3d0ZXN0LXVzZXIifQ."
                            "iZF777XlZc4Jor2koAYkzVX7jhryKmBBZidPjpczU4c");
}
END_TEST

START_TEST(test_user_escaped) {
        uint8_t key[32];
        _cleanup_free_ char *t = NULL;

        for (size_t i = 0; i < sizeof(key); i++)
                key[i] = i;
        /* A quote in the name is JSON-escaped, not spliced into the claims. */
        ck_assert_int_eq(slurm_jwt_mint(key, sizeof(key), "a\"b", 0, 1, &t), 0);
        ck_assert_str_eq(t, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjEsImlhdCI6MCwic3VuIjoiYVwiYiJ9."
                            "k2dLzBO9ogXmKRZeBymNUTyh5TK8EPnKoots6bvM0bg");
}
END_TEST

START_TEST(test_refused) {
        uint8_t key[32] = {};
        char *t = NULL;

        ck_assert_int_eq(slurm_jwt_mint(key, sizeof(key), "", 0, 60, &t), -EINVAL);
        ck_assert_int_eq(slurm_jwt_mint(key, sizeof(key), NULL, 0, 60, &t), -EINVAL);
        ck_assert_int_eq(slurm_jwt_mint(key, sizeof(key), "a\nb", 0, 60, &t), -EINVAL);
        ck_assert_int_eq(slurm_jwt_mint(key, 0, "u", 0, 60, &t), -EINVAL);
        ck_assert_int_eq(slurm_jwt_mint(key, sizeof(key), "u", 0, 0, &t), -EINVAL);
        ck_assert_int_eq(slurm_jwt_mint(key, sizeof(key), "u", UINT64_MAX, 60, &t), -EINVAL);
        ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_base64url) {
        static const struct { const char *in, *out; } v[] = {
                { "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" }, { "foob", "Zm9vYg" },
                { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" }, { "\xfb\xff", "-_8" },
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                _cleanup_free_ char *s = NULL;
                ck_assert_int_eq(base64url_encode(v[i].in, strlen(v[i].in), &s), 0);
                ck_assert_str_eq(s, v[i].out);
        }
}
END_TEST

static void write_key(const char *path, const char *data, size_t len, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, data, len), (ssize_t) len);
        ck_assert_int_eq(fchmod(fd, mode), 0);
        close(fd);
}

START_TEST(test_key_file) {
        TestTmpdir d;
        char path[128];
        _cleanup_free_ uint8_t *key = NULL;
        size_t len = 0;

        test_tmpdir_create(&d, "slurm-jwt");
        snprintf(path, sizeof(path), "%s/jwt.key", d.path);

        write_key(path, "\0\1secret", 8, 0600);
        ck_assert_int_eq(slurm_jwt_key_load(path, &key, &len), 0);
        ck_assert_uint_eq(len, 8);
        ck_assert_int_eq(memcmp(key, "\0\1secret", 8), 0);

        /* Others may read it: anyone could forge tokens, so it is refused. */
        write_key(path, "secret", 6, 0604);
        ck_assert_int_eq(slurm_jwt_key_load(path, &key, &len), -EPERM);
        write_key(path, "", 0, 0600);
        ck_assert_int_eq(slurm_jwt_key_load(path, &key, &len), -EMSGSIZE);
        ck_assert_int_eq(slurm_jwt_key_load(d.path, &key, &len), -EBADFD);
        snprintf(path, sizeof(path), "%s/missing", d.path);
        ck_assert_int_eq(slurm_jwt_key_load(path, &key, &len), -ENOENT);
        test_tmpdir_remove(&d);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("slurm-jwt");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_known_vector);
        tcase_add_test(tc, test_user_escaped);
        tcase_add_test(tc, test_refused);
        tcase_add_test(tc, test_base64url);
        tcase_add_test(tc, test_key_file);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(suite());
}
