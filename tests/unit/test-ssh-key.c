/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "ssh-session.h"

/* ssh_key_check() on keys made by ssh-keygen: what libssh2 1.10 can sign with passes, RSA (which
 * it signs only with SHA-1, refused by OpenSSH) and keys it cannot use are refused with a
 * sentence that says why. */

static char dir[] = "/tmp/test-ssh-key-XXXXXX";

static char *keygen(const char *name, const char *args) {
        char *path = NULL, *cmd = NULL;

        ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
        ck_assert_int_ge(asprintf(&cmd, "ssh-keygen -q %s -f %s </dev/null >/dev/null 2>&1", args, path), 0);
        ck_assert_int_eq(system(cmd), 0);
        free(cmd);
        return path;
}

static void check_refused(const char *path, const char *want) {
        _cleanup_free_ char *error = NULL;

        ck_assert_int_lt(ssh_key_check(path, &error), 0);
        ck_assert_ptr_nonnull(error);
        ck_assert_msg(strstr(error, want), "\"%s\" does not say \"%s\"", error, want);
}

START_TEST(test_usable_keys) {
        const char *args[] = { "-t ed25519 -N ''", "-t ecdsa -b 256 -N ''", "-t ecdsa -b 521 -N ''",
                               "-t ecdsa -b 384 -N '' -m PEM" };

        for (size_t i = 0; i < ELEMENTSOF(args); i++) {
                char name[16];
                _cleanup_free_ char *path = NULL, *error = NULL;

                snprintf(name, sizeof name, "ok%zu", i);
                path = keygen(name, args[i]);
                ck_assert_msg(ssh_key_check(path, &error) == 0, "%s: %s", args[i], strna(error));
        }
}
END_TEST

START_TEST(test_refused_keys) {
        _cleanup_free_ char *rsa = keygen("rsa", "-t rsa -b 2048 -N ''");
        _cleanup_free_ char *rsa_pem = keygen("rsa-pem", "-t rsa -b 2048 -N '' -m PEM");
        _cleanup_free_ char *locked = keygen("locked", "-t ed25519 -N secret");
        _cleanup_free_ char *garbage = NULL, *missing = NULL;
        FILE *f;

        check_refused(rsa, "RSA");
        check_refused(rsa, "SHA-1");
        check_refused(rsa_pem, "RSA");
        check_refused(locked, "passphrase");
        ck_assert_int_ge(asprintf(&garbage, "%s/garbage", dir), 0);
        f = fopen(garbage, "we");
        ck_assert_ptr_nonnull(f);
        fputs("-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----\n", f);
        fclose(f);
        check_refused(garbage, "not an OpenSSH private key");
        ck_assert_int_ge(asprintf(&missing, "%s/missing", dir), 0);
        check_refused(missing, "cannot read");
}
END_TEST

int main(void) {
        Suite *s = suite_create("ssh-key");
        TCase *tc = tcase_create("core");
        SRunner *sr;
        char *cmd = NULL;
        int failed;

        if (system("command -v ssh-keygen >/dev/null") != 0)
                return 77;   /* skipped */
        if (!mkdtemp(dir))
                return EXIT_FAILURE;
        tcase_add_test(tc, test_usable_keys);
        tcase_add_test(tc, test_refused_keys);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_set_fork_status(sr, CK_NOFORK);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        if (asprintf(&cmd, "rm -rf %s", dir) >= 0 && system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", dir);
        free(cmd);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
