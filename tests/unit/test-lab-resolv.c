/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lab-resolv.h"
#include "test-main.h"
#include "test-tmpdir.h"

/* An outbound lab member's resolv.conf (lab-resolv.h) from host files written here: the host's
 * upstream IPv4 name servers, systemd-resolved's upstream file behind its stub, no loopback or
 * IPv6 server ever, LabNameServers over all of it, and a file that says why when there is none. */

static TestTmpdir tmp;
static char host[128], upstream[128];

static void setup(void) {
        test_tmpdir_create(&tmp, "lab-resolv");
        snprintf(host, sizeof(host), "%s/resolv.conf", tmp.path);
        snprintf(upstream, sizeof(upstream), "%s/upstream.conf", tmp.path);
}

static void teardown(void) {
        test_tmpdir_remove(&tmp);
}

static void put(const char *path, const char *text) {
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(fputs(text, f), 0);
        ck_assert_int_eq(fclose(f), 0);
}

/* The file's lines without its comments. */
static char *make(char * const *servers, int expect_r, char **ret_reason) {
        _cleanup_free_ char *text = NULL;
        char *reason = NULL, *out, *w;
        int r;

        r = lab_resolv_conf_make(servers, host, upstream, &text, &reason);
        ck_assert_int_eq(r, expect_r);
        ck_assert(text[0] == '#');      /* says where it comes from, or why there is nothing */
        out = w = calloc(1, strlen(text) + 1);
        ck_assert_ptr_nonnull(out);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
                if (line[0] != '#')
                        w += sprintf(w, "%s\n", line);
        if (ret_reason)
                *ret_reason = reason;
        else {
                ck_assert_ptr_null(reason);
                free(reason);
        }
        return out;
}

START_TEST(test_host_servers) {
        _cleanup_free_ char *t = NULL;

        put(host, "# a comment\n; another\n  nameserver 192.0.2.53  \nnameserver 127.0.0.1\nnameserver 2001:db8::53\n"
                  "nameserver fe80::1%eth0\nsearch example.org lab.example.org\noptions edns0 ndots:2\nsortlist 10.0.0.0\n"
                  "nameserver\t198.51.100.7\r\nnameserver 0.0.0.0\nnameserver 203.0.113.9\nnameserver 203.0.113.10\n");
        put(upstream, "nameserver 192.0.2.99\n");
        t = make(NULL, 1, NULL);
        /* loopback and IPv6 left out, at most three, the upstream file not needed */
        ck_assert_str_eq(t, "nameserver 192.0.2.53\nnameserver 198.51.100.7\nnameserver 203.0.113.9\n"
                            "search example.org lab.example.org\noptions edns0 ndots:2\n");
}
END_TEST

START_TEST(test_resolved_stub) {
        _cleanup_free_ char *t = NULL;

        /* systemd-resolved's stub-resolv.conf: its upstream file names the real servers */
        put(host, "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch stub.example\n");
        put(upstream, "nameserver 10.255.255.53\nnameserver ::1\nsearch corp.example\n");
        t = make(NULL, 1, NULL);
        ck_assert_str_eq(t, "nameserver 10.255.255.53\nsearch corp.example\n");
}
END_TEST

START_TEST(test_no_server) {
        _cleanup_free_ char *t = NULL, *reason = NULL, *text = NULL, *r2 = NULL;

        /* a local dnsmasq, no systemd-resolved */
        put(host, "nameserver 127.0.0.1\nsearch example.org\n");
        t = make(NULL, 0, &reason);
        ck_assert_str_eq(t, "");                /* no nameserver line: nothing that cannot answer */
        ck_assert_msg(strstr(reason, "names only loopback name servers (the host's own services"), "%s", reason);
        ck_assert_msg(strstr(reason, host), "%s", reason);
        ck_assert_msg(strstr(reason, "there is no ") && strstr(reason, upstream), "%s", reason);
        ck_assert_msg(strstr(reason, "LabNameServers"), "%s", reason);
        /* the member's file says so too */
        ck_assert_int_eq(lab_resolv_conf_make(NULL, host, upstream, &text, &r2), 0);
        ck_assert_ptr_nonnull(strstr(text, "LabNameServers"));

        /* no host file at all */
        ck_assert_int_eq(unlink(host), 0);
        text = mfree(text);
        r2 = mfree(r2);
        ck_assert_int_eq(lab_resolv_conf_make(NULL, host, upstream, &text, &r2), 0);
        ck_assert_msg(strstr(r2, "there is no ") && strstr(r2, host), "%s", r2);

        /* an upstream file with only IPv6 servers */
        put(upstream, "nameserver 2001:db8::1\n");
        text = mfree(text);
        r2 = mfree(r2);
        ck_assert_int_eq(lab_resolv_conf_make(NULL, host, upstream, &text, &r2), 0);
        ck_assert_msg(strstr(r2, upstream) && strstr(r2, "names only IPv6 name servers (labs have IPv4 only)"), "%s", r2);

        /* a file without nameserver lines */
        put(host, "search example.org\n");
        put(upstream, "nameserver 127.0.0.1\nnameserver 2001:db8::1\n");
        text = mfree(text);
        r2 = mfree(r2);
        ck_assert_int_eq(lab_resolv_conf_make(NULL, host, upstream, &text, &r2), 0);
        ck_assert_msg(strstr(r2, "names no IPv4 name server"), "%s", r2);
        ck_assert_msg(strstr(r2, "names only loopback and IPv6 name servers (loopback ones are the host's own "
                                 "services, which a lab cannot reach; labs have IPv4 only)"), "%s", r2);
}
END_TEST

START_TEST(test_configured_servers) {
        char *servers[] = { (char *) "192.0.2.53", (char *) "198.51.100.53", NULL };
        _cleanup_free_ char *t = NULL;

        /* over whatever the host has, even nothing */
        put(host, "nameserver 127.0.0.53\nsearch example.org\n");
        t = make(servers, 1, NULL);
        ck_assert_str_eq(t, "nameserver 192.0.2.53\nnameserver 198.51.100.53\n");
}
END_TEST

START_TEST(test_name_server_is_valid) {
        ck_assert(lab_name_server_is_valid("192.0.2.53"));
        ck_assert(lab_name_server_is_valid("10.0.0.1"));
        ck_assert(lab_name_server_is_valid("223.255.255.254"));
        ck_assert(!lab_name_server_is_valid("127.0.0.53"));
        ck_assert(!lab_name_server_is_valid("0.1.2.3"));
        ck_assert(!lab_name_server_is_valid("224.0.0.251"));
        ck_assert(!lab_name_server_is_valid("255.255.255.255"));
        ck_assert(!lab_name_server_is_valid("::1"));
        ck_assert(!lab_name_server_is_valid("2001:db8::53"));
        ck_assert(!lab_name_server_is_valid("192.0.2"));
        ck_assert(!lab_name_server_is_valid("192.0.2.53 "));
        ck_assert(!lab_name_server_is_valid("192.000.2.53"));
        ck_assert(!lab_name_server_is_valid(""));
}
END_TEST

int main(void) {
        Suite *s = suite_create("lab-resolv");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_host_servers);
        tcase_add_test(tc, test_resolved_stub);
        tcase_add_test(tc, test_no_server);
        tcase_add_test(tc, test_configured_servers);
        tcase_add_test(tc, test_name_server_is_valid);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
