/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <locale.h>
#include <stdlib.h>

#include "ctl-spec.h"
#include "ctl-table.h"
#include "ctl-util.h"
#include "macro.h"
#include "test-main.h"

START_TEST(test_parse_size) {
        uint64_t v;

        ck_assert_int_eq(ctl_parse_size("512", &v), 0);
        ck_assert_uint_eq(v, 512);
        ck_assert_int_eq(ctl_parse_size("512M", &v), 0);
        ck_assert_uint_eq(v, UINT64_C(512) << 20);
        ck_assert_int_eq(ctl_parse_size("2G", &v), 0);
        ck_assert_uint_eq(v, UINT64_C(2) << 30);
        ck_assert_int_eq(ctl_parse_size("1.5G", &v), 0);
        ck_assert_uint_eq(v, UINT64_C(3) << 29);
        ck_assert_int_eq(ctl_parse_size("4k", &v), 0);
        ck_assert_uint_eq(v, 4096);
        ck_assert_int_eq(ctl_parse_size("1GiB", &v), 0);
        ck_assert_uint_eq(v, UINT64_C(1) << 30);
        ck_assert_int_eq(ctl_parse_size("0", &v), 0);
        ck_assert_uint_eq(v, 0);

        ck_assert_int_eq(ctl_parse_size("", &v), -EINVAL);
        ck_assert_int_eq(ctl_parse_size("-1M", &v), -EINVAL);
        ck_assert_int_eq(ctl_parse_size(" 1M", &v), -EINVAL);
        ck_assert_int_eq(ctl_parse_size("1X", &v), -EINVAL);
        ck_assert_int_eq(ctl_parse_size("1MM", &v), -EINVAL);
        ck_assert_int_eq(ctl_parse_size("1.5", &v), -EINVAL);
        ck_assert_int_eq(ctl_parse_size("1.", &v), -EINVAL);
        ck_assert_int_eq(ctl_parse_size("M", &v), -EINVAL);
        ck_assert_int_eq(ctl_parse_size("16E", &v), -ERANGE);
        ck_assert_int_eq(ctl_parse_size("99999999999999999999999", &v), -ERANGE);
}
END_TEST

START_TEST(test_parse_timespan) {
        uint64_t v;

        ck_assert_int_eq(parse_timespan_sec("90", &v), 0);
        ck_assert_uint_eq(v, 90);
        ck_assert_int_eq(parse_timespan_sec("90s", &v), 0);
        ck_assert_uint_eq(v, 90);
        ck_assert_int_eq(parse_timespan_sec("5min", &v), 0);
        ck_assert_uint_eq(v, 300);
        ck_assert_int_eq(parse_timespan_sec("1h30min", &v), 0);
        ck_assert_uint_eq(v, 5400);
        ck_assert_int_eq(parse_timespan_sec("1h 30m 5s", &v), 0);
        ck_assert_uint_eq(v, 5405);
        ck_assert_int_eq(parse_timespan_sec("2d", &v), 0);
        ck_assert_uint_eq(v, 172800);

        ck_assert_int_eq(parse_timespan_sec("", &v), -EINVAL);
        ck_assert_int_eq(parse_timespan_sec("-5", &v), -EINVAL);
        ck_assert_int_eq(parse_timespan_sec("5x", &v), -EINVAL);
        ck_assert_int_eq(parse_timespan_sec("5 minutes", &v), -EINVAL);
        ck_assert_int_eq(parse_timespan_sec("min", &v), -EINVAL);
        ck_assert_int_eq(parse_timespan_sec("99999999999999999999d", &v), -ERANGE);
        ck_assert_int_eq(parse_timespan_sec("999999999999999999d", &v), -ERANGE);
}
END_TEST

START_TEST(test_parse_cpus_boolean) {
        double d;

        ck_assert_int_eq(parse_cpus("0.5", &d), 0);
        ck_assert(d == 0.5);
        ck_assert_int_eq(parse_cpus("2", &d), 0);
        ck_assert(d == 2);
        ck_assert_int_eq(parse_cpus("-1", &d), -EINVAL);
        ck_assert_int_eq(parse_cpus("nan", &d), -EINVAL);
        ck_assert_int_eq(parse_cpus("inf", &d), -EINVAL);
        ck_assert_int_eq(parse_cpus("1e400", &d), -EINVAL);
        ck_assert_int_eq(parse_cpus("2x", &d), -EINVAL);
        ck_assert_int_eq(parse_cpus("", &d), -EINVAL);

        ck_assert_int_eq(parse_boolean("yes"), 1);
        ck_assert_int_eq(parse_boolean("Off"), 0);
        ck_assert_int_eq(parse_boolean("maybe"), -EINVAL);
}
END_TEST

