/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "test-main.h"
#include "worker-events.h"

/* The worker writes and gatewayd reads the same definition: a line written is a line read. */

START_TEST(test_round_trip) {
        json_object *o = json_object_new_object();
        char *line = NULL;
        size_t len = 0;
        WorkerEvent e;

        json_object_object_add(o, "bytesDone", json_object_new_int64(10));
        json_object_object_add(o, "bytesTotal", json_object_new_int64(20));
        json_object_object_add(o, "layersApplied", json_object_new_int(1));
        json_object_object_add(o, "layersTotal", json_object_new_int(3));
        ck_assert_int_eq(worker_event_format(WORKER_EVENT_PROGRESS, o, 1234, &line, &len), 0);
        ck_assert_uint_eq(len, strlen(line));
        ck_assert_int_eq(line[len - 1], '\n');
        ck_assert_ptr_null(memchr(line, '\n', len - 1));
        line[len - 1] = 0;

        ck_assert_int_eq(worker_event_parse(line, &e), 0);
        ck_assert_int_eq(e.kind, WORKER_EVENT_PROGRESS);
        ck_assert_uint_eq(e.time_usec, 1234);
        ck_assert_uint_eq(e.progress.bytes_done, 10);
        ck_assert_uint_eq(e.progress.bytes_total, 20);
        ck_assert_uint_eq(e.progress.layers_applied, 1);
        ck_assert_uint_eq(e.progress.layers_total, 3);
        worker_event_done(&e);
        free(line);
}
END_TEST

START_TEST(test_kinds) {
        WorkerEvent e;

        for (int k = 0; k < _WORKER_EVENT_KIND_MAX; k++)
                ck_assert_int_eq(worker_event_kind_from_string(worker_event_kind_to_string(k)), k);

        ck_assert_int_eq(worker_event_parse("{\"event\":\"status\",\"status\":\"RUNNING\",\"startedAt\":5}", &e), 0);
        ck_assert_int_eq(e.kind, WORKER_EVENT_STATUS);
        ck_assert_str_eq(e.status.status, "RUNNING");
        ck_assert_uint_eq(e.status.started_usec, 5);
        worker_event_done(&e);

        ck_assert_int_eq(worker_event_parse("{\"event\":\"interim\",\"index\":2,\"result\":{\"a\":1}}", &e), 0);
        ck_assert_uint_eq(e.interim.index, 2);
        ck_assert_str_eq(json_object_to_json_string_ext(e.interim.result, JSON_C_TO_STRING_PLAIN), "{\"a\":1}");
        worker_event_done(&e);

        /* A kind from a newer worker is passed on as unknown, not refused. */
        ck_assert_int_eq(worker_event_parse("{\"event\":\"future\"}", &e), 0);
        ck_assert_int_eq(e.kind, _WORKER_EVENT_KIND_INVALID);
        worker_event_done(&e);

        ck_assert_int_eq(worker_event_parse("[1]", &e), -EBADMSG);
        ck_assert_int_eq(worker_event_parse("{\"event\":1}", &e), -EBADMSG);
        ck_assert_int_eq(worker_event_parse("{\"ev", &e), -EBADMSG);
        ck_assert_int_eq(worker_event_format(_WORKER_EVENT_KIND_MAX, NULL, 0, &(char *) { NULL }, &(size_t) { 0 }), -EINVAL);
}
END_TEST

/* Found by tests/fuzz/fuzz-worker-events: a null "event" (or "status") reached strcmp(), which
 * crashed gatewayd. A non-string "event" is not an event; a non-string member reads as absent. */
START_TEST(test_null_members) {
        WorkerEvent e = {};

        ck_assert_int_eq(worker_event_parse("{\"event\":null}", &e), -EBADMSG);
        ck_assert_int_eq(worker_event_parse("{\"event\":[\"status\"],\"status\":\"RUNNING\"}", &e), -EBADMSG);
        ck_assert_int_eq(worker_event_parse("{\"event\":\"status\",\"status\":null}", &e), 0);
        ck_assert_int_eq(e.kind, WORKER_EVENT_STATUS);
        ck_assert_ptr_null(e.status.status);
        worker_event_done(&e);
}
END_TEST

/* Found by tests/fuzz/fuzz-markers: the worker accepts results nested up to 512 levels, json-c
 * parses only 32 by default, so a deeper interim result was dropped here. */
START_TEST(test_deep_interim) {
        WorkerEvent e = {};
        char line[1024], *p = line;

        p = stpcpy(p, "{\"event\":\"interim\",\"index\":0,\"result\":");
        for (int i = 0; i < 100; i++)
                *p++ = '[';
        for (int i = 0; i < 100; i++)
                *p++ = ']';
        strcpy(p, "}");

        ck_assert_int_eq(worker_event_parse(line, &e), 0);
        ck_assert_int_eq(e.kind, WORKER_EVENT_INTERIM);
        ck_assert_ptr_nonnull(e.interim.result);
        ck_assert_uint_eq(strlen(json_object_to_json_string_ext(e.interim.result, JSON_C_TO_STRING_PLAIN)), 200);
        worker_event_done(&e);
}
END_TEST

int main(void) {
        Suite *s = suite_create("worker-events");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_round_trip);
        tcase_add_test(tc, test_kinds);
        tcase_add_test(tc, test_null_members);
        tcase_add_test(tc, test_deep_interim);
        suite_add_tcase(s, tc);
        return test_run_suite(s);
}
