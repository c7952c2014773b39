/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service.h"

static inline void json_object_putp(json_object **o) {
        json_object_put(*o);
}

static const char full_spec[] =
        "{\"name\":\"qaoa-solver\",\"image\":\"registry.example.org:5000/team/qaoa@sha256:0123abcd\","
        "\"description\":\"Solves things\",\"command\":[\"/bin/run\",\"--fast\",\"a b\"],"
        "\"env\":{\"ZETA\":\"last\",\"ALPHA\":\"x=y\",\"_under\":\"\",\"mid_9\":\"9\"},"
        "\"resources\":{\"memory\":1073741824,\"cpus\":1.5,\"timeout\":3600},\"network\":true}";

static Service *parse_ok(const char *text, const char *expected_name) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        json_object *o = json_tokener_parse(text);
        Service *s = NULL;
        int r;

        ck_assert_msg(o, "test bug: bad JSON %s", text);
        r = service_from_spec(o, expected_name, &s, &e);
        json_object_put(o);
        ck_assert_msg(r >= 0, "%s: unexpected error %s", text, strna(e.message));
        ck_assert(!gw_error_is_set(&e));
        return s;
}

/* Asserts the spec is refused as InvalidArgument with a message that starts with the field. */
static void parse_fails(const char *text, const char *expected_name, const char *field) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        json_object *o = json_tokener_parse(text);
        Service *s = NULL;
        int r;

        ck_assert_msg(o, "test bug: bad JSON %s", text);
        r = service_from_spec(o, expected_name, &s, &e);
        json_object_put(o);
        ck_assert_msg(r == -EINVAL, "%s: expected -EINVAL, got %i", text, r);
        ck_assert_ptr_null(s);
        ck_assert_int_eq(e.code, GW_ERROR_INVALID_ARGUMENT);
        ck_assert_ptr_nonnull(e.message);
        ck_assert_msg(strneq(e.message, field, strlen(field)) &&
                      (e.message[strlen(field)] == ':' || e.message[strlen(field)] == '['),
                      "%s: message '%s' does not name field '%s'", text, e.message, field);
}

START_TEST(test_full_spec) {
        _cleanup_(service_freep) Service *s = parse_ok(full_spec, NULL);

        ck_assert_str_eq(s->name, "qaoa-solver");
        ck_assert_str_eq(s->image, "registry.example.org:5000/team/qaoa@sha256:0123abcd");
        ck_assert_str_eq(s->description, "Solves things");
        ck_assert_uint_eq(strv_length(s->command), 3);
        ck_assert_str_eq(s->command[0], "/bin/run");
        ck_assert_str_eq(s->command[2], "a b");
        /* Sorted by key (ASCII: uppercase first), value may contain '='. */
        ck_assert_uint_eq(strv_length(s->env), 4);
        ck_assert_str_eq(s->env[0], "ALPHA=x=y");
        ck_assert_str_eq(s->env[1], "ZETA=last");
        ck_assert_str_eq(s->env[2], "_under=");
        ck_assert_str_eq(s->env[3], "mid_9=9");
        ck_assert_uint_eq(s->memory, 1073741824);
        ck_assert(s->cpus == 1.5);
        ck_assert_uint_eq(s->timeout_sec, 3600);
        ck_assert(s->network);
}
END_TEST

START_TEST(test_minimal_spec) {
        _cleanup_(service_freep) Service *s = parse_ok("{\"name\":\"a\",\"image\":\"busybox\"}", NULL);

        ck_assert_str_eq(s->name, "a");
        ck_assert_str_eq(s->description, "");
        ck_assert_ptr_null(s->command);
        ck_assert_ptr_null(s->env);
        ck_assert_uint_eq(s->memory, 0);
        ck_assert(s->cpus == 0);
        ck_assert_uint_eq(s->timeout_sec, 0);
        ck_assert(!s->network);

        /* Explicit nulls mean "unset", as a GET result shows them. */
        _cleanup_(service_freep) Service *t = parse_ok(
                "{\"name\":\"a\",\"image\":\"busybox\",\"command\":null,\"env\":null,\"resources\":null}", NULL);
        ck_assert_ptr_null(t->command);
        ck_assert_ptr_null(t->env);
        _cleanup_(service_freep) Service *u = parse_ok(
                "{\"name\":\"a\",\"image\":\"busybox\",\"resources\":{\"memory\":null,\"cpus\":null,\"timeout\":null}}", NULL);
        ck_assert_uint_eq(u->memory, 0);
        _cleanup_(service_freep) Service *v = parse_ok(
                "{\"name\":\"a\",\"image\":\"busybox\",\"resources\":{\"cpus\":2}}", NULL);
        ck_assert(v->cpus == 2.0);
        _cleanup_(service_freep) Service *w = parse_ok(
                "{\"name\":\"a\",\"image\":\"busybox\",\"env\":{}}", NULL);
        ck_assert_uint_eq(strv_length(w->env), 0);
}
END_TEST

