/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The pure part of the slurmrestd client: answers recorded from a real slurmrestd 22.05.8
 * (tests/unit/data/slurm/, made by record.py there) and inline edge cases, classified and
 * parsed; the submit body built from a job description. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "json-util.h"
#include "macro.h"
#include "slurm-rest.h"
#include "test-main.h"

static char *load(const char *name, long *ret_status, size_t *ret_len) {
        const char *src = getenv("GATEWAYD_SOURCE_DIR");
        char path[1024];
        FILE *f;
        char *buf = NULL;
        size_t n = 0;
        ssize_t k;

        ck_assert_ptr_nonnull(src);
        /* NAME.STATUS.json */
        for (long s = 200; s <= 500; s += 300) {
                snprintf(path, sizeof(path), "%s/tests/unit/data/slurm/%s.%ld.json", src, name, s);
                f = fopen(path, "re");
                if (!f)
                        continue;
                k = getdelim(&buf, &n, '\0', f);
                fclose(f);
                ck_assert_int_gt(k, 0);
                *ret_status = s;
                *ret_len = (size_t) k;
                return buf;
        }
        ck_abort_msg("missing answer %s", name);
        return NULL;
}

static void parse_file(const char *name, SlurmAnswer *a) {
        _cleanup_free_ char *body = NULL;
        long status;
        size_t len;

        body = load(name, &status, &len);
        ck_assert_int_eq(slurm_answer_parse(status, body, len, a), 0);
}

START_TEST(test_submit_ok) {
        _cleanup_(slurm_answer_done) SlurmAnswer a = {};
        uint32_t id = 0;

        parse_file("submit-ok", &a);
        ck_assert_int_eq(a.outcome, SLURM_OUTCOME_OK);
        ck_assert_int_eq(a.error, 0);
        ck_assert_ptr_null(a.message);
        ck_assert_int_eq(slurm_submit_job_id(a.json, &id), 0);
        ck_assert_uint_gt(id, 0);
}
END_TEST

START_TEST(test_submit_with_errors) {
        /* 200 with a job id and errors: a failure, though the job exists (and must be cancelled). */
        _cleanup_(slurm_answer_done) SlurmAnswer a = {};
        uint32_t id = 0;

        parse_file("submit-with-errors", &a);
        ck_assert_int_eq(a.outcome, SLURM_OUTCOME_FAILED);
        ck_assert_int_eq(a.slurm_error, 2015);
        ck_assert_int_lt(a.error, 0);
        ck_assert_ptr_nonnull(strstr(a.message, "Requested partition configuration not available now"));
        ck_assert_int_eq(slurm_submit_job_id(a.json, &id), 0);
        ck_assert_uint_gt(id, 0);
}
END_TEST

START_TEST(test_refusals) {
        static const struct {
                const char *name;
                SlurmOutcome outcome;
                int error, slurm_error;
                const char *text;
        } v[] = {
                { "submit-bad-partition", SLURM_OUTCOME_FAILED, -EREMOTEIO, 2000, "Invalid partition name" },
                { "job-unknown", SLURM_OUTCOME_GONE, -ESRCH, 2017, "Unable to find JobId=999999" },
                { "cancel-unknown", SLURM_OUTCOME_GONE, -ESRCH, 2017, "Invalid job id" },
                { "cancel-other-user", SLURM_OUTCOME_FAILED, -EPERM, 2002, "permission denied" },
                /* A bad token looks like an unreachable slurmctld: retried, then reported as either. */
                { "submit-forged-token", SLURM_OUTCOME_RETRY, -ECOMM, 5005, "refused the request's token" },
                { "job-forged-token", SLURM_OUTCOME_RETRY, -ECOMM, -1, "refused the request's token" },
                { "job-expired-token", SLURM_OUTCOME_RETRY, -ECOMM, -1, "Unable to find JobId" },
                { "ping-forged-token", SLURM_OUTCOME_RETRY, -ECOMM, -1, "unable to load" },
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                _cleanup_(slurm_answer_done) SlurmAnswer a = {};
                parse_file(v[i].name, &a);
                ck_assert_msg(a.outcome == v[i].outcome, "%s: outcome %d", v[i].name, a.outcome);
                ck_assert_int_eq(a.error, v[i].error);
                ck_assert_int_eq(a.slurm_error, v[i].slurm_error);
                ck_assert_msg(strstr(a.message, v[i].text), "%s: %s", v[i].name, a.message);
        }
}
END_TEST

