/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "macro.h"
#include "sandbox.h"
#include "test-main.h"

static char root[64];

static void mk(const char *rel, char type, const char *target) {
        char p[256];
        snprintf(p, sizeof(p), "%s/%s", root, rel);
        if (type == 'd')
                ck_assert_int_eq(mkdir(p, 0755), 0);
        else if (type == 'f')
                ck_assert_int_ge(close(open(p, O_CREAT | O_WRONLY, 0644)), 0);
        else if (type == 'l')
                ck_assert_int_eq(symlink(target, p), 0);
        else if (type == 'p')
                ck_assert_int_eq(mkfifo(p, 0644), 0);
}

static void setup(void) {
        snprintf(root, sizeof(root), "/tmp/test-sandbox-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(root));
}

static void teardown(void) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        ck_assert_int_eq(system(cmd), 0);
}

/* Index of the option sequence a b c in argv, or -1. */
static int find3(char **argv, const char *a, const char *b, const char *c) {
        for (int i = 0; argv[i] && argv[i + 1] && argv[i + 2]; i++)
                if (streq(argv[i], a) && streq(argv[i + 1], b) && streq(argv[i + 2], c))
                        return i;
        return -1;
}

static int find(char **argv, const char *a) {
        for (int i = 0; argv[i]; i++)
                if (streq(argv[i], a))
                        return i;
        return -1;
}

/* network=true also sets a /tmp size: two variants from one helper */
static char **build(bool network) {
        static char * const command[] = { "python3", "main.py", NULL };
        SandboxParams p = {
                .bwrap = "/usr/bin/bwrap",
                .image_root = root,
                .init = "/usr/libexec/gateway-job-init",
                .data_path = "/spool/input/data.json",
                .params_path = "/spool/input/params.json",
                .workdir = "/app",
                .network = network,
                .tmp_size = network ? 1048576 : 0,
                .shm_size = network ? 524288 : 0,
                .json_status_fd = 3,
                .init_status_fd = 4,
                .lifeline_fd = 5,
                .seccomp_fd = network ? 0 : 6,      /* 0: none */
                .uid = 1000,
                .gid = 100,
                .command = command,
        };
        char **argv = NULL;

        ck_assert_int_eq(sandbox_build_argv(&p, &argv), 0);
        return argv;
}

