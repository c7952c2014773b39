/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Resource limits of one job: a cgroup per job where the host allows it, rlimits otherwise.
 *
 * Hosts differ: on a pure cgroup v2 host the job cgroup is created below the worker's own
 * cgroup, which must have the memory/pids/cpu controllers delegated (e.g. a systemd unit with
 * Delegate=yes whose cgroup.subtree_control enables them; the worker tries to enable them). On a
 * v1 or hybrid host (systemd's hybrid layout: v1 controllers under /sys/fs/cgroup/CONTROLLER, a
 * controller-less v2 tree at /sys/fs/cgroup/unified) each v1 controller gets a job cgroup below
 * the worker's cgroup in that hierarchy. What cannot be had from cgroups falls back to rlimits:
 * RLIMIT_AS for memory (a failed allocation, which cannot be told from other failures, instead of
 * an OOM kill) and RLIMIT_NPROC for pids (counted per uid, so jobs of one user share it). */

typedef struct JobLimits {
        uint64_t memory;        /* bytes; 0 = none */
        uint64_t pids;          /* processes of the job, the sandbox's own not counted; 0 = none */
        double cpus;            /* 0 = none */
        /* A lab member: the job cgroup goes below this cgroup of its instance (made by the first
         * member, shared by the others, removed by the last), which holds the instance's limits
         * for all members together. Where the group cannot be had, its limits apply to this job
         * alone (as with rlimits). NULL: no group. */
        const char *group;
        uint64_t group_memory;  /* bytes; 0 = none */
        uint64_t group_pids;    /* every process in the group, sandboxes' own included; 0 = none */
} JobLimits;

typedef struct JobCgroup JobCgroup;

/* use_cgroups=false skips cgroups entirely (rlimits only). Never fails for lack of cgroup
 * support; only for out-of-memory. */
int job_cgroup_new(const char *name, const JobLimits *limits, bool use_cgroups, JobCgroup **ret);

/* In the forked child, before exec: joins the cgroups and sets the fallback rlimits. Only
 * async-signal-safe calls; paths were prepared by job_cgroup_new(). */
int job_cgroup_enter(const JobCgroup *c);

/* True if the kernel OOM-killed something in the job's memory cgroup. */
bool job_cgroup_oom_killed(const JobCgroup *c);
/* Sends sig to every process in the job's cgroup; returns how many were signalled. */
int job_cgroup_kill(const JobCgroup *c, int sig);
/* Kills what is left, removes the cgroups, frees c. */
void job_cgroup_free(JobCgroup *c);

/* "memory=cgroup-v1 pids=cgroup-v1 cpu=none" and the like, for the log. */
const char *job_cgroup_describe(const JobCgroup *c);