START_TEST(test_format) {
        char b[FORMAT_BYTES_MAX], t[FORMAT_TIMESPAN_MAX];

        ck_assert_str_eq(format_bytes(b, sizeof(b), 100), "100B");
        ck_assert_str_eq(format_bytes(b, sizeof(b), UINT64_C(512) << 20), "512M");
        ck_assert_str_eq(format_bytes(b, sizeof(b), UINT64_C(3) << 29), "1.5G");
        ck_assert_str_eq(format_bytes(b, sizeof(b), UINT64_MAX), "15.9E");
        ck_assert_str_eq(format_timespan_sec(t, sizeof(t), 0), "0s");
        ck_assert_str_eq(format_timespan_sec(t, sizeof(t), 90), "1min 30s");
        ck_assert_str_eq(format_timespan_sec(t, sizeof(t), 90061), "1d 1h 1min 1s");
}
END_TEST

START_TEST(test_escape) {
        _cleanup_free_ char *a = escape_for_terminal("a\nb\x1b[31mc\\");
        _cleanup_free_ char *b = escape_for_terminal("caf\xc3\xa9 \xff");
        _cleanup_free_ char *c = escape_for_terminal("\xe2\x80\xae" "rtl");

        ck_assert_str_eq(a, "a\\nb\\x1b[31mc\\");
        ck_assert_str_eq(b, "caf\xc3\xa9 \\xff");
        ck_assert_str_eq(c, "\\u202ertl");
}
END_TEST

START_TEST(test_width_ellipsize) {
        _cleanup_free_ char *a = ellipsize("abcdefgh", 5, "…");
        _cleanup_free_ char *b = ellipsize("abc", 5, "…");
        _cleanup_free_ char *c = ellipsize("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 4, "…");   /* three wide chars */
        _cleanup_free_ char *d = ellipsize("abcdef", 2, "...");

        ck_assert_uint_eq(utf8_width("abc"), 3);
        ck_assert_uint_eq(utf8_width("caf\xc3\xa9"), 4);
        ck_assert_uint_eq(utf8_width("\xe6\x97\xa5\xe6\x9c\xac"), 4);
        ck_assert_str_eq(a, "abcd…");
        ck_assert_str_eq(b, "abc");
        ck_assert_str_eq(c, "\xe6\x97\xa5…");
        ck_assert_str_eq(d, "ab");
}
END_TEST

static char *table_to_string(Table *t) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(table_print(t, f), 0);
        fclose(f);
        return buf;
}

START_TEST(test_table) {
        _cleanup_table_free_ Table *t = table_new("NAME", "IMAGE", "DESCRIPTION", NULL);
        _cleanup_free_ char *s1 = NULL, *s2 = NULL, *s3 = NULL;

        unsetenv("COLUMNS");
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(table_add_row(t, "hello", "busybox", "Says hello"), 0);
        ck_assert_int_eq(table_add_row(t, "a", NULL, "line\nbreak"), 0);
        ck_assert_uint_eq(table_get_rows(t), 2);
        table_set_width(t, 0);

        s1 = table_to_string(t);
        ck_assert_str_eq(s1,
                         "NAME   IMAGE    DESCRIPTION\n"
                         "hello  busybox  Says hello\n"
                         "a      -        line\\nbreak\n");

        /* Too narrow: the shrinkable description gives way, with an ellipsis. */
        table_set_shrinkable(t, 2, 5);
        table_set_width(t, 22);
        s2 = table_to_string(t);
        ck_assert_str_eq(s2,
                         "NAME   IMAGE    DESCR…\n"
                         "hello  busybox  Says …\n"
                         "a      -        line\\…\n");

        table_set_header(t, false);
        table_set_width(t, 0);
        s3 = table_to_string(t);
        ck_assert_str_eq(s3,
                         "hello  busybox  Says hello\n"
                         "a      -        line\\nbreak\n");
}
END_TEST

static const char *json_text(json_object *o) {
        return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
}