START_TEST(test_root_entries) {
        char src[256];
        char **argv;
        int dash;

        mk("bin", 'l', "usr/bin");
        mk("usr", 'd', NULL);
        mk("etc", 'd', NULL);
        mk("proc", 'd', NULL);
        mk("tmp", 'd', NULL);
        mk("dev", 'd', NULL);
        mk("var", 'd', NULL);
        mk("var/lib", 'd', NULL);
        mk("var/lab", 'd', NULL);
        mk("var/input", 'd', NULL);
        mk("var/run", 'l', "/run");
        mk("fifo", 'p', NULL);
        mk("VERSION", 'f', NULL);

        argv = build(false);
        /* Not a lab member: /etc is the image's as a whole, /var/lab is just a directory. */
        snprintf(src, sizeof(src), "%s/etc", root);
        ck_assert_int_ge(find3(argv, "--ro-bind", src, "/etc"), 0);
        snprintf(src, sizeof(src), "%s/var/lab", root);
        ck_assert_int_ge(find3(argv, "--ro-bind", src, "/var/lab"), 0);
        ck_assert_int_lt(find(argv, "--bind"), 0);
        ck_assert_str_eq(argv[0], "/usr/bin/bwrap");
        ck_assert_int_ge(find3(argv, "--symlink", "usr/bin", "/bin"), 0);
        snprintf(src, sizeof(src), "%s/usr", root);
        ck_assert_int_ge(find3(argv, "--ro-bind", src, "/usr"), 0);
        snprintf(src, sizeof(src), "%s/VERSION", root);
        ck_assert_int_ge(find3(argv, "--ro-bind", src, "/VERSION"), 0);
        /* /var is rebuilt one level down so that /var/input can be created */
        snprintf(src, sizeof(src), "%s/var", root);
        ck_assert_int_lt(find3(argv, "--ro-bind", src, "/var"), 0);
        snprintf(src, sizeof(src), "%s/var/lib", root);
        ck_assert_int_ge(find3(argv, "--ro-bind", src, "/var/lib"), 0);
        ck_assert_int_ge(find3(argv, "--symlink", "/run", "/var/run"), 0);
        snprintf(src, sizeof(src), "%s/var/input", root);
        ck_assert_int_lt(find3(argv, "--ro-bind", src, "/var/input"), 0);
        ck_assert_int_ge(find3(argv, "--ro-bind", "/spool/input/data.json", "/var/input/data.json"), 0);
        ck_assert_int_ge(find3(argv, "--ro-bind", "/spool/input/params.json", "/var/input/params.json"), 0);
        /* replaced, not taken from the image; special files dropped */
        snprintf(src, sizeof(src), "%s/proc", root);
        ck_assert_int_lt(find(argv, src), 0);
        snprintf(src, sizeof(src), "%s/fifo", root);
        ck_assert_int_lt(find(argv, src), 0);
        ck_assert_int_ge(find(argv, "--proc"), 0);
        ck_assert_int_ge(find(argv, "--dev"), 0);
        ck_assert_int_ge(find(argv, "--tmpfs"), 0);
        ck_assert_int_lt(find(argv, "--size"), 0);
        /* a private, writable /dev/shm over the directory bwrap's --dev made */
        ck_assert_int_ge(find3(argv, "1777", "--tmpfs", "/dev/shm"), 0);
        ck_assert_int_gt(find3(argv, "1777", "--tmpfs", "/dev/shm"), find(argv, "--dev"));
        ck_assert_str_eq(argv[find3(argv, "1777", "--tmpfs", "/dev/shm") - 1], "--perms");

        ck_assert_int_ge(find(argv, "--unshare-net"), 0);
        ck_assert_int_ge(find(argv, "--unshare-pid"), 0);
        ck_assert_int_ge(find(argv, "--die-with-parent"), 0);
        ck_assert_int_ge(find(argv, "--as-pid-1"), 0);
        /* bwrap options, so before the "--" that ends them */
        ck_assert_int_ge(find3(argv, "--seccomp", "6", "--unshare-net"), 0);
        ck_assert_int_gt(find(argv, "--remount-ro"), find(argv, "--tmpfs"));
        ck_assert_int_ge(find3(argv, "--remount-ro", "/", "--chdir"), 0);
        ck_assert_int_ge(find3(argv, "--ro-bind", "/usr/libexec/gateway-job-init", SANDBOX_INIT_PATH), 0);

        dash = find(argv, "--");
        ck_assert_int_gt(dash, 0);
        ck_assert_str_eq(argv[dash + 1], SANDBOX_INIT_PATH);
        ck_assert_str_eq(argv[dash + 2], "4");
        ck_assert_str_eq(argv[dash + 3], "5");
        ck_assert_str_eq(argv[dash + 4], "1000");
        ck_assert_str_eq(argv[dash + 5], "100");
        ck_assert_str_eq(argv[dash + 6], "--");
        ck_assert_str_eq(argv[dash + 7], "python3");
        ck_assert_str_eq(argv[dash + 8], "main.py");
        ck_assert_ptr_null(argv[dash + 9]);
        strv_free(argv);
}
END_TEST

START_TEST(test_network_and_var_symlink) {
        char **argv;

        mk("var", 'l', "private/var");
        argv = build(true);
        ck_assert_int_lt(find(argv, "--unshare-net"), 0);
        ck_assert_int_lt(find(argv, "--seccomp"), 0);
        ck_assert_int_ge(find3(argv, "--size", "1048576", "--tmpfs"), 0);
        ck_assert_str_eq(argv[find3(argv, "--size", "1048576", "--tmpfs") + 3], "/tmp");
        ck_assert_int_ge(find3(argv, "--size", "524288", "--tmpfs"), 0);
        ck_assert_str_eq(argv[find3(argv, "--size", "524288", "--tmpfs") + 3], "/dev/shm");
        ck_assert_int_lt(find3(argv, "--symlink", "private/var", "/var"), 0);
        ck_assert_int_ge(find3(argv, "--dir", "/var", "--proc"), 0);
        strv_free(argv);
}
END_TEST