START_TEST(test_expected_name) {
        _cleanup_(service_freep) Service *s = parse_ok("{\"image\":\"busybox\"}", "from-path");
        ck_assert_str_eq(s->name, "from-path");
        _cleanup_(service_freep) Service *t = parse_ok("{\"name\":\"same\",\"image\":\"busybox\"}", "same");
        ck_assert_str_eq(t->name, "same");

        parse_fails("{\"name\":\"other\",\"image\":\"busybox\"}", "same", "name");
        parse_fails("{\"image\":\"busybox\"}", "Bad_Name", "name");
        parse_fails("{\"image\":\"busybox\"}", NULL, "name");
}
END_TEST

START_TEST(test_timestamps_ignored) {
        _cleanup_(service_freep) Service *s = parse_ok(
                "{\"name\":\"a\",\"image\":\"b\",\"createdAt\":\"2020-01-01T00:00:00.000Z\",\"updatedAt\":42}", NULL);
        ck_assert_uint_eq(s->created_usec, 0);
        ck_assert_uint_eq(s->updated_usec, 0);
}
END_TEST

START_TEST(test_each_field_error_names_the_field) {
        /* Not an object at all. */
        parse_fails("[]", NULL, "service spec");
        parse_fails("\"x\"", NULL, "service spec");
        parse_fails("42", NULL, "service spec");
        {
                /* JSON null is a NULL json_object. */
                _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
                Service *s = NULL;
                ck_assert_int_eq(service_from_spec(NULL, NULL, &s, &e), -EINVAL);
                ck_assert(strneq(e.message, "service spec:", 13));
        }

        parse_fails("{\"image\":\"b\"}", NULL, "name");
        parse_fails("{\"name\":1,\"image\":\"b\"}", NULL, "name");
        parse_fails("{\"name\":null,\"image\":\"b\"}", NULL, "name");
        parse_fails("{\"name\":\"a\"}", NULL, "image");
        parse_fails("{\"name\":\"a\",\"image\":7}", NULL, "image");
        parse_fails("{\"name\":\"a\",\"image\":\"\"}", NULL, "image");
        parse_fails("{\"name\":\"a\",\"image\":\"/abs\"}", NULL, "image");
        parse_fails("{\"name\":\"a\",\"image\":\"trailing/\"}", NULL, "image");
        parse_fails("{\"name\":\"a\",\"image\":\":tag\"}", NULL, "image");
        parse_fails("{\"name\":\"a\",\"image\":\"@sha256:00\"}", NULL, "image");
        parse_fails("{\"name\":\"a\",\"image\":\"has space\"}", NULL, "image");
        parse_fails("{\"name\":\"a\",\"image\":\"semi;colon\"}", NULL, "image");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"description\":5}", NULL, "description");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"description\":null}", NULL, "description");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"command\":\"/bin/sh -c x\"}", NULL, "command");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"command\":[]}", NULL, "command");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"command\":[\"ok\",3]}", NULL, "command");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"command\":[null]}", NULL, "command");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"env\":[\"A=b\"]}", NULL, "env");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"env\":\"A=b\"}", NULL, "env");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"env\":{\"A\":1}}", NULL, "env.A");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"env\":{\"A\":null}}", NULL, "env.A");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"resources\":[]}", NULL, "resources");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"resources\":\"big\"}", NULL, "resources");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"resources\":{\"disk\":1}}", NULL, "resources.disk");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"resources\":{\"memory\":0}}", NULL, "resources.memory");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"resources\":{\"memory\":-1}}", NULL, "resources.memory");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"resources\":{\"memory\":1.5}}", NULL, "resources.memory");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"resources\":{\"memory\":\"1G\"}}", NULL, "resources.memory");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"resources\":{\"timeout\":0}}", NULL, "resources.timeout");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"resources\":{\"timeout\":true}}", NULL, "resources.timeout");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"resources\":{\"cpus\":0}}", NULL, "resources.cpus");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"resources\":{\"cpus\":-0.5}}", NULL, "resources.cpus");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"resources\":{\"cpus\":1e300}}", NULL, "resources.cpus");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"resources\":{\"cpus\":\"2\"}}", NULL, "resources.cpus");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"network\":1}", NULL, "network");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"network\":\"yes\"}", NULL, "network");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"network\":null}", NULL, "network");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"colour\":\"red\"}", NULL, "colour");
        parse_fails("{\"name\":\"a\",\"image\":\"b\",\"Name\":\"a\"}", NULL, "Name");
}
END_TEST

