/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* gatewayd's reading of the event lines of "gateway-worker run" (job_event_parse()). */
#include <check.h>

#include "macro.h"
#include "platform-local.h"
#include "test-main.h"

START_TEST(test_running) {
        _cleanup_(job_event_done) JobEvent ev = {};

        ck_assert_int_eq(job_event_parse("{\"event\":\"status\",\"status\":\"RUNNING\",\"startedAt\":1764850000000000}", &ev), 0);
        ck_assert_int_eq(ev.kind, JOB_EVENT_RUNNING);
        ck_assert_uint_eq(ev.started_usec, 1764850000000000ULL);
}
END_TEST

START_TEST(test_interim) {
        _cleanup_(job_event_done) JobEvent ev = {};

        ck_assert_int_eq(job_event_parse("{\"event\":\"interim\",\"index\":3,\"result\":{\"a\": [1, \"/x\"]}}", &ev), 0);
        ck_assert_int_eq(ev.kind, JOB_EVENT_INTERIM);
        ck_assert_uint_eq(ev.index, 3);
        ck_assert_str_eq(ev.result, "{\"a\":[1,\"/x\"]}");
}
END_TEST

START_TEST(test_other_and_garbage) {
        _cleanup_(job_event_done) JobEvent ev = {};

        ck_assert_int_eq(job_event_parse("{\"event\":\"log\",\"line\":\"x\"}", &ev), 0);
        ck_assert_int_eq(ev.kind, JOB_EVENT_LOG);
        ck_assert_int_eq(job_event_parse("{\"event\":\"done\"}", &ev), 0);
        ck_assert_int_eq(ev.kind, JOB_EVENT_OTHER);
        ck_assert_int_eq(job_event_parse("[1,2]", &ev), 0);
        ck_assert_int_eq(ev.kind, JOB_EVENT_OTHER);
        ck_assert_int_eq(job_event_parse("{\"event\":", &ev), -EBADMSG);
}
END_TEST

/* Found by tests/fuzz/fuzz-worker-events: a null "event" (or "status") was passed to strcmp(),
 * which crashed gatewayd. Members of another type are ignored like unknown events. */
START_TEST(test_null_members) {
        _cleanup_(job_event_done) JobEvent ev = {};

        ck_assert_int_eq(job_event_parse("{\"event\":null}", &ev), 0);
        ck_assert_int_eq(ev.kind, JOB_EVENT_OTHER);
        ck_assert_int_eq(job_event_parse("{\"event\":\"status\",\"status\":null}", &ev), 0);
        ck_assert_int_eq(ev.kind, JOB_EVENT_OTHER);
        ck_assert_int_eq(job_event_parse("{\"event\":5}", &ev), 0);
        ck_assert_int_eq(ev.kind, JOB_EVENT_OTHER);
        ck_assert_int_eq(job_event_parse("{\"event\":[\"status\"],\"status\":\"RUNNING\"}", &ev), 0);
        ck_assert_int_eq(ev.kind, JOB_EVENT_OTHER);
}
END_TEST

/* Found by tests/fuzz/fuzz-markers: the worker accepts results nested up to 512 levels, json-c
 * parses only 32 by default, so a deeper interim result was dropped here. */
START_TEST(test_deep_interim) {
        _cleanup_(job_event_done) JobEvent ev = {};
        char line[1024], *p = line;

        p = stpcpy(p, "{\"event\":\"interim\",\"index\":0,\"result\":");
        for (int i = 0; i < 100; i++)
                *p++ = '[';
        for (int i = 0; i < 100; i++)
                *p++ = ']';
        strcpy(p, "}");

        ck_assert_int_eq(job_event_parse(line, &ev), 0);
        ck_assert_int_eq(ev.kind, JOB_EVENT_INTERIM);
        ck_assert_uint_eq(strlen(ev.result), 200);
        ck_assert_int_eq(ev.result[99], '[');
        ck_assert_int_eq(ev.result[100], ']');
}
END_TEST

static Suite *job_event_suite(void) {
        Suite *s = suite_create("job-event");
        TCase *tc = tcase_create("parse");

        tcase_add_test(tc, test_running);
        tcase_add_test(tc, test_interim);
        tcase_add_test(tc, test_other_and_garbage);
        tcase_add_test(tc, test_null_members);
        tcase_add_test(tc, test_deep_interim);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(job_event_suite());
}
