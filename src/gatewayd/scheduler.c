/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "scheduler.h"

/* A user is a job's owner: a local account, or an external user acting as one (job_is_owned_by()). */
typedef struct UserQueue {
        uid_t uid;
        const char *subject;
        unsigned active;
        Job **queued;     /* oldest first */
        size_t n_queued, next;
} UserQueue;

typedef struct PlatformLoad {
        const char *name;
        unsigned active;
} PlatformLoad;

static int compare_seq(const void *a, const void *b) {
        const Job *x = *(Job * const *) a, *y = *(Job * const *) b;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static UserQueue *user_find(UserQueue *users, size_t *n_users, const Job *j) {
        for (size_t i = 0; i < *n_users; i++)
                if (job_is_owned_by(j, users[i].uid, users[i].subject))
                        return &users[i];
        users[*n_users] = (UserQueue) { .uid = j->uid, .subject = j->subject };
        return &users[(*n_users)++];
}

static PlatformLoad *platform_find(PlatformLoad *p, size_t *n, const char *name) {
        for (size_t i = 0; i < *n; i++)
                if (streq(p[i].name, name))
                        return &p[i];
        p[*n] = (PlatformLoad) { .name = name };
        return &p[(*n)++];
}

size_t scheduler_select(const SchedulerLimits *limits, Job * const *jobs, size_t n_jobs, Job **ret) {
        _cleanup_free_ UserQueue *users = NULL;
        _cleanup_free_ PlatformLoad *platforms = NULL;
        _cleanup_free_ Job **queued = NULL, **slices = NULL;
        size_t n_users = 0, n_platforms = 0, n_queued = 0, n_ret = 0;

        if (n_jobs == 0)
                return 0;
        users = calloc(n_jobs, sizeof(UserQueue));
        platforms = calloc(n_jobs, sizeof(PlatformLoad));
        queued = calloc(n_jobs, sizeof(Job *));
        if (!users || !platforms || !queued)
                return 0; /* try again at the next event */

        for (size_t i = 0; i < n_jobs; i++) {
                Job *j = jobs[i];
                JobState state = job_effective_state(j);

                if (job_state_is_active(state)) {
                        user_find(users, &n_users, j)->active++;
                        if (!j->sandbox_ended)
                                platform_find(platforms, &n_platforms, j->platform)->active++;
                } else if (state == JOB_QUEUED)
                        queued[n_queued++] = j;
        }
        if (n_queued == 0)
                return 0;

        /* Sorted once, then cut into one contiguous slice per user, each still oldest first. */
        qsort(queued, n_queued, sizeof(Job *), compare_seq);
        for (size_t i = 0; i < n_queued; i++)
                user_find(users, &n_users, queued[i])->n_queued++;
        slices = calloc(n_queued, sizeof(Job *));
        if (!slices)
                return 0;
        for (size_t k = 0, off = 0; k < n_users; k++) {
                users[k].queued = slices + off;
                off += users[k].n_queued;
        }
        for (size_t i = 0; i < n_queued; i++) {
                UserQueue *u = user_find(users, &n_users, queued[i]);
                u->queued[u->next++] = queued[i];
        }
        for (size_t k = 0; k < n_users; k++)
                users[k].next = 0;

        for (;;) {
                UserQueue *best = NULL;

                for (size_t k = 0; k < n_users; k++) {
                        UserQueue *u = &users[k];
                        Job *head;

                        if (u->next >= u->n_queued)
                                continue;
                        if (limits->jobs_per_user > 0 && u->active >= limits->jobs_per_user)
                                continue;
                        head = u->queued[u->next];
                        if (limits->max_clusters > 0 &&
                            platform_find(platforms, &n_platforms, head->platform)->active >= limits->max_clusters)
                                continue;
                        if (!best || u->active < best->active ||
                            (u->active == best->active && head->seq < best->queued[best->next]->seq))
                                best = u;
                }
                if (!best)
                        break;

                ret[n_ret] = best->queued[best->next++];
                best->active++;
                platform_find(platforms, &n_platforms, ret[n_ret]->platform)->active++;
                n_ret++;
        }
        return n_ret;
}
