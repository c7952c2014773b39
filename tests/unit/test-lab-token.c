/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs-util.h"
#include "lab-token.h"
#include "macro.h"
#include "test-main.h"

/* Lab access tokens: the key made once and private, tokens that open exactly their members, and
 * refusals for another key, expiry and tampering. */

START_TEST(test_key_and_tokens) {
        char dir[] = "/tmp/test-lab-token-XXXXXX";
        uint8_t key[LAB_TOKEN_KEY_SIZE], again[LAB_TOKEN_KEY_SIZE], other[LAB_TOKEN_KEY_SIZE] = { 1 };
        char *members[] = { (char *) "desktop", (char *) "web", NULL };
        _cleanup_free_ char *token = NULL, *path = NULL;
        _cleanup_(lab_token_claims_freep) LabTokenClaims *c = NULL;
        LabTokenClaims *none = NULL;
        const char *reason = NULL;
        struct stat st;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_eq(lab_token_key_load(dir, false, key), -ENOENT);
        ck_assert_int_eq(lab_token_key_load(dir, true, key), 0);
        ck_assert_int_eq(lab_token_key_load(dir, false, again), 0);
        ck_assert(memcmp(key, again, sizeof(key)) == 0);
        ck_assert_int_ge(asprintf(&path, "%s/%s", dir, LAB_TOKEN_KEY_FILE), 0);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);

        ck_assert_int_eq(lab_token_mint(key, "i-1", 1000, members, 5000, 600, &token), 0);
        ck_assert_int_eq(lab_token_verify(key, token, 5100, &c, &reason), 0);
        ck_assert_str_eq(c->instance, "i-1");
        ck_assert_uint_eq(c->uid, 1000);
        ck_assert_uint_eq(c->expires, 5600);
        ck_assert(lab_token_opens(c, "web"));
        ck_assert(!lab_token_opens(c, "db"));

        ck_assert_int_eq(lab_token_verify(key, token, 5600, &none, &reason), -EACCES);
        ck_assert_str_eq(reason, "the token has expired");
        ck_assert_int_eq(lab_token_verify(other, token, 5100, &none, &reason), -EACCES);
        token[strlen(token) - 3] ^= 1;
        ck_assert_int_eq(lab_token_verify(key, token, 5100, &none, &reason), -EACCES);
        ck_assert_int_eq(lab_token_verify(key, "garbage", 5100, &none, &reason), -EACCES);
        ck_assert_ptr_null(none);

        /* A key others could read is no key. */
        ck_assert_int_eq(chmod(path, 0644), 0);
        ck_assert_int_eq(lab_token_key_load(dir, true, again), -EPERM);
        ck_assert_int_eq(rm_rf(dir), 0);
}
END_TEST

int main(void) {
        Suite *s = suite_create("lab-token");
        TCase *tc = tcase_create("lab-token");

        tcase_add_test(tc, test_key_and_tokens);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