START_TEST(test_name_rules) {
        static const char *good[] = { "a", "0", "abc", "a-b", "a--b", "9lives", "x1-y2-z3",
                "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0" /* 63 */ };
        static const char *bad[] = { "", "-a", "a-", "-", "A", "aB", "a_b", "a.b", "a b", "a/b", "ä", "a\n",
                "..", "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz01" /* 64 */ };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                char spec[256];
                ck_assert_msg(service_name_is_valid(good[i]), "%s", good[i]);
                snprintf(spec, sizeof(spec), "{\"name\":\"%s\",\"image\":\"b\"}", good[i]);
                _cleanup_(service_freep) Service *s = parse_ok(spec, NULL);
                ck_assert_str_eq(s->name, good[i]);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object();
                _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
                Service *s = NULL;

                ck_assert_msg(!service_name_is_valid(bad[i]), "'%s' accepted", bad[i]);
                json_object_object_add(o, "name", json_object_new_string(bad[i]));
                json_object_object_add(o, "image", json_object_new_string("b"));
                ck_assert_int_eq(service_from_spec(o, NULL, &s, &e), -EINVAL);
                ck_assert(strneq(e.message, "name:", 5));
        }
}
END_TEST

START_TEST(test_env_names) {
        static const char *good[] = { "A", "_", "_1", "PATH", "lower_case", "A1B2", "x" };
        static const char *bad[] = { "", "1A", "9", "A-B", "A B", "A=B", "A.B", "Ä", "$A" };
        char long_name[300];

        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                ck_assert_msg(env_name_is_valid(good[i]), "%s", good[i]);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(json_object_putp) json_object *o = json_object_new_object(), *env = json_object_new_object();
                _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
                char want[64];
                Service *s = NULL;

                ck_assert_msg(!env_name_is_valid(bad[i]), "'%s' accepted", bad[i]);
                json_object_object_add(env, bad[i], json_object_new_string("v"));
                json_object_object_add(o, "name", json_object_new_string("a"));
                json_object_object_add(o, "image", json_object_new_string("b"));
                json_object_object_add(o, "env", json_object_get(env));
                ck_assert_int_eq(service_from_spec(o, NULL, &s, &e), -EINVAL);
                snprintf(want, sizeof(want), "env.%s:", bad[i]);
                ck_assert_msg(strneq(e.message, want, strlen(want)), "'%s' vs '%s'", e.message, want);
        }

        memset(long_name, 'A', 255);
        long_name[255] = 0;
        ck_assert(env_name_is_valid(long_name));
        long_name[255] = 'A';
        long_name[256] = 0;
        ck_assert(!env_name_is_valid(long_name));
}
END_TEST

static void assert_services_equal(const Service *a, const Service *b) {
        ck_assert_str_eq(a->name, b->name);
        ck_assert_str_eq(a->image, b->image);
        ck_assert_str_eq(a->description, b->description);
        ck_assert_uint_eq(strv_length(a->command), strv_length(b->command));
        ck_assert((a->command == NULL) == (b->command == NULL));
        for (size_t i = 0; a->command && a->command[i]; i++)
                ck_assert_str_eq(a->command[i], b->command[i]);
        ck_assert_uint_eq(strv_length(a->env), strv_length(b->env));
        for (size_t i = 0; a->env && a->env[i]; i++)
                ck_assert_str_eq(a->env[i], b->env[i]);
        ck_assert_uint_eq(a->memory, b->memory);
        ck_assert(a->cpus == b->cpus);
        ck_assert_uint_eq(a->timeout_sec, b->timeout_sec);
        ck_assert(a->network == b->network);
}

