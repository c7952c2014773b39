/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The job state machine and the fair-share scheduler, in isolation: both are pure functions of
 * their input, so every rule of the issue can be checked without a daemon. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "platform-local.h"
#include "scheduler.h"

#define MAX_JOBS 64

static Job jobs[MAX_JOBS];
static Job *all[MAX_JOBS];
static size_t n_jobs;

static void reset(void) {
        memset(jobs, 0, sizeof(jobs));
        n_jobs = 0;
}

static Job *add(uid_t uid, JobState state, const char *platform) {
        Job *j = &jobs[n_jobs];

        j->uid = uid;
        j->state = state;
        j->seq = (int64_t) n_jobs + 1;
        j->platform = (char *) (platform ?: "local");
        all[n_jobs++] = j;
        return j;
}

static size_t select_(unsigned per_user, unsigned clusters, Job **ret) {
        SchedulerLimits l = { .jobs_per_user = per_user, .max_clusters = clusters };
        return scheduler_select(&l, all, n_jobs, ret);
}

/* Applies a selection the way the registry does: promoted jobs become active. */
static void promote(Job **sel, size_t n) {
        for (size_t i = 0; i < n; i++)
                sel[i]->state = JOB_PENDING;
}

static unsigned active_of(uid_t uid) {
        unsigned n = 0;
        for (size_t i = 0; i < n_jobs; i++)
                if (jobs[i].uid == uid && job_state_is_active(jobs[i].state))
                        n++;
        return n;
}

START_TEST(test_states) {
        for (JobState s = 0; s < _JOB_STATE_MAX; s++)
                ck_assert_int_eq(job_state_from_string(job_state_to_string(s)), s);
        ck_assert_int_eq(job_state_from_string("queued"), _JOB_STATE_INVALID);
        ck_assert_int_eq(job_state_from_string(NULL), _JOB_STATE_INVALID);
        ck_assert_ptr_null(job_state_to_string(_JOB_STATE_MAX));

        /* The PlanQK view has no QUEUED. */
        ck_assert_str_eq(job_state_to_planqk(JOB_QUEUED), "PENDING");
        ck_assert_str_eq(job_state_to_planqk(JOB_UNKNOWN), "UNKNOWN");
        ck_assert_str_eq(job_state_to_planqk(JOB_RUNNING), "RUNNING");
}
END_TEST

START_TEST(test_transitions) {
        ck_assert(job_state_transition_is_valid(JOB_QUEUED, JOB_PENDING));
        ck_assert(job_state_transition_is_valid(JOB_PENDING, JOB_RUNNING));
        ck_assert(job_state_transition_is_valid(JOB_RUNNING, JOB_SUCCEEDED));
        ck_assert(job_state_transition_is_valid(JOB_PENDING, JOB_SUCCEEDED));
        /* cancel in every non-terminal state */
        ck_assert(job_state_transition_is_valid(JOB_QUEUED, JOB_CANCELLED));
        ck_assert(job_state_transition_is_valid(JOB_PENDING, JOB_CANCELLED));
        ck_assert(job_state_transition_is_valid(JOB_RUNNING, JOB_CANCELLED));
        ck_assert(job_state_transition_is_valid(JOB_RUNNING, JOB_UNKNOWN));
        ck_assert(job_state_transition_is_valid(JOB_PENDING, JOB_FAILED));

        ck_assert(!job_state_transition_is_valid(JOB_QUEUED, JOB_RUNNING));
        ck_assert(!job_state_transition_is_valid(JOB_QUEUED, JOB_SUCCEEDED));
        ck_assert(!job_state_transition_is_valid(JOB_RUNNING, JOB_PENDING));
        ck_assert(!job_state_transition_is_valid(JOB_PENDING, JOB_QUEUED));
        /* terminal is final: no resurrection, no second outcome */
        for (JobState t = JOB_SUCCEEDED; t <= JOB_UNKNOWN; t++) {
                ck_assert(job_state_is_terminal(t));
                for (JobState to = 0; to < _JOB_STATE_MAX; to++)
                        ck_assert(!job_state_transition_is_valid(t, to));
        }
        ck_assert(!job_state_is_terminal(JOB_QUEUED));
        ck_assert(!job_state_is_terminal(JOB_PENDING));
        ck_assert(!job_state_is_terminal(JOB_RUNNING));
}
END_TEST