/* A program's squashfs at /program and its arguments at /var/input/arguments.json, bound after
 * the image's entries (an image's own /program is not carried in). */
START_TEST(test_program_layer) {
        static char * const command[] = { "python3", "/program/main.py", NULL };
        SandboxParams p = {
                .bwrap = "/usr/bin/bwrap",
                .image_root = root,
                .init = "/usr/libexec/gateway-job-init",
                .data_path = "/spool/input/data.json",
                .params_path = "/spool/input/params.json",
                .program_root = "/run/gatewayd/images/1-2/root",
                .arguments_path = "/spool/input/arguments.json",
                .workdir = "/program",
                .command = command,
        };
        char **argv = NULL;
        int bind;

        mk("program", 'd', NULL);
        ck_assert_int_eq(sandbox_build_argv(&p, &argv), 0);
        bind = find3(argv, "--ro-bind", "/run/gatewayd/images/1-2/root", "/program");
        ck_assert_int_ge(bind, 0);
        ck_assert_int_gt(bind, find3(argv, "--dir", "/var/input", "--ro-bind"));
        ck_assert_int_ge(find3(argv, "--ro-bind", "/spool/input/arguments.json", "/var/input/arguments.json"), 0);
        ck_assert_int_ge(find3(argv, "--remount-ro", "/", "--chdir"), 0);
        {
                char from[128];
                snprintf(from, sizeof(from), "%s/program", root);
                ck_assert_int_lt(find3(argv, "--ro-bind", from, "/program"), 0);
        }
        strv_free(argv);
}
END_TEST

/* A lab member: /etc rebuilt entry by entry with the instance's hosts file bound over it, the
 * writable layer at /var/lab, the member's host name. */
START_TEST(test_lab_member) {
        static char * const command[] = { "httpd", NULL };
        SandboxParams p = {
                .bwrap = "/usr/bin/bwrap", .image_root = root, .init = "/init",
                .data_path = "/d", .params_path = "/p", .workdir = "/",
                .hostname = "web", .hosts_path = "/state/labs/x/hosts", .writable_path = "/state/labs/x/web.data",
                .network = true, .json_status_fd = 3, .init_status_fd = 4, .lifeline_fd = 5, .seccomp_fd = 6,
                .uid = 1000, .gid = 100, .command = command,
        };
        char **argv = NULL, path[256];
        int i;

        mk("etc", 'd', NULL);
        mk("etc/passwd", 'f', NULL);
        mk("etc/hosts", 'f', NULL);
        mk("etc/resolv.conf", 'f', NULL);
        mk("var", 'd', NULL);
        mk("var/lab", 'd', NULL);
        mk("var/lib", 'd', NULL);
        ck_assert_int_eq(sandbox_build_argv(&p, &argv), 0);
        ck_assert_int_lt(find(argv, "--unshare-net"), 0);
        ck_assert_str_eq(argv[find(argv, "--hostname") + 1], "web");
        snprintf(path, sizeof(path), "%s/etc/passwd", root);
        ck_assert_int_ge(find3(argv, "--ro-bind", path, "/etc/passwd"), 0);
        snprintf(path, sizeof(path), "%s/etc/hosts", root);
        ck_assert_int_lt(find3(argv, "--ro-bind", path, "/etc/hosts"), 0);     /* the image's is not used */
        snprintf(path, sizeof(path), "%s/etc", root);
        ck_assert_int_lt(find3(argv, "--ro-bind", path, "/etc"), 0);
        ck_assert_int_ge(find3(argv, "--dir", "/etc", "--ro-bind"), 0);
        i = find3(argv, "--ro-bind", "/state/labs/x/hosts", "/etc/hosts");
        ck_assert_int_ge(i, 0);
        /* no network out: no resolver, not even the image's */
        snprintf(path, sizeof(path), "%s/etc/resolv.conf", root);
        ck_assert_int_lt(find3(argv, "--ro-bind", path, "/etc/resolv.conf"), 0);
        ck_assert_int_lt(find(argv, "/etc/resolv.conf"), 0);
        snprintf(path, sizeof(path), "%s/var/lab", root);
        ck_assert_int_lt(find3(argv, "--ro-bind", path, "/var/lab"), 0);      /* the member's layer instead */
        snprintf(path, sizeof(path), "%s/var/lib", root);
        ck_assert_int_ge(find3(argv, "--ro-bind", path, "/var/lib"), 0);
        i = find3(argv, "--bind", "/state/labs/x/web.data", "/var/lab");
        ck_assert_int_ge(i, 0);
        ck_assert_int_lt(i, find(argv, "--remount-ro"));
        strv_free(argv);
}
END_TEST

