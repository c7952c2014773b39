/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "manager.h"
#include "registry-events.h"
#include "test-main.h"

/* Registries publish, surfaces subscribe: every subscriber of a kind sees the event, in the
 * order they subscribed, and only subscribers of that kind. */

static char seen[64];

static void record(Manager *m, const RegistryEvent *e, void *userdata) {
        size_t n = strlen(seen);

        if (n + 2 < sizeof(seen)) {
                seen[n] = *(const char *) userdata;
                seen[n + 1] = e->kind == REGISTRY_JOB_INTERIM ? (char) ('0' + e->interim_index) : '.';
                seen[n + 2] = 0;
        }
}

START_TEST(test_publish) {
        Manager m = {};

        seen[0] = 0;
        ck_assert_int_eq(registry_subscribe(&m, REGISTRY_JOB_INTERIM, record, (void *) "a"), 0);
        ck_assert_int_eq(registry_subscribe(&m, REGISTRY_JOB_CHANGED, record, (void *) "b"), 0);
        ck_assert_int_eq(registry_subscribe(&m, REGISTRY_JOB_INTERIM, record, (void *) "c"), 0);
        ck_assert_int_eq(registry_subscribe(&m, _REGISTRY_EVENT_KIND_MAX, record, NULL), -EINVAL);

        registry_publish(&m, &(RegistryEvent) { .kind = REGISTRY_JOB_INTERIM, .interim_index = 7 });
        ck_assert_str_eq(seen, "a7c7");
        registry_publish_job(&m, REGISTRY_JOB_CHANGED, NULL);
        ck_assert_str_eq(seen, "a7c7b.");
        registry_publish_image(&m, REGISTRY_IMAGE_REMOVED, NULL);  /* nobody listens */
        ck_assert_str_eq(seen, "a7c7b.");

        registry_subscribers_free(&m);
        ck_assert_ptr_null(m.registry_subscribers);
        registry_publish_job(&m, REGISTRY_JOB_CHANGED, NULL);
        ck_assert_str_eq(seen, "a7c7b.");
}
END_TEST

int main(void) {
        Suite *s = suite_create("registry-events");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_publish);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
