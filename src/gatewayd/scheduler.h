/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include "job.h"

typedef struct SchedulerLimits {
        unsigned jobs_per_user;   /* PENDING+RUNNING per user; 0 = unlimited */
        unsigned max_clusters;    /* PENDING+RUNNING per platform whose sandbox has not ended
                                   * (!Job.sandbox_ended); 0 = unlimited */
} SchedulerLimits;

/* Decides which QUEUED jobs may start now. jobs holds every job whose effective state (the one
 * staged in the open group commit, job_effective_state()) is not terminal, in any order. Writes
 * the jobs to promote to PENDING into ret, in the order they should start, and returns how many.
 *
 * Fair share: a slot goes to the user who holds the fewest slots right now, ties to the user
 * whose oldest queued job is oldest; each user's jobs start oldest first. So with equal demand
 * users alternate, and a user who floods the queue cannot starve one who submits a single job.
 * Pure function of its input, so it is unit-tested without a daemon. */
size_t scheduler_select(const SchedulerLimits *limits, Job * const *jobs, size_t n_jobs, Job **ret);
