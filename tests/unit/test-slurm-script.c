/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Slurm batch script: exact text, quoting (checked by running it through /bin/sh), and the
 * inputs it refuses. */
#include <check.h>
#include <stdio.h>
#include <sys/wait.h>

#include "macro.h"
#include "slurm-script.h"
#include "test-main.h"

START_TEST(test_plain) {
        _cleanup_free_ char *s = NULL;
        SlurmScriptParams p = { .job_id = "j-42", .launcher = "/usr/libexec/gatewayd/gateway-slurm-launch",
                                .spool_dir = "/shared/spool/j-42" };

        ck_assert_int_eq(slurm_script_generate(&p, &s), 0);
        ck_assert_str_eq(s, "#!/bin/sh\n"
                            "# gatewayd job j-42: runs gateway-worker on its spool directory (docs/slurm.md)\n"
                            "exec '/usr/libexec/gatewayd/gateway-slurm-launch' '/shared/spool/j-42'\n");
}
END_TEST

START_TEST(test_quote) {
        static const struct { const char *in, *out; } v[] = {
                { "", "''" }, { "a b", "'a b'" }, { "it's", "'it'\\''s'" }, { "'", "''\\'''" },
                { "$(rm -rf /)`x`\\", "'$(rm -rf /)`x`\\'" },
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                _cleanup_free_ char *q = shell_quote(v[i].in);
                ck_assert_str_eq(q, v[i].out);
        }
}
END_TEST

/* The script's exec line run by sh with a printing launcher: the spool arrives as one argument,
 * byte for byte, whatever it contains. */
START_TEST(test_shell_roundtrip) {
        static const char *const spools[] = {
                "/spool/a b", "/spool/it's", "/spool/$(touch /tmp/pwned)", "/spool/`id`;\"x\"", "/spool/*?[a]",
                "/spool/\\n", "/spool/ünï",
        };
        for (size_t i = 0; i < ELEMENTSOF(spools); i++) {
                _cleanup_free_ char *s = NULL, *cmd = NULL, *q = NULL;
                char out[512] = {};
                FILE *f;
                size_t n;

                SlurmScriptParams p = { .job_id = "j", .launcher = "/usr/bin/printf", .spool_dir = spools[i] };
                ck_assert_int_eq(slurm_script_generate(&p, &s), 0);
                /* The quoted spool after the launcher, given to printf '%s' (a fixed format, so
                 * printf interprets nothing in it). */
                ck_assert_ptr_nonnull(strstr(s, "exec '/usr/bin/printf' "));
                char *line = strstr(s, "exec '/usr/bin/printf' ") + strlen("exec '/usr/bin/printf' ");
                ck_assert_int_ge(asprintf(&cmd, "exec /usr/bin/printf '%%s' %s", line), 0);
                q = shell_quote(cmd);
                _cleanup_free_ char *full = NULL;
                ck_assert_int_ge(asprintf(&full, "/bin/sh -c %s", q), 0);
                f = popen(full, "r");
                ck_assert_ptr_nonnull(f);
                n = fread(out, 1, sizeof(out) - 1, f);
                ck_assert_int_eq(pclose(f), 0);
                out[n] = 0;
                ck_assert_str_eq(out, spools[i]);
        }
}
END_TEST

START_TEST(test_refused) {
        char *s = NULL;
        SlurmScriptParams ok = { .job_id = "j-1", .launcher = "/l", .spool_dir = "/s" }, p;

        p = ok, p.spool_dir = "relative";
        ck_assert_int_eq(slurm_script_generate(&p, &s), -EINVAL);
        p = ok, p.spool_dir = "/a\nb";
        ck_assert_int_eq(slurm_script_generate(&p, &s), -EINVAL);
        p = ok, p.launcher = NULL;
        ck_assert_int_eq(slurm_script_generate(&p, &s), -EINVAL);
        p = ok, p.launcher = "gateway-slurm-launch";
        ck_assert_int_eq(slurm_script_generate(&p, &s), -EINVAL);
        p = ok, p.job_id = "j 1";
        ck_assert_int_eq(slurm_script_generate(&p, &s), -EINVAL);
        p = ok, p.job_id = "j\n# x";
        ck_assert_int_eq(slurm_script_generate(&p, &s), -EINVAL);
        p = ok, p.job_id = "";
        ck_assert_int_eq(slurm_script_generate(&p, &s), -EINVAL);
        ck_assert_int_eq(slurm_script_generate(NULL, &s), -EINVAL);
        ck_assert_ptr_null(s);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("slurm-script");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_plain);
        tcase_add_test(tc, test_quote);
        tcase_add_test(tc, test_shell_roundtrip);
        tcase_add_test(tc, test_refused);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(suite());
}
