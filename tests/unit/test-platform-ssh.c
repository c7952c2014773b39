/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "config.h"
#include "hashmap.h"
#include "json-util.h"
#include "manager.h"
#include "platform.h"
#include "test-main.h"

/* The SSH platform's node surface (report_nodes, drain_node) as the HTTP/D-Bus surfaces will use
 * it: every host entry is a node named as configured; a node is drained and resumed by that
 * name. The nodes here refuse TCP connections (port 1 on loopback): they end up unreachable. */

static json_object *node_of(json_object *nodes, const char *name) {
        for (size_t i = 0; i < json_object_array_length(nodes); i++) {
                json_object *n = json_object_array_get_idx(nodes, i);

                if (streq(json_get_string(n, "name"), name))
                        return n;
        }
        return NULL;
}

START_TEST(test_nodes_report_and_drain) {
        Manager m = {};
        _cleanup_free_ char *err = NULL;
        json_object *nodes, *n, *v;
        Platform *p;

        ck_assert_int_eq(sd_event_new(&m.event), 0);
        m.runtime_dir = (char *) "/nonexistent";
        m.jobs = hashmap_new();
        m.images = hashmap_new();
        ck_assert_int_eq(config_parse("{\"Platforms\": {\"cluster\": {\"accesstype\": \"remote\","
                                      " \"host\": [\"127.0.0.1:1\", \"[::1]:1\"],"
                                      " \"ssh\": {\"username\": \"u\", \"key\": \"/nonexistent/key\", \"imageDir\": \"/i\"}}},"
                                      " \"DefaultPlatform\": \"cluster\"}", NULL, &m.config, &err), 0);
        ck_assert_int_eq(platforms_load(&m, NULL), 0);
        p = platform_get(&m, "cluster");
        ck_assert_ptr_nonnull(p);
        ck_assert_str_eq(p->kind, "ssh");
        ck_assert_ptr_null(platform_unsupported(p, true));

        nodes = platform_report_nodes(p);
        ck_assert_int_eq(json_object_array_length(nodes), 2);
        n = node_of(nodes, "127.0.0.1:1");
        ck_assert_ptr_nonnull(n);
        ck_assert_str_eq(json_get_string(n, "state"), "connecting");
        ck_assert_int_eq(json_object_get_int(json_object_object_get(n, "slots")), 0);
        ck_assert_int_eq(json_object_get_int(json_object_object_get(n, "running")), 0);
        ck_assert(json_object_object_get_ex(n, "lastContact", &v) && v == NULL);
        ck_assert_ptr_nonnull(node_of(nodes, "[::1]:1"));
        json_object_put(nodes);

        /* The connection attempts fail on the loop. */
        for (int i = 0; i < 50; i++) {
                nodes = platform_report_nodes(p);
                n = node_of(nodes, "127.0.0.1:1");
                if (streq(json_get_string(n, "state"), "unreachable")) {
                        json_object_put(nodes);
                        break;
                }
                json_object_put(nodes);
                ck_assert_int_ge(sd_event_run(m.event, 100 * 1000), 0);
        }
        nodes = platform_report_nodes(p);
        ck_assert_str_eq(json_get_string(node_of(nodes, "127.0.0.1:1"), "state"), "unreachable");
        json_object_put(nodes);

        /* Drain and resume by the name as configured. */
        ck_assert_int_eq(platform_drain_node(p, "127.0.0.1:1", true), 0);
        ck_assert_int_eq(platform_drain_node(p, "127.0.0.1:1", true), 0);   /* idempotent */
        ck_assert_int_eq(platform_drain_node(p, "node-x", true), -ENOENT);
        ck_assert_int_eq(platform_drain_node(p, "127.0.0.1", true), -ENOENT);
        nodes = platform_report_nodes(p);
        ck_assert(json_object_get_boolean(json_object_object_get(node_of(nodes, "127.0.0.1:1"), "draining")));
        ck_assert(!json_object_get_boolean(json_object_object_get(node_of(nodes, "[::1]:1"), "draining")));
        /* "draining" is the state of a node that is up; an unreachable one stays unreachable. */
        ck_assert_str_eq(json_get_string(node_of(nodes, "127.0.0.1:1"), "state"), "unreachable");
        json_object_put(nodes);
        ck_assert_int_eq(platform_drain_node(p, "127.0.0.1:1", false), 0);
        nodes = platform_report_nodes(p);
        ck_assert(!json_object_get_boolean(json_object_object_get(node_of(nodes, "127.0.0.1:1"), "draining")));
        json_object_put(nodes);

        platforms_free(&m);
        hashmap_free(m.jobs);
        hashmap_free(m.images);
        config_free(m.config);
        sd_event_unref(m.event);
}
END_TEST

int main(void) {
        Suite *s = suite_create("platform-ssh");
        TCase *tc = tcase_create("nodes");

        tcase_add_test(tc, test_nodes_report_and_drain);
        tcase_set_timeout(tc, 30);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