START_TEST(test_ids) {
        char *a = NULL, *b = NULL;

        ck_assert_int_eq(job_id_new(&a), 0);
        ck_assert_int_eq(job_id_new(&b), 0);
        ck_assert(job_id_is_valid(a));
        ck_assert_str_ne(a, b);
        ck_assert_int_eq(a[14], '4');
        ck_assert(!job_id_is_valid("../../etc/passwd"));
        ck_assert(!job_id_is_valid(""));
        ck_assert(!job_id_is_valid(NULL));
        ck_assert(!job_id_is_valid("0123456789abcdef0123456789abcdef0123"));
        ck_assert(!job_id_is_valid("0123456A-89ab-4def-8123-456789abcdef"));
        ck_assert(job_id_is_valid("01234567-89ab-4def-8123-456789abcdef"));
        free(a);
        free(b);
}
END_TEST

START_TEST(test_per_user_limit) {
        Job *sel[MAX_JOBS];
        size_t n;

        /* JobsPerUser=2: five jobs of one user, two start; another user's job still starts. */
        reset();
        for (int i = 0; i < 5; i++)
                add(1000, JOB_QUEUED, NULL);
        add(1001, JOB_QUEUED, NULL);
        n = select_(2, 0, sel);
        ck_assert_uint_eq(n, 3);
        promote(sel, n);
        ck_assert_uint_eq(active_of(1000), 2);
        ck_assert_uint_eq(active_of(1001), 1);
        /* oldest first per user */
        ck_assert(jobs[0].state == JOB_PENDING && jobs[1].state == JOB_PENDING && jobs[2].state == JOB_QUEUED);

        /* Nothing more until a slot frees; then exactly the next oldest. */
        ck_assert_uint_eq(select_(2, 0, sel), 0);
        jobs[0].state = JOB_SUCCEEDED;
        n = select_(2, 0, sel);
        ck_assert_uint_eq(n, 1);
        ck_assert_ptr_eq(sel[0], &jobs[2]);
}
END_TEST

START_TEST(test_max_clusters_fair_share) {
        Job *sel[MAX_JOBS];
        size_t n;

        /* One platform with 3 slots; user A floods first, B and C submit later. Round-robin:
         * A, B, C — not A, A, A. */
        reset();
        for (int i = 0; i < 6; i++)
                add(1, JOB_QUEUED, NULL);
        add(2, JOB_QUEUED, NULL);
        add(2, JOB_QUEUED, NULL);
        add(3, JOB_QUEUED, NULL);
        n = select_(0, 3, sel);
        ck_assert_uint_eq(n, 3);
        ck_assert_uint_eq(sel[0]->uid, 1);
        ck_assert_uint_eq(sel[1]->uid, 2);
        ck_assert_uint_eq(sel[2]->uid, 3);
        ck_assert_ptr_eq(sel[0], &jobs[0]);
        ck_assert_ptr_eq(sel[1], &jobs[6]);
        promote(sel, n);

        /* A's job ends: the slot goes to the user with the fewest slots, oldest first among
         * equals — A (0 active, its next job is older than B's second one). */
        jobs[0].state = JOB_SUCCEEDED;
        n = select_(0, 3, sel);
        ck_assert_uint_eq(n, 1);
        ck_assert_ptr_eq(sel[0], &jobs[1]);
        promote(sel, n);

        /* C's job ends: C has nothing queued, B has fewer slots than... B and A both hold one;
         * A's next (seq 3) is older than B's (seq 8). */
        jobs[8].state = JOB_FAILED;
        n = select_(0, 3, sel);
        ck_assert_uint_eq(n, 1);
        ck_assert_ptr_eq(sel[0], &jobs[2]);
        promote(sel, n);

        /* B's job ends: B has 0 slots, A has 2 → B. */
        jobs[6].state = JOB_SUCCEEDED;
        n = select_(0, 3, sel);
        ck_assert_uint_eq(n, 1);
        ck_assert_ptr_eq(sel[0], &jobs[7]);
}
END_TEST