/* An outbound member: the instance's resolver file at /etc/resolv.conf, never the image's (a
 * symlink here, as systemd images have it). */
START_TEST(test_lab_member_resolv) {
        static char * const command[] = { "httpd", NULL };
        SandboxParams p = {
                .bwrap = "/usr/bin/bwrap", .image_root = root, .init = "/init",
                .data_path = "/d", .params_path = "/p", .workdir = "/",
                .hostname = "web", .hosts_path = "/state/labs/x/hosts", .resolv_path = "/state/labs/x/resolv.conf",
                .writable_path = "/state/labs/x/web.data",
                .network = true, .json_status_fd = 3, .init_status_fd = 4, .lifeline_fd = 5, .seccomp_fd = 6,
                .uid = 1000, .gid = 100, .command = command,
        };
        char **argv = NULL;
        int i;

        mk("etc", 'd', NULL);
        mk("etc/resolv.conf", 'l', "../run/systemd/resolve/stub-resolv.conf");
        ck_assert_int_eq(sandbox_build_argv(&p, &argv), 0);
        ck_assert_int_lt(find3(argv, "--symlink", "../run/systemd/resolve/stub-resolv.conf", "/etc/resolv.conf"), 0);
        i = find3(argv, "--ro-bind", "/state/labs/x/resolv.conf", "/etc/resolv.conf");
        ck_assert_int_ge(i, 0);
        ck_assert_int_gt(i, find3(argv, "--dir", "/etc", "--ro-bind"));
        ck_assert_int_lt(i, find(argv, "--remount-ro"));
        strv_free(argv);
}
END_TEST

/* A job with network, not a lab member: the host's hosts and resolver files (as the runner
 * found them) over an /etc rebuilt without the image's; the image's /var/lab stays. Without
 * host files it goes without, never with the image's. */
