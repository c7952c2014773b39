/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The parsers of munge authentication that run before munged is asked: the header's form
 * (munge-credential.c) and shifterimg login payloads (registry-logins.c). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "munge-credential.h"
#include "registry-logins.h"

START_TEST(test_credential_forms) {
        static const char *const bad[] = {
                "", "MUNGE:", "MUNGE::", "MUNGE:AAAA", "munge:AAAA:", "MUNGE:AAA:", "MUNGE:AAAA=:",
                "MUNGE:AB==:",          /* unused bits set: a second spelling of "AA==" */
                "MUNGE:AAB=:",          /* likewise for "AAA=" */
                "MUNGE:A=AA:", "MUNGE:AA*A:", "MUNGE:AAAA:x", "MUNGE:AA AA:", "garbage",
        };
        _cleanup_free_ char *cred = NULL, *cred2 = NULL, *big = NULL;
        char key[65], key2[65];

        ck_assert_int_eq(munge_credential_parse(" \tMUNGE:AAAA: ", &cred, key), 0);
        ck_assert_str_eq(cred, "MUNGE:AAAA:");
        ck_assert_uint_eq(strspn(key, "0123456789abcdef"), 64);
        ck_assert_int_eq(munge_credential_parse("MUNGE:AA==:", &cred2, key2), 0);
        ck_assert_str_ne(key, key2);
        cred = mfree(cred);
        ck_assert_int_eq(munge_credential_parse("MUNGE:AAAA:", &cred, key2), 0);
        ck_assert_str_eq(key, key2);    /* the same credential, the same replay-cache key */
        cred = mfree(cred);
        ck_assert_int_eq(munge_credential_parse("MUNGE:AAA=:", &cred, key2), 0);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(munge_credential_parse(bad[i], &cred, key) == -EINVAL, "accepted: %s", bad[i]);
        ck_assert_int_eq(munge_credential_parse(NULL, &cred, key), -EINVAL);

        big = malloc(MUNGE_CREDENTIAL_MAX + 16);
        ck_assert_ptr_nonnull(big);
        memcpy(big, "MUNGE:", 6);
        memset(big + 6, 'A', MUNGE_CREDENTIAL_MAX);
        strcpy(big + 6 + MUNGE_CREDENTIAL_MAX, ":");
        ck_assert_int_eq(munge_credential_parse(big, &cred, key), -EINVAL);
}
END_TEST

static RegistryLogins *logins(const char *payload) {
        RegistryLogins *l = NULL;

        ck_assert_int_eq(registry_logins_from_munge_payload(payload, strlen(payload), &l), 0);
        return l;
}

START_TEST(test_login_payloads) {
        _cleanup_(registry_logins_freep) RegistryLogins *l = NULL;
        const RegistryLogin *x;

        /* Shifter ignores payloads that are not its login object: no logins, no error */
        ck_assert_ptr_null(logins(""));
        ck_assert_ptr_null(logins("hello"));
        ck_assert_ptr_null(logins("[1]"));
        ck_assert_ptr_null(logins("{\"other\": 1}"));
        ck_assert_ptr_null(logins("{\"authorized_locations\": {\"default\": \"a:b\"}"));

        l = logins("{\"authorized_locations\": {\"Registry.Example.org:5000\": \"alice:s3cr:et\", \"default\": \"bob:pw\"}}");
        ck_assert_ptr_null(l->error);
        ck_assert_uint_eq(l->n, 2);
        x = registry_logins_find(l, "registry.example.org:5000");
        ck_assert_ptr_nonnull(x);
        ck_assert_str_eq(x->username, "alice");
        ck_assert_str_eq(x->password, "s3cr:et");      /* split at the first ':' only */
        x = registry_logins_find(l, "elsewhere.example.org");
        ck_assert_str_eq(x->username, "bob");
        ck_assert_ptr_eq(registry_logins_find(l, NULL), x);
        l = registry_logins_free(l);

        l = logins("{\"authorized_locations\": {\"r\": \"alice:\"}}");   /* an empty password is one */
        ck_assert_str_eq(registry_logins_find(l, "r")->password, "");
        ck_assert_ptr_null(registry_logins_find(l, "other"));
        l = registry_logins_free(l);

        /* malformed logins: an error a pull reports, and nothing to use */
        static const char *const bad[] = {
                "{\"authorized_locations\": 5}",
                "{\"authorized_locations\": {\"r\": \"nocolon\"}}",
                "{\"authorized_locations\": {\"r\": \":pw\"}}",
                "{\"authorized_locations\": {\"r\": 5}}",
                "{\"authorized_locations\": {\"\": \"a:b\"}}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                l = logins(bad[i]);
                ck_assert_msg(l && l->error, "no error for %s", bad[i]);
                ck_assert_ptr_null(strstr(l->error, "pw"));     /* no secret in the message */
                l = registry_logins_free(l);
        }
}
END_TEST

int main(void) {
        Suite *s = suite_create("munge");
        TCase *tc = tcase_create("parsers");
        SRunner *sr;
        int failed;

        tcase_add_test(tc, test_credential_forms);
        tcase_add_test(tc, test_login_payloads);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