START_TEST(test_platforms_independent) {
        Job *sel[MAX_JOBS];
        size_t n;

        /* MaxClusters counts per platform: a full platform does not block another one. */
        reset();
        add(1, JOB_RUNNING, "a");
        add(2, JOB_QUEUED, "a");
        add(3, JOB_QUEUED, "b");
        n = select_(0, 1, sel);
        ck_assert_uint_eq(n, 1);
        ck_assert_ptr_eq(sel[0], &jobs[2]);
}
END_TEST

START_TEST(test_both_limits_and_unknown_ignored) {
        Job *sel[MAX_JOBS];
        size_t n;

        reset();
        add(1, JOB_RUNNING, NULL);
        add(1, JOB_UNKNOWN, NULL);    /* terminal: holds no slot */
        add(1, JOB_CANCELLED, NULL);
        add(1, JOB_QUEUED, NULL);
        add(1, JOB_QUEUED, NULL);
        add(2, JOB_QUEUED, NULL);
        n = select_(2, 2, sel);
        /* cluster cap 2: one running + one more; user 2 (0 slots) beats user 1 (1 slot) */
        ck_assert_uint_eq(n, 1);
        ck_assert_ptr_eq(sel[0], &jobs[5]);
        ck_assert_uint_eq(select_(2, 0, sel), 2);
        ck_assert_uint_eq(select_(0, 0, sel), 3);
}
END_TEST

START_TEST(test_empty) {
        Job *sel[1];

        reset();
        ck_assert_uint_eq(select_(1, 1, sel), 0);
        add(1, JOB_SUCCEEDED, NULL);
        ck_assert_uint_eq(select_(1, 1, sel), 0);
}
END_TEST

START_TEST(test_planqk_view) {
        Job j = { .id = (char *) "01234567-89ab-4def-8123-456789abcdef", .state = JOB_QUEUED,
                  .created_usec = UINT64_C(1795285882427000), .exit_code = -1 };
        json_object *o = job_to_planqk_json(&j), *v;

        /* exactly the five keys, QUEUED as PENDING, unset times as null */
        ck_assert_int_eq(json_object_object_length(o), 5);
        ck_assert(json_object_object_get_ex(o, "status", &v));
        ck_assert_str_eq(json_object_get_string(v), "PENDING");
        ck_assert(json_object_object_get_ex(o, "createdAt", &v));
        ck_assert_str_eq(json_object_get_string(v), "2026-11-21T18:31:22.427Z");
        ck_assert(json_object_object_get_ex(o, "startedAt", &v));
        ck_assert_ptr_null(v);
        ck_assert(json_object_object_get_ex(o, "endedAt", &v));
        ck_assert_ptr_null(v);
        json_object_put(o);
}
END_TEST

START_TEST(test_timestamps) {
        ck_assert_uint_eq(parse_timestamp_iso("2026-11-21T18:31:22.427Z"), UINT64_C(1795285882427000));
        ck_assert_uint_eq(parse_timestamp_iso("2026-11-21T18:31:22Z"), UINT64_C(1795285882000000));
        ck_assert_uint_eq(parse_timestamp_iso("2026-11-21T18:31:22.4Z"), UINT64_C(1795285882400000));
        ck_assert_uint_eq(parse_timestamp_iso("2026-11-21 18:31:22Z"), 0);
        ck_assert_uint_eq(parse_timestamp_iso("2026-11-21T18:31:22.427"), 0);
        ck_assert_uint_eq(parse_timestamp_iso("garbage"), 0);
        ck_assert_uint_eq(parse_timestamp_iso(NULL), 0);
}
END_TEST

/* External users acting as one local account (Caller.subject) are users of their own: each gets
 * its JobsPerUser slot and its fair share, apart from the account itself. */