START_TEST(test_inline_answers) {
        static const struct {
                long status;
                const char *body;
                SlurmOutcome outcome;
                int error;
        } v[] = {
                { 401, "Authentication failure", SLURM_OUTCOME_FAILED, -EACCES },
                { 404, "Unable find requested URL", SLURM_OUTCOME_FAILED, -EPROTONOSUPPORT },
                { 200, "not json", SLURM_OUTCOME_FAILED, -EBADMSG },
                { 200, "[]", SLURM_OUTCOME_FAILED, -EBADMSG },
                { 200, "", SLURM_OUTCOME_FAILED, -EBADMSG },
                { 200, "{}", SLURM_OUTCOME_OK, 0 },
                { 200, "{\"errors\":[]}", SLURM_OUTCOME_OK, 0 },
                { 200, "{\"errors\":[{}]}", SLURM_OUTCOME_FAILED, -EREMOTEIO },
                { 200, "{\"errors\":[17]}", SLURM_OUTCOME_FAILED, -EREMOTEIO },
                { 200, "{\"errors\":{\"a\":1}}", SLURM_OUTCOME_OK, 0 },
                { 500, "{\"errors\":[{\"error_number\":\"2017\"}]}", SLURM_OUTCOME_RETRY, -ECOMM },
                { 500, "", SLURM_OUTCOME_RETRY, -ECOMM },
                { 503, "", SLURM_OUTCOME_RETRY, -ECOMM },
                { 400, "{\"errors\":[{\"error_code\":9000,\"error\":\"bad\"}]}", SLURM_OUTCOME_FAILED, -EINVAL },
                { 500, "{\"errors\":[{\"error_number\":2017}]}", SLURM_OUTCOME_GONE, -ESRCH },
                { 418, "{}", SLURM_OUTCOME_FAILED, -EREMOTEIO },
                /* A NUL inside a string is refused as JSON (json_parse_untrusted). */
                { 200, "{\"a\":\"\\u0000\"}", SLURM_OUTCOME_FAILED, -EBADMSG },
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                _cleanup_(slurm_answer_done) SlurmAnswer a = {};
                ck_assert_int_eq(slurm_answer_parse(v[i].status, v[i].body, strlen(v[i].body), &a), 0);
                ck_assert_msg(a.outcome == v[i].outcome && a.error == v[i].error, "%zu: outcome %d error %d (%s)", i,
                              a.outcome, a.error, strna(a.message));
                ck_assert(a.outcome == SLURM_OUTCOME_OK ? !a.message : !!a.message);
        }
}
END_TEST

static void job_of(const char *name, SlurmJobInfo *j) {
        _cleanup_(slurm_answer_done) SlurmAnswer a = {};

        parse_file(name, &a);
        ck_assert_int_eq(a.outcome, SLURM_OUTCOME_OK);
        ck_assert_int_eq(slurm_job_info_from_json(a.json, j), 0);
}

START_TEST(test_jobs) {
        _cleanup_(slurm_job_info_done) SlurmJobInfo r = {}, c = {}, f = {}, x = {};

        job_of("job-running", &r);
        ck_assert_str_eq(r.state, "RUNNING");
        ck_assert_int_eq(r.phase, SLURM_JOB_RUNNING);
        ck_assert_str_eq(r.user_name, "gwtest-user");
        ck_assert_str_eq(r.name, "gatewayd-rec");
        ck_assert_int_gt(r.start_time, 0);

        job_of("job-completed", &c);
        ck_assert_int_eq(c.phase, SLURM_JOB_COMPLETED);
        ck_assert_int_eq(c.exit_code, 0);

        job_of("job-failed", &f);
        ck_assert_int_eq(f.phase, SLURM_JOB_FAILED);
        ck_assert_str_eq(f.state_reason, "NonZeroExitCode");
        ck_assert_int_eq(f.exit_code, 3 << 8);     /* a raw wait status */
        ck_assert_str_eq(slurm_job_state_reason(f.state), "the Slurm job failed");

        job_of("job-cancelled", &x);
        ck_assert_int_eq(x.phase, SLURM_JOB_CANCELLED);
}
END_TEST