START_TEST(test_spec_apply) {
        SpecChanges c = SPEC_CHANGES_INIT;
        json_object *spec = json_object_new_object(), *v;

        c.image = strdup("busybox");
        ck_assert_int_eq(strv_extend(&c.command, "echo"), 0);
        ck_assert_int_eq(strv_extend(&c.command, "hi"), 0);
        c.command_set = true;
        ck_assert_int_eq(strv_extend(&c.env_set, "A=1"), 0);
        ck_assert_int_eq(strv_extend(&c.env_set, "B=x=y"), 0);
        c.memory = 1024, c.memory_set = true;
        c.timeout_sec = 90, c.timeout_set = true;
        c.network = 1;
        ck_assert_int_eq(spec_apply(spec, &c), 0);
        ck_assert_str_eq(json_text(spec),
                         "{\"image\":\"busybox\",\"command\":[\"echo\",\"hi\"],"
                         "\"env\":{\"A\":\"1\",\"B\":\"x=y\"},\"network\":true,"
                         "\"resources\":{\"memory\":1024,\"timeout\":90}}");
        spec_changes_done(&c);

        /* An update: unset A, replace B, drop the memory limit, add a CPU limit; the rest stays. */
        c = (SpecChanges) SPEC_CHANGES_INIT;
        ck_assert_int_eq(strv_extend(&c.env_unset, "A"), 0);
        ck_assert_int_eq(strv_extend(&c.env_set, "B=2"), 0);
        c.memory_set = true;
        c.cpus = 1.5, c.cpus_set = true;
        ck_assert_int_eq(spec_apply(spec, &c), 0);
        ck_assert(json_object_object_get_ex(spec, "env", &v));
        ck_assert_str_eq(json_text(v), "{\"B\":\"2\"}");
        ck_assert(json_object_object_get_ex(spec, "resources", &v));
        ck_assert_str_eq(json_text(v), "{\"memory\":null,\"timeout\":90,\"cpus\":1.5}");
        ck_assert(json_object_object_get_ex(spec, "image", NULL));
        spec_changes_done(&c);

        /* An empty command line means the image's default: null. */
        c = (SpecChanges) SPEC_CHANGES_INIT;
        c.command_set = true;
        ck_assert_int_eq(spec_apply(spec, &c), 0);
        ck_assert(json_object_object_get_ex(spec, "command", &v));
        ck_assert_ptr_null(v);

        /* gatewayd shows unset parts as null; options fill them in. */
        json_object_object_add(spec, "env", NULL);
        json_object_object_add(spec, "resources", NULL);
        ck_assert_int_eq(strv_extend(&c.env_set, "C=3"), 0);
        c.timeout_sec = 5, c.timeout_set = true;
        c.command_set = false;
        ck_assert_int_eq(spec_apply(spec, &c), 0);
        ck_assert(json_object_object_get_ex(spec, "env", &v));
        ck_assert_str_eq(json_text(v), "{\"C\":\"3\"}");
        ck_assert(json_object_object_get_ex(spec, "resources", &v));
        ck_assert_str_eq(json_text(v), "{\"timeout\":5}");

        /* A spec of the wrong shape is refused, not mangled. */
        json_object_object_add(spec, "env", json_object_new_array());
        ck_assert_int_eq(spec_apply(spec, &c), -EINVAL);
        spec_changes_done(&c);
        json_object_put(spec);

        ck_assert_int_eq(env_assignment_is_valid("A=1"), 0);
        ck_assert_int_eq(env_assignment_is_valid("A="), 0);
        ck_assert_int_eq(env_assignment_is_valid("=1"), -EINVAL);
        ck_assert_int_eq(env_assignment_is_valid("A"), -EINVAL);
}
END_TEST

START_TEST(test_json_parse) {
        json_object *o = NULL;
        char *msg = NULL;

        ck_assert_int_eq(json_parse_text("{\"a\": 1}\n", &o, &msg), 0);
        json_object_put(o);
        ck_assert_int_eq(json_parse_text("{\"a\": 1} x", &o, &msg), -EINVAL);
        ck_assert_ptr_nonnull(msg);
        free(msg);
        msg = NULL;
        ck_assert_int_eq(json_parse_text("{\"a\": ", &o, &msg), -EINVAL);
        ck_assert_ptr_nonnull(msg);
        free(msg);
        msg = NULL;
        ck_assert_int_eq(json_parse_text("", &o, &msg), -EINVAL);
        free(msg);
}
END_TEST

int main(void) {
        Suite *s = suite_create("ctl-util");
        TCase *tc = tcase_create("core");

        /* Display widths of wide characters need a UTF-8 locale, whatever the caller's is. */
        if (!setlocale(LC_ALL, "C.UTF-8"))
                setlocale(LC_ALL, "");
        tcase_add_test(tc, test_parse_size);
        tcase_add_test(tc, test_parse_timespan);
        tcase_add_test(tc, test_parse_cpus_boolean);
        tcase_add_test(tc, test_format);
        tcase_add_test(tc, test_escape);
        tcase_add_test(tc, test_width_ellipsize);
        tcase_add_test(tc, test_table);
        tcase_add_test(tc, test_spec_apply);
        tcase_add_test(tc, test_json_parse);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
