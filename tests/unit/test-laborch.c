/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "http-api.h"
#include "http-router.h"
#include "laborch-id.h"
#include "manager.h"
#include "test-main.h"

/* LabOrchestrator's API: the dispatch rule under /api/ against the real route table (its
 * collections and Shifter's verbs never shadow each other), and the stable integer ids. */

static HttpHandler route(const char *method, const char *path) {
        char *captures[HTTP_ROUTE_MAX_CAPTURES] = {};
        const HttpRoute *r = NULL;
        char allow[64];
        HttpRouteResult res = http_route_match(http_api_routes, http_api_n_routes, method, path, &r, captures, allow, sizeof(allow));

        http_route_captures_free(captures);
        return res == HTTP_ROUTE_FOUND ? r->handler : NULL;
}

START_TEST(test_dispatch) {
        /* LabOrchestrator's paths, as its front-end writes them (trailing slash) */
        ck_assert_ptr_eq(route("GET", "/api/labs/"), http_laborch_list_labs);
        ck_assert_ptr_eq(route("GET", "/api/labs/3/"), http_laborch_get_lab);
        ck_assert_ptr_eq(route("GET", "/api/docker_images/"), http_laborch_list_docker_images);
        ck_assert_ptr_eq(route("GET", "/api/lab_docker_images/1"), http_laborch_get_lab_docker_image);
        ck_assert_ptr_eq(route("POST", "/api/lab_instances/"), http_laborch_create_instance);
        ck_assert_ptr_eq(route("GET", "/api/lab_instances/7/"), http_laborch_get_instance);
        ck_assert_ptr_eq(route("DELETE", "/api/lab_instances/7/"), http_laborch_remove_instance);
        ck_assert_ptr_eq(route("GET", "/api/lab_instances/7/token/"), http_laborch_instance_token);
        /* Shifter's, with systems and tags that look like LabOrchestrator's collections */
        ck_assert_ptr_eq(route("GET", "/api/list/labs/"), http_shifter_list);
        ck_assert_ptr_eq(route("GET", "/api/queue/lab_instances/"), http_shifter_queue);
        ck_assert_ptr_eq(route("GET", "/api/lookup/labs/docker/lab_instances/"), http_shifter_lookup);
        ck_assert_ptr_eq(route("POST", "/api/pull/docker_images/docker/labs/7/token"), http_shifter_pull);
        /* neither: no route */
        ck_assert_ptr_null(route("GET", "/api/users/"));
        ck_assert_ptr_null(route("GET", "/api/labs/3/token/"));
        ck_assert_ptr_null(route("GET", "/api/list/"));
}
END_TEST

static char dir[] = "/tmp/test-laborch-XXXXXX";

START_TEST(test_ids) {
        _cleanup_free_ char *path = NULL, *name = NULL;
        Manager m = {};
        int64_t a, b, c, again;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_ge(asprintf(&path, "%s/state.db", dir), 0);
        ck_assert_int_eq(db_open(path, &m.db), 0);
        ck_assert_int_gt(db_migrate(m.db), 0);

        /* one sequence per kind, from 1, given once */
        ck_assert_int_eq(laborch_id_get(&m, LABORCH_LAB, "web", &a), 0);
        ck_assert_int_eq(laborch_id_get(&m, LABORCH_LAB, "desk", &b), 0);
        ck_assert_int_eq(laborch_id_get(&m, LABORCH_LAB_INSTANCE, "li-0123", &c), 0);
        ck_assert_int_eq(a, 1);
        ck_assert_int_eq(b, 2);
        ck_assert_int_eq(c, 1);
        ck_assert_int_eq(laborch_id_get(&m, LABORCH_LAB, "web", &again), 0);
        ck_assert_int_eq(again, a);

        ck_assert_int_eq(laborch_id_lookup(&m, LABORCH_LAB, 2, &name), 0);
        ck_assert_str_eq(name, "desk");
        ck_assert_int_eq(laborch_id_lookup(&m, LABORCH_LAB_INSTANCE, 2, &name), -ENOENT);
        ck_assert_int_eq(laborch_id_lookup(&m, LABORCH_DOCKER_IMAGE, 1, &name), -ENOENT);

        /* kept in the database: the same after reopening */
        m.db = db_close(m.db);
        ck_assert_int_eq(db_open(path, &m.db), 0);
        ck_assert_int_eq(laborch_id_get(&m, LABORCH_LAB, "desk", &again), 0);
        ck_assert_int_eq(again, b);
        ck_assert_int_eq(laborch_id_get(&m, LABORCH_LAB, "new", &again), 0);
        ck_assert_int_eq(again, 3);
        m.db = db_close(m.db);

        unlink(path);
        free(path);
        ck_assert_int_ge(asprintf(&path, "rm -rf '%s'", dir), 0);
        ck_assert_int_eq(system(path), 0);
}
END_TEST

int main(void) {
        Suite *s = suite_create("laborch");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_dispatch);
        tcase_add_test(tc, test_ids);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