START_TEST(test_job_malformed) {
        static const char *const bad[] = {
                "{}", "{\"jobs\":[]}", "{\"jobs\":[1]}", "{\"jobs\":[{\"job_id\":1}]}",
                "{\"jobs\":[{\"job_id\":\"1\",\"job_state\":\"RUNNING\"}]}",
                "{\"jobs\":[{\"job_id\":-1,\"job_state\":\"RUNNING\"}]}",
                "{\"jobs\":[{\"job_id\":4294967296,\"job_state\":\"RUNNING\"}]}",
                "{\"jobs\":[{\"job_id\":1,\"job_state\":7}]}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(json_object_putp) json_object *o = json_tokener_parse(bad[i]);
                SlurmJobInfo j = {};
                ck_assert_ptr_nonnull(o);
                ck_assert_msg(slurm_job_info_from_json(o, &j) == -EBADMSG, "%s", bad[i]);
        }

        /* Unknown states keep polling; exit_code missing → -1. */
        _cleanup_(json_object_putp) json_object *o =
                json_tokener_parse("{\"jobs\":[{\"job_id\":5,\"job_state\":\"SOMETHING_NEW\",\"exit_code\":null}]}");
        _cleanup_(slurm_job_info_done) SlurmJobInfo j = {};
        ck_assert_int_eq(slurm_job_info_from_json(o, &j), 0);
        ck_assert_int_eq(j.phase, _SLURM_JOB_PHASE_INVALID);
        ck_assert_int_eq(j.exit_code, -1);
}
END_TEST

START_TEST(test_phases) {
        static const struct { const char *s; SlurmJobPhase p; } v[] = {
                { "PENDING", SLURM_JOB_PENDING }, { "CONFIGURING", SLURM_JOB_PENDING },
                { "RUNNING", SLURM_JOB_RUNNING }, { "COMPLETING", SLURM_JOB_RUNNING },
                { "COMPLETED", SLURM_JOB_COMPLETED }, { "CANCELLED", SLURM_JOB_CANCELLED },
                { "FAILED", SLURM_JOB_FAILED }, { "TIMEOUT", SLURM_JOB_FAILED }, { "NODE_FAIL", SLURM_JOB_FAILED },
                { "OUT_OF_MEMORY", SLURM_JOB_FAILED }, { "running", _SLURM_JOB_PHASE_INVALID },
                { "", _SLURM_JOB_PHASE_INVALID }, { NULL, _SLURM_JOB_PHASE_INVALID },
        };
        for (size_t i = 0; i < ELEMENTSOF(v); i++)
                ck_assert_int_eq(slurm_job_phase_from_state(v[i].s), v[i].p);
        ck_assert_str_eq(slurm_job_state_reason("TIMEOUT"), "the Slurm job reached its time limit");
        ck_assert_ptr_null(slurm_job_state_reason("RUNNING"));
        ck_assert_ptr_null(slurm_job_phase_to_string(_SLURM_JOB_PHASE_INVALID));
}
END_TEST