START_TEST(test_subjects_are_users) {
        Job *sel[MAX_JOBS];
        size_t n;

        reset();
        add(1000, JOB_QUEUED, NULL)->subject = (char *) "alice";
        add(1000, JOB_QUEUED, NULL)->subject = (char *) "alice";
        add(1000, JOB_QUEUED, NULL)->subject = (char *) "bob";
        add(1000, JOB_QUEUED, NULL);    /* the account itself */
        n = select_(1, 0, sel);
        ck_assert_uint_eq(n, 3);
        ck_assert_ptr_eq(sel[0], &jobs[0]);
        ck_assert_ptr_eq(sel[1], &jobs[2]);
        ck_assert_ptr_eq(sel[2], &jobs[3]);
        promote(sel, n);
        ck_assert_uint_eq(select_(1, 0, sel), 0);
        ck_assert(job_is_owned_by(&jobs[0], 1000, "alice"));
        ck_assert(!job_is_owned_by(&jobs[0], 1000, "bob"));
        ck_assert(!job_is_owned_by(&jobs[0], 1000, NULL));
        ck_assert(!job_is_owned_by(&jobs[3], 1000, "alice"));
        ck_assert(job_is_owned_by(&jobs[3], 1000, NULL));
        ck_assert(!job_is_owned_by(&jobs[3], 1001, NULL));
}
END_TEST

/* The scheduler counts the states the open group commit will leave: a job whose end is staged
 * frees its slot for a promotion into the same commit, a staged promotion holds its slot, and a
 * job staged to start is no longer queued. */
START_TEST(test_staged_states) {
        static const JobUpdate ended = { .state = JOB_SUCCEEDED }, started = { .state = JOB_PENDING };
        Job *sel[MAX_JOBS];

        reset();
        add(1000, JOB_RUNNING, NULL)->staged = &ended;
        add(1001, JOB_RUNNING, NULL);
        add(1002, JOB_QUEUED, NULL)->staged = &started;
        add(1003, JOB_QUEUED, NULL);
        add(1004, JOB_QUEUED, NULL);
        /* two of three slots held (1001 running, 1002 staged to start): one left, for 1003 */
        ck_assert_uint_eq(select_(0, 3, sel), 1);
        ck_assert_ptr_eq(sel[0], &jobs[3]);
        /* the staged end of 1000 is what frees the slot */
        jobs[0].staged = NULL;
        ck_assert_uint_eq(select_(0, 3, sel), 0);
}
END_TEST

START_TEST(test_ended_sandbox_frees_cluster_slot) {
        Job *sel[MAX_JOBS];

        /* MaxClusters 1: a job whose sandbox has ended (its worker records the outcome) holds no
         * cluster slot, but it still counts for its owner's JobsPerUser. */
        reset();
        add(1, JOB_RUNNING, NULL);
        add(1, JOB_QUEUED, NULL);
        add(2, JOB_QUEUED, NULL);
        ck_assert_uint_eq(select_(0, 1, sel), 0);
        jobs[0].sandbox_ended = true;
        ck_assert_uint_eq(select_(0, 1, sel), 1);
        /* user 2 holds no slot, user 1 still one */
        ck_assert_ptr_eq(sel[0], &jobs[2]);
        /* JobsPerUser 1: user 1's finishing job keeps its second one queued */
        jobs[2].state = JOB_SUCCEEDED;
        ck_assert_uint_eq(select_(1, 1, sel), 0);
        ck_assert_uint_eq(select_(2, 1, sel), 1);
        ck_assert_ptr_eq(sel[0], &jobs[1]);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("scheduler");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_states);
        tcase_add_test(tc, test_transitions);
        tcase_add_test(tc, test_ids);
        tcase_add_test(tc, test_per_user_limit);
        tcase_add_test(tc, test_max_clusters_fair_share);
        tcase_add_test(tc, test_platforms_independent);
        tcase_add_test(tc, test_both_limits_and_unknown_ignored);
        tcase_add_test(tc, test_empty);
        tcase_add_test(tc, test_planqk_view);
        tcase_add_test(tc, test_timestamps);
        tcase_add_test(tc, test_subjects_are_users);
        tcase_add_test(tc, test_staged_states);
        tcase_add_test(tc, test_ended_sandbox_frees_cluster_slot);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