START_TEST(test_network_host_name_files) {
        static char * const command[] = { "run", NULL };
        SandboxParams p = {
                .bwrap = "/usr/bin/bwrap", .image_root = root, .init = "/init",
                .data_path = "/d", .params_path = "/p", .workdir = "/",
                .hosts_path = "/etc/hosts", .resolv_path = "/run/systemd/resolve/stub-resolv.conf",
                .network = true, .command = command,
        };
        char **argv = NULL, path[256];
        int i;

        mk("etc", 'd', NULL);
        mk("etc/passwd", 'f', NULL);
        mk("etc/hosts", 'f', NULL);
        mk("etc/resolv.conf", 'f', NULL);
        mk("var", 'd', NULL);
        mk("var/lab", 'd', NULL);
        ck_assert_int_eq(sandbox_build_argv(&p, &argv), 0);
        ck_assert_int_lt(find(argv, "--unshare-net"), 0);
        snprintf(path, sizeof(path), "%s/etc", root);
        ck_assert_int_lt(find3(argv, "--ro-bind", path, "/etc"), 0);
        snprintf(path, sizeof(path), "%s/etc/passwd", root);
        ck_assert_int_ge(find3(argv, "--ro-bind", path, "/etc/passwd"), 0);
        snprintf(path, sizeof(path), "%s/etc/hosts", root);
        ck_assert_int_lt(find(argv, path), 0);
        snprintf(path, sizeof(path), "%s/etc/resolv.conf", root);
        ck_assert_int_lt(find(argv, path), 0);
        i = find3(argv, "--ro-bind", "/etc/hosts", "/etc/hosts");
        ck_assert_int_ge(i, 0);
        ck_assert_int_lt(i, find(argv, "--remount-ro"));
        i = find3(argv, "--ro-bind", "/run/systemd/resolve/stub-resolv.conf", "/etc/resolv.conf");
        ck_assert_int_ge(i, 0);
        ck_assert_int_lt(i, find(argv, "--remount-ro"));
        snprintf(path, sizeof(path), "%s/var/lab", root);
        ck_assert_int_ge(find3(argv, "--ro-bind", path, "/var/lab"), 0);      /* not a lab member */
        ck_assert_int_lt(find(argv, "--bind"), 0);
        strv_free(argv);

        /* the host has neither: none at all */
        p.hosts_path = p.resolv_path = NULL;
        ck_assert_int_eq(sandbox_build_argv(&p, &argv), 0);
        ck_assert_int_lt(find(argv, "/etc/hosts"), 0);
        ck_assert_int_lt(find(argv, "/etc/resolv.conf"), 0);
        snprintf(path, sizeof(path), "%s/etc/passwd", root);
        ck_assert_int_ge(find3(argv, "--ro-bind", path, "/etc/passwd"), 0);
        strv_free(argv);

        /* without network: the image's /etc as a whole, as before */
        p.network = false;
        ck_assert_int_eq(sandbox_build_argv(&p, &argv), 0);
        snprintf(path, sizeof(path), "%s/etc", root);
        ck_assert_int_ge(find3(argv, "--ro-bind", path, "/etc"), 0);
        ck_assert_int_lt(find(argv, "/etc/resolv.conf"), 0);
        strv_free(argv);
}
END_TEST

START_TEST(test_missing_root) {
        SandboxParams p = { .bwrap = "b", .image_root = "/nonexistent/root", .init = "i",
                            .data_path = "d", .params_path = "p", .workdir = "/" };
        char **argv = NULL;

        ck_assert_int_eq(sandbox_build_argv(&p, &argv), -ENOENT);
        ck_assert_ptr_null(argv);
}
END_TEST

/* The result files directory: the worker's tmpfs bound writable at /var/runtime/output, on a
 * /var/runtime of the sandbox's own (an image's /var/runtime is not carried in). */
START_TEST(test_result_files_dir) {
        static char * const command[] = { "run", NULL };
        SandboxParams p = {
                .bwrap = "/usr/bin/bwrap", .image_root = root, .init = "/usr/libexec/gateway-job-init",
                .data_path = "/spool/input/data.json", .params_path = "/spool/input/params.json",
                .output_path = "/run/gatewayd/worker/output/42", .workdir = "/", .command = command,
        };
        char **argv = NULL, from[128];
        int bind;

        mk("var", 'd', NULL);
        mk("var/runtime", 'd', NULL);
        ck_assert_int_eq(sandbox_build_argv(&p, &argv), 0);
        bind = find3(argv, "--bind", "/run/gatewayd/worker/output/42", "/var/runtime/output");
        ck_assert_int_ge(bind, 0);
        ck_assert_int_eq(find3(argv, "--dir", "/var/runtime", "--bind"), bind - 2);
        ck_assert_int_lt(bind, find3(argv, "--remount-ro", "/", "--chdir"));
        snprintf(from, sizeof(from), "%s/var/runtime", root);
        ck_assert_int_lt(find3(argv, "--ro-bind", from, "/var/runtime"), 0);
        strv_free(argv);

        /* none: no bind */
        p.output_path = NULL;
        ck_assert_int_eq(sandbox_build_argv(&p, &argv), 0);
        ck_assert_int_lt(find(argv, "/var/runtime/output"), 0);
        strv_free(argv);
}
END_TEST