static void round_trip(const char *text) {
        _cleanup_(service_freep) Service *s = parse_ok(text, NULL), *t = NULL, *u = NULL;
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *spec = NULL, *full = NULL, *reparsed = NULL;

        /* spec → JSON → spec gives the same service. */
        spec = service_spec_to_json(s);
        ck_assert_ptr_nonnull(spec);
        ck_assert_int_ge(service_from_spec(spec, NULL, &t, &e), 0);
        assert_services_equal(s, t);

        /* The full record (with timestamps) as text, as GET returns it, parses back too. */
        s->created_usec = 1700000000123456ULL;
        s->updated_usec = 1700000001999999ULL;
        reparsed = json_tokener_parse(service_json(s));
        ck_assert_ptr_nonnull(reparsed);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(reparsed, "createdAt")), "2023-11-14T22:13:20.123Z");
        ck_assert_str_eq(json_object_get_string(json_object_object_get(reparsed, "updatedAt")), "2023-11-14T22:13:21.999Z");
        ck_assert_int_ge(service_from_spec(reparsed, s->name, &u, &e), 0);
        assert_services_equal(s, u);

        /* And the cached text is the serialization of service_to_json(). */
        full = service_to_json(s);
        ck_assert_str_eq(service_json(s), json_object_to_json_string_ext(full, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

START_TEST(test_round_trip) {
        round_trip(full_spec);
        round_trip("{\"name\":\"a\",\"image\":\"b\"}");
        round_trip("{\"name\":\"a\",\"image\":\"b\",\"resources\":{\"cpus\":0.1}}");
        round_trip("{\"name\":\"a\",\"image\":\"b\",\"resources\":{\"cpus\":0.30000000000000004}}");
        round_trip("{\"name\":\"a\",\"image\":\"b\",\"resources\":{\"memory\":9223372036854775807}}");
        round_trip("{\"name\":\"a\",\"image\":\"b\",\"description\":\"quotes \\\" slash / unicode \\u00e9 tab \\t\"}");
        round_trip("{\"name\":\"a\",\"image\":\"b\",\"env\":{\"EMPTY\":\"\"},\"command\":[\"\"]}");
}
END_TEST

START_TEST(test_json_cache) {
        _cleanup_(service_freep) Service *s = parse_ok("{\"name\":\"a\",\"image\":\"b\"}", NULL);
        const char *j1 = service_json(s);

        ck_assert_ptr_nonnull(j1);
        ck_assert_ptr_eq(service_json(s), j1);
        ck_assert_ptr_nonnull(strstr(j1, "\"description\":\"\""));
        free(s->description);
        s->description = strdup("changed");
        service_invalidate_json(s);
        ck_assert_ptr_nonnull(strstr(service_json(s), "\"description\":\"changed\""));
        service_free(NULL);
}
END_TEST

START_TEST(test_format_timestamp) {
        char buf[32];

        ck_assert_str_eq(format_timestamp_iso(buf, sizeof(buf), 0), "1970-01-01T00:00:00.000Z");
        ck_assert_str_eq(format_timestamp_iso(buf, sizeof(buf), 1000), "1970-01-01T00:00:00.001Z");
        ck_assert_str_eq(format_timestamp_iso(buf, sizeof(buf), 951782400999999ULL), "2000-02-29T00:00:00.999Z");
}
END_TEST

static Suite *service_suite(void) {
        Suite *s = suite_create("service");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_full_spec);
        tcase_add_test(tc, test_minimal_spec);
        tcase_add_test(tc, test_expected_name);
        tcase_add_test(tc, test_timestamps_ignored);
        tcase_add_test(tc, test_each_field_error_names_the_field);
        tcase_add_test(tc, test_name_rules);
        tcase_add_test(tc, test_env_names);
        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_json_cache);
        tcase_add_test(tc, test_format_timestamp);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(service_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