START_TEST(test_find_by_name) {
        _cleanup_(slurm_answer_done) SlurmAnswer a = {};
        _cleanup_(slurm_job_info_done) SlurmJobInfo j = {};
        SlurmJobInfo none = {};
        unsigned matches = 0;

        /* Four jobs called gatewayd-rec of gwtest-user (record.py): the newest wins. */
        parse_file("jobs", &a);
        ck_assert_int_eq(slurm_jobs_find_by_name(a.json, "gatewayd-rec", "gwtest-user", &j, &matches), 0);
        ck_assert_uint_eq(matches, 4);
        ck_assert_uint_eq(j.job_id, 4);
        ck_assert_int_eq(j.phase, SLURM_JOB_CANCELLED);
        ck_assert_int_eq(slurm_jobs_find_by_name(a.json, "gatewayd-rec", "gwtest-other", &none, &matches), -ENOENT);
        ck_assert_uint_eq(matches, 0);
        ck_assert_int_eq(slurm_jobs_find_by_name(a.json, "gatewayd-re", "gwtest-user", &none, NULL), -ENOENT);
        ck_assert_int_eq(slurm_jobs_find_by_name(a.json, NULL, "gwtest-user", &none, NULL), -EBADMSG);

        _cleanup_(json_object_putp) json_object *o = json_tokener_parse("{\"jobs\":{}}");
        ck_assert_int_eq(slurm_jobs_find_by_name(o, "x", "y", &none, NULL), -EBADMSG);
}
END_TEST

START_TEST(test_ping_partitions) {
        _cleanup_(slurm_answer_done) SlurmAnswer a = {}, b = {};
        _cleanup_(slurm_ping_done) SlurmPing p = {};
        SlurmPartition *parts = NULL;
        size_t n = 0;

        parse_file("ping", &a);
        ck_assert_int_eq(slurm_ping_from_json(a.json, &p), 0);
        ck_assert(p.responding);
        ck_assert_str_eq(p.version, "22.05.8");
        ck_assert_ptr_nonnull(p.hostname);

        parse_file("partitions", &b);
        ck_assert_int_eq(slurm_partitions_from_json(b.json, &parts, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(parts[0].name, "debug");
        ck_assert_str_eq(parts[0].state, "UP");
        ck_assert_uint_eq(parts[0].nodes, 1);
        ck_assert_uint_eq(parts[0].cpus, 8);
        slurm_partitions_free(parts, n);

        _cleanup_(json_object_putp) json_object *down =
                json_tokener_parse("{\"pings\":[{\"hostname\":\"h\",\"ping\":\"DOWN\"}]}");
        _cleanup_(slurm_ping_done) SlurmPing q = {};
        ck_assert_int_eq(slurm_ping_from_json(down, &q), 0);
        ck_assert(!q.responding);
}
END_TEST

START_TEST(test_nodes) {
        _cleanup_(slurm_answer_done) SlurmAnswer a = {};
        _cleanup_(json_object_putp) json_object *nodes = NULL, *bad = NULL, *odd = NULL, *odd_nodes = NULL;
        json_object *n, *v;

        parse_file("nodes", &a);
        ck_assert_int_eq(slurm_nodes_from_json(a.json, &nodes), 0);
        ck_assert_uint_eq(json_object_array_length(nodes), 1);
        n = json_object_array_get_idx(nodes, 0);
        ck_assert_ptr_nonnull(json_get_string(n, "name"));
        ck_assert_str_eq(json_get_string(n, "state"), "up");
        ck_assert_str_eq(json_get_string(n, "slurmState"), "idle");
        ck_assert(json_object_object_get_ex(n, "cpus", &v));
        ck_assert_int_eq(json_object_get_int(v), 8);
        ck_assert(json_object_object_get_ex(n, "partitions", &v));
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(v, 0)), "debug");
        ck_assert(!json_object_object_get_ex(n, "reason", &v));  /* empty: left out */

        bad = json_tokener_parse("{\"nodes\": {}}");
        ck_assert_int_eq(slurm_nodes_from_json(bad, &odd_nodes), -EBADMSG);
        /* nameless entries are skipped; older versions' upper-case states are lowered */
        odd = json_tokener_parse("{\"nodes\": [1, {\"state\": \"IDLE\"},"
                                 " {\"name\": \"n2\", \"state\": \"DOWN\", \"reason\": \"Not responding\"},"
                                 " {\"name\": \"n3\", \"state\": \"idle\", \"state_flags\": [\"DRAIN\"]},"
                                 " {\"name\": \"n4\", \"state\": \"mixed\", \"state_flags\": [\"NOT_RESPONDING\"]},"
                                 " {\"name\": \"n5\", \"state\": \"allocated\"}, {\"name\": \"n6\"}]}");
        ck_assert_int_eq(slurm_nodes_from_json(odd, &odd_nodes), 0);
        ck_assert_uint_eq(json_object_array_length(odd_nodes), 5);
        n = json_object_array_get_idx(odd_nodes, 0);
        ck_assert_str_eq(json_get_string(n, "state"), "unreachable");
        ck_assert_str_eq(json_get_string(n, "slurmState"), "down");
        ck_assert_str_eq(json_get_string(n, "reason"), "Not responding");
        ck_assert_str_eq(json_get_string(json_object_array_get_idx(odd_nodes, 1), "state"), "draining");
        ck_assert_str_eq(json_get_string(json_object_array_get_idx(odd_nodes, 2), "state"), "unreachable");
        ck_assert_str_eq(json_get_string(json_object_array_get_idx(odd_nodes, 3), "state"), "up");
        ck_assert_str_eq(json_get_string(json_object_array_get_idx(odd_nodes, 4), "state"), "unreachable");
}
END_TEST