/* A sandbox root of the image's own (sandbox-root.h): bound at / first, the image's entries are
 * not looked at (the image root here does not even exist), and nothing is made in it. */
START_TEST(test_own_root) {
        static char * const command[] = { "true", NULL };
        SandboxParams p = {
                .bwrap = "/usr/bin/bwrap",
                .image_root = "/nonexistent",
                .root = "/run/gatewayd/worker/images/1-2/derived-sandbox-1-3f/root",
                .init = "/usr/libexec/gateway-job-init",
                .data_path = "/spool/input/data.json",
                .params_path = "/spool/input/params.json",
                .program_root = "/run/p",
                .arguments_path = "/spool/input/arguments.json",
                .output_path = "/run/out",
                .hosts_path = "/run/hosts",
                .resolv_path = "/run/resolv",
                .writable_path = "/run/w",
                .workdir = "/",
                .command = command,
        };
        char **argv = NULL;
        int rootbind;

        ck_assert_int_eq(sandbox_root_flags(&p), _SANDBOX_ROOT_FLAGS_MAX - 1);
        ck_assert_int_eq(sandbox_build_argv(&p, &argv), 0);
        rootbind = find3(argv, "--ro-bind", p.root, "/");
        ck_assert_int_ge(rootbind, 0);
        for (int i = 0; i < rootbind; i++)
                ck_assert(!streq(argv[i], "--ro-bind") && !streq(argv[i], "--bind"));
        ck_assert_int_lt(find(argv, "--dir"), 0);
        ck_assert_int_lt(find(argv, "--symlink"), 0);
        ck_assert_int_lt(find(argv, "--remount-ro"), 0);
        ck_assert_int_gt(find3(argv, "--ro-bind", "/run/hosts", "/etc/hosts"), rootbind);
        ck_assert_int_gt(find3(argv, "--ro-bind", "/run/resolv", "/etc/resolv.conf"), rootbind);
        ck_assert_int_gt(find3(argv, "--bind", "/run/out", "/var/runtime/output"), rootbind);
        ck_assert_int_gt(find3(argv, "--ro-bind", "/run/p", "/program"), rootbind);
        ck_assert_int_gt(find3(argv, "--bind", "/run/w", SANDBOX_WRITABLE_PATH), rootbind);
        ck_assert_int_gt(find3(argv, "--ro-bind", "/spool/input/arguments.json", "/var/input/arguments.json"), rootbind);
        ck_assert_int_ge(find3(argv, "--proc", "/proc", "--dev"), 0);
        ck_assert_int_ge(find3(argv, "1777", "--tmpfs", "/tmp"), 0);
        strv_free(argv);

        /* what the root's variant depends on */
        p = (SandboxParams) { .data_path = "d" };
        ck_assert_int_eq(sandbox_root_flags(&p), 0);
        p.network = true;
        ck_assert_int_eq(sandbox_root_flags(&p), SANDBOX_ROOT_OWN_ETC);
        p.network = false;
        p.hosts_path = "/h";
        ck_assert_int_eq(sandbox_root_flags(&p), SANDBOX_ROOT_OWN_ETC | SANDBOX_ROOT_HOSTS);
}
END_TEST

int main(void) {
        Suite *s = suite_create("sandbox");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_root_entries);
        tcase_add_test(tc, test_network_and_var_symlink);
        tcase_add_test(tc, test_lab_member);
        tcase_add_test(tc, test_lab_member_resolv);
        tcase_add_test(tc, test_network_host_name_files);
        tcase_add_test(tc, test_missing_root);
        tcase_add_test(tc, test_program_layer);
        tcase_add_test(tc, test_result_files_dir);
        tcase_add_test(tc, test_own_root);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