START_TEST(test_submit_body) {
        char *env[] = { (char *) "PATH=/usr/bin:/bin", (char *) "GATEWAYD_JOB=j-1", NULL };
        SlurmJobDesc d = {
                .name = "gatewayd-j-1",
                .script = "#!/bin/sh\nexec true\n",
                .partition = "debug",
                .account = "acct",
                .cwd = "/spool/j-1",
                .standard_output = "/spool/j-1/slurm.out",
                .environment = env,
                .time_limit_usec = 61 * USEC_PER_SEC,   /* rounded up: 2 minutes */
                .memory_bytes = 1024 * 1024 + 1,        /* rounded up: 2 MB */
        };
        _cleanup_(json_object_putp) json_object *b = NULL;

        ck_assert_int_eq(slurm_submit_body(&d, &b), 0);
        ck_assert_str_eq(json_text(b),
                         "{\"script\":\"#!/bin/sh\\nexec true\\n\",\"job\":{\"environment\":{\"PATH\":\"/usr/bin:/bin\","
                         "\"GATEWAYD_JOB\":\"j-1\"},\"name\":\"gatewayd-j-1\",\"current_working_directory\":\"/spool/j-1\","
                         "\"standard_output\":\"/spool/j-1/slurm.out\",\"standard_error\":\"/dev/null\","
                         "\"no_requeue\":true,\"partition\":\"debug\",\"account\":\"acct\",\"time_limit\":2,"
                         "\"memory_per_node\":2}}");

        json_object_put(TAKE_PTR(b));
        d.environment = NULL;
        d.partition = d.account = NULL;
        d.time_limit_usec = d.memory_bytes = 0;
        ck_assert_int_eq(slurm_submit_body(&d, &b), 0);
        ck_assert_str_eq(json_text(json_object_object_get(json_object_object_get(b, "job"), "environment")),
                         "{\"PATH\":\"/usr/sbin:/usr/bin:/sbin:/bin\"}");
        ck_assert_ptr_null(json_object_object_get(json_object_object_get(b, "job"), "time_limit"));

        d.cwd = "relative";
        ck_assert_int_eq(slurm_submit_body(&d, &b), -EINVAL);
        d.cwd = "/x";
        d.standard_output = "out";
        ck_assert_int_eq(slurm_submit_body(&d, &b), -EINVAL);
        d.standard_output = NULL;
        char *bad_env[] = { (char *) "NOEQUALS", NULL };
        d.environment = bad_env;
        ck_assert_int_eq(slurm_submit_body(&d, &b), -EINVAL);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("slurm-rest");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_submit_ok);
        tcase_add_test(tc, test_submit_with_errors);
        tcase_add_test(tc, test_refusals);
        tcase_add_test(tc, test_inline_answers);
        tcase_add_test(tc, test_jobs);
        tcase_add_test(tc, test_job_malformed);
        tcase_add_test(tc, test_phases);
        tcase_add_test(tc, test_find_by_name);
        tcase_add_test(tc, test_ping_partitions);
        tcase_add_test(tc, test_nodes);
        tcase_add_test(tc, test_submit_body);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return test_run_suite(suite());
}
