/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include "job-limits.h"
#include "log.h"
#include "macro.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

static inline void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}
#define CFS_PERIOD_US 100000

enum { CG_MEMORY, CG_PIDS, CG_CPU, _CG_MAX };
static const char * const controller_names[_CG_MAX] = { "memory", "pids", "cpu" };

struct JobCgroup {
        JobLimits limits;
        bool v2;
        char *dir[_CG_MAX];      /* job cgroup per controller (v2: all the same) */
        char *procs[_CG_MAX];    /* DIR/cgroup.procs, or NULL */
        char *group[_CG_MAX];    /* the lab instance's cgroup per controller, or NULL */
        bool group_unlimited[_CG_MAX];  /* ... whose limit could not be set */
        bool rlimit_memory, rlimit_pids;
        char description[128];
};

static int write_file(const char *path, const char *value) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = write(fd, value, strlen(value));
        if (n < 0)
                return -errno;
        return (size_t) n == strlen(value) ? 0 : -EIO;
}

static int write_filef(const char *dir, const char *file, const char *format, ...) _printf_(3, 4);
static int write_filef(const char *dir, const char *file, const char *format, ...) {
        _cleanup_free_ char *path = NULL, *value = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&value, format, ap);
        va_end(ap);
        if (r < 0 || asprintf(&path, "%s/%s", dir, file) < 0)
                return -ENOMEM;
        return write_file(path, value);
}

static bool list_has(char *list, const char *separators, const char *word) {
        for (char *t, *s = list; (t = strsep(&s, separators));)
                if (streq(t, word))
                        return true;
        return false;
}

/* The worker's own cgroup path in the hierarchy holding controller (NULL: the v2 "0::" line),
 * "" for the root. */
static char *own_cgroup(const char *controller) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
        char line[4096];

        if (!f)
                return NULL;
        while (fgets(line, sizeof(line), f)) {
                char *ctrls = strchr(line, ':'), *path;
                if (!ctrls)
                        continue;
                path = strchr(++ctrls, ':');
                if (!path)
                        continue;
                *path++ = 0;
                path[strcspn(path, "\n")] = 0;
                if (controller ? list_has(ctrls, ",", controller) : ctrls[0] == 0)
                        return strdup(streq(path, "/") ? "" : path);
        }
        return NULL;
}

static bool is_v2_host(void) {
        struct statfs fs;
        return statfs(CGROUP_ROOT, &fs) >= 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

static bool file_has_word(const char *path, const char *word) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char buf[512];

        return f && fgets(buf, sizeof(buf), f) && list_has(buf, " \n", word);
}

static void kill_procs(const char *dir) {
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        int pid;

        if (asprintf(&path, "%s/cgroup.procs", dir) < 0)
                return;
        f = fopen(path, "re");
        while (f && fscanf(f, "%d", &pid) == 1)
                if (pid > 0)
                        (void) kill(pid, SIGKILL);
}

/* A worker killed with SIGKILL cannot remove its job's cgroups: the next one kills what is left
 * in job cgroups whose worker (the pid at the end of the name) is gone, and removes them. Only
 * below our own cgroup, i.e. among workers of the same gatewayd, which share our pid namespace. */
static void prune_stale(const char *base, bool groups) {
        _cleanup_(closedirp) DIR *d = opendir(base);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                const char *dash;
                _cleanup_free_ char *p = NULL;
                int pid;

                /* A lab instance's group: its members' stale job cgroups, then the group itself
                 * if no member is left (EBUSY otherwise). */
                if (groups && de->d_type == DT_DIR && strneq(de->d_name, "gatewayd-lab-", 13) &&
                    asprintf(&p, "%s/%s", base, de->d_name) >= 0) {
                        prune_stale(p, false);
                        if (rmdir(p) >= 0)
                                log_debug("Removed stale cgroup %s.", p);
                        continue;
                }
                if (de->d_type != DT_DIR || !strneq(de->d_name, "gatewayd-job-", 13))
                        continue;
                dash = strrchr(de->d_name, '-');
                pid = atoi(dash + 1);
                if (pid <= 0 || kill(pid, 0) == 0 || errno != ESRCH)
                        continue;
                if (asprintf(&p, "%s/%s", base, de->d_name) < 0)
                        continue;
                kill_procs(p);
                for (int attempt = 0; attempt < 20; attempt++) {
                        if (rmdir(p) >= 0) {
                                log_debug("Removed stale cgroup %s.", p);
                                break;
                        }
                        if (errno != EBUSY)
                                break;
                        usleep(5000);
                }
        }
}

static int make_dir(JobCgroup *c, int i, const char *base, const char *name) {
        _cleanup_free_ char *d = NULL;

        if (asprintf(&d, "%s/%s", base, name) < 0)
                return -ENOMEM;
        if (mkdir(d, 0755) < 0 && errno != EEXIST)
                return -errno;
        if (asprintf(&c->procs[i], "%s/cgroup.procs", d) < 0)
                return -ENOMEM;
        c->dir[i] = TAKE_PTR(d);
        return 0;
}

static int enable_controllers(const char *base);

static uint64_t group_limit(const JobCgroup *c, int i) {
        return i == CG_MEMORY ? c->limits.group_memory : i == CG_PIDS ? c->limits.group_pids : 0;
}

/* Sets the group's limit for controller i in dir (the group's cgroup in that hierarchy), and
 * remembers dir to be removed by the last member. */
static int group_set_limit(JobCgroup *c, int i, const char *dir) {
        uint64_t v = group_limit(c, i);
        int r = 0;

        c->group[i] = strdup(dir);
        if (!c->group[i])
                return -ENOMEM;
        if (v == 0)
                return 0;
        if (i == CG_MEMORY && c->v2) {
                r = write_filef(dir, "memory.max", "%" PRIu64, v);
                (void) write_filef(dir, "memory.swap.max", "0");
        } else if (i == CG_MEMORY) {
                r = write_filef(dir, "memory.limit_in_bytes", "%" PRIu64, v);
                (void) write_filef(dir, "memory.memsw.limit_in_bytes", "%" PRIu64, v);
        } else
                r = write_filef(dir, "pids.max", "%" PRIu64, v);
        if (r < 0) {
                c->group_unlimited[i] = true;
                log_warning_errno(r, "Cannot set the lab instance's %s limit in %s: %m", controller_names[i], dir);
        }
        return r;
}

/* Makes (or finds: another member made it) the lab instance's cgroup below *base, sets its limit
 * for controller i there, and makes it the new *base. Every member writes the same limits. */
static int group_enter(JobCgroup *c, int i, char **base) {
        _cleanup_free_ char *d = NULL;

        if (asprintf(&d, "%s/%s", *base, c->limits.group) < 0)
                return -ENOMEM;
        if (mkdir(d, 0755) < 0 && errno != EEXIST)
                return log_debug_errno(errno, "Cannot create the lab cgroup %s: %m", d);
        if (c->v2 && enable_controllers(d) < 0)
                log_debug("Cannot enable controllers in %s.", d);
        (void) group_set_limit(c, i, d);
        free(*base);
        *base = TAKE_PTR(d);
        return 0;
}

/* Whether the job (or its lab instance's group) has a limit that controller i enforces. In v1
 * each hierarchy is a cgroup of its own to make, enter (a wait for an RCU grace period) and
 * remove: none without a limit. */
static bool wants(const JobLimits *l, int i) {
        return i == CG_MEMORY ? l->memory > 0 || l->group_memory > 0 :
               i == CG_PIDS ? l->pids > 0 || l->group_pids > 0 : l->cpus > 0;
}

static void setup_v1(JobCgroup *c, const char *name) {
        for (int i = 0; i < _CG_MAX; i++) {
                _cleanup_free_ char *own = NULL, *base = NULL;
                struct statfs fs;
                int r;

                if (!wants(&c->limits, i) || !(own = own_cgroup(controller_names[i])))
                        continue;
                if (asprintf(&base, CGROUP_ROOT "/%s%s", controller_names[i], own) < 0)
                        continue;
                if (statfs(base, &fs) < 0 || fs.f_type != CGROUP_SUPER_MAGIC)
                        continue;
                prune_stale(base, true);
                if (c->limits.group && group_enter(c, i, &base) < 0)
                        continue;
                r = make_dir(c, i, base, name);
                if (r < 0)
                        log_debug_errno(r, "Cannot create a %s cgroup below %s: %m", controller_names[i], base);
        }
}

/* Hands memory, pids and cpu (those available) down to children of base. */
static int enable_controllers(const char *base) {
        int r = 0;

        for (int i = 0; i < _CG_MAX; i++) {
                int k = write_filef(base, "cgroup.subtree_control", "+%s", controller_names[i]);
                if (k == -EBUSY)
                        return k;
                if (k < 0 && k != -ENOENT)   /* ENOENT: not available here */
                        r = k;
        }
        return r;
}

static void setup_v2(JobCgroup *c, const char *name) {
        _cleanup_free_ char *own = own_cgroup(NULL), *base = NULL;
        int r;

        if (!own || asprintf(&base, CGROUP_ROOT "%s", own) < 0)
                return;
        r = enable_controllers(base);
        if (r == -EBUSY) {
                /* "No internal processes": a cgroup that hands controllers to children may not
                 * hold processes itself. Move ourselves into a leaf and try again; this works when
                 * gatewayd gave the worker a (delegated) cgroup of its own, and changes nothing
                 * that matters when it did not. */
                _cleanup_free_ char *leaf = NULL;
                if (asprintf(&leaf, "%s/gatewayd-worker", base) >= 0 &&
                    (mkdir(leaf, 0755) >= 0 || errno == EEXIST) &&
                    write_filef(leaf, "cgroup.procs", "0") >= 0)
                        r = enable_controllers(base);
        }
        if (r < 0)
                log_debug_errno(r, "Cannot enable controllers in %s: %m", base);
        prune_stale(base, true);
        if (c->limits.group) {
                c->v2 = true;   /* for group_enter()'s files */
                if (group_enter(c, CG_MEMORY, &base) < 0) {
                        c->v2 = false;
                        return;
                }
                (void) group_set_limit(c, CG_PIDS, base);
        }
        r = make_dir(c, CG_MEMORY, base, name);
        if (r < 0) {
                log_debug_errno(r, "Cannot create a cgroup below %s: %m", base);
                c->v2 = false;
                return;
        }
        c->v2 = true;
        for (int i = CG_PIDS; i < _CG_MAX; i++) {
                c->dir[i] = strdup(c->dir[CG_MEMORY]);
                c->procs[i] = strdup(c->procs[CG_MEMORY]);
        }
        /* Only the controllers that are actually available count. */
        for (int i = 0; i < _CG_MAX; i++) {
                _cleanup_free_ char *ctrls = NULL;
                if (asprintf(&ctrls, "%s/cgroup.controllers", c->dir[CG_MEMORY]) >= 0 &&
                    file_has_word(ctrls, controller_names[i]))
                        continue;
                if (i != CG_MEMORY) {
                        c->dir[i] = mfree(c->dir[i]);
                        c->procs[i] = mfree(c->procs[i]);
                }
        }
}

static bool has(const JobCgroup *c, int i) {
        _cleanup_free_ char *ctrls = NULL;

        if (!c->dir[i])
                return false;
        if (!c->v2 || i != CG_MEMORY)
                return true;
        return asprintf(&ctrls, "%s/cgroup.controllers", c->dir[i]) >= 0 && file_has_word(ctrls, "memory");
}

static void apply_limits(JobCgroup *c) {
        const JobLimits *l = &c->limits;
        int r;

        if (l->memory > 0 && has(c, CG_MEMORY)) {
                if (c->v2) {
                        r = write_filef(c->dir[CG_MEMORY], "memory.max", "%" PRIu64, l->memory);
                        (void) write_filef(c->dir[CG_MEMORY], "memory.swap.max", "0");
                } else {
                        r = write_filef(c->dir[CG_MEMORY], "memory.limit_in_bytes", "%" PRIu64, l->memory);
                        /* memory+swap = memory: no swapping past the limit (absent without swap accounting) */
                        (void) write_filef(c->dir[CG_MEMORY], "memory.memsw.limit_in_bytes", "%" PRIu64, l->memory);
                }
                if (r < 0)
                        log_warning_errno(r, "Cannot set the memory limit in %s: %m", c->dir[CG_MEMORY]);
                c->rlimit_memory = r < 0;
        } else
                c->rlimit_memory = l->memory > 0;

        if (l->pids > 0 && has(c, CG_PIDS)) {
                /* bwrap and our init live in the cgroup too */
                r = write_filef(c->dir[CG_PIDS], "pids.max", "%" PRIu64, l->pids + 2);
                if (r < 0)
                        log_warning_errno(r, "Cannot set the pids limit in %s: %m", c->dir[CG_PIDS]);
                c->rlimit_pids = r < 0;
        } else
                c->rlimit_pids = l->pids > 0;

        if (l->cpus > 0 && has(c, CG_CPU)) {
                uint64_t quota = (uint64_t) (l->cpus * CFS_PERIOD_US);
                quota = MAX(quota, (uint64_t) 1000);
                if (c->v2)
                        r = write_filef(c->dir[CG_CPU], "cpu.max", "%" PRIu64 " %d", quota, CFS_PERIOD_US);
                else {
                        r = write_filef(c->dir[CG_CPU], "cpu.cfs_period_us", "%d", CFS_PERIOD_US);
                        if (r >= 0)
                                r = write_filef(c->dir[CG_CPU], "cpu.cfs_quota_us", "%" PRIu64, quota);
                }
                if (r < 0)
                        log_warning_errno(r, "Cannot set the CPU limit in %s: %m", c->dir[CG_CPU]);
        }
}

/* The group holds controller i's limit for this job: it has the limit, and the job's cgroup
 * for that controller is below it. */
static bool group_holds(const JobCgroup *c, int i) {
        return c->group[i] && !c->group_unlimited[i] && has(c, i);
}

/* The lab instance's limits that no group cgroup holds are this member's own (at most). */
static void group_fallback(JobCgroup *c) {
        JobLimits *l = &c->limits;

        if (l->group_memory > 0 && !group_holds(c, CG_MEMORY))
                l->memory = l->memory > 0 ? MIN(l->memory, l->group_memory) : l->group_memory;
        if (l->group_pids > 0 && !group_holds(c, CG_PIDS))
                l->pids = l->pids > 0 ? MIN(l->pids, l->group_pids) : l->group_pids;
}

int job_cgroup_new(const char *name, const JobLimits *limits, bool use_cgroups, JobCgroup **ret) {
        JobCgroup *c;
        const char *kind;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->limits = *limits;
        if (use_cgroups) {
                if (is_v2_host())
                        setup_v2(c, name);
                else
                        setup_v1(c, name);
        }
        group_fallback(c);
        apply_limits(c);

        kind = c->v2 ? "cgroup-v2" : "cgroup-v1";
        snprintf(c->description, sizeof(c->description), "memory=%s pids=%s cpu=%s%s%s",
                 has(c, CG_MEMORY) ? kind : c->limits.memory > 0 ? "rlimit" : "none",
                 has(c, CG_PIDS) ? kind : c->limits.pids > 0 ? "rlimit" : "none",
                 has(c, CG_CPU) ? kind : "none", c->group[CG_MEMORY] || c->group[CG_PIDS] ? " group=" : "",
                 c->group[CG_MEMORY] || c->group[CG_PIDS] ? limits->group : "");
        *ret = c;
        return 0;
}

const char *job_cgroup_describe(const JobCgroup *c) {
        return c->description;
}

int job_cgroup_enter(const JobCgroup *c) {
        int r = 0;

        for (int i = 0; i < _CG_MAX; i++) {
                bool dup = false;
                if (!c->procs[i])
                        continue;
                for (int j = 0; j < i; j++)
                        if (c->procs[j] && streq(c->procs[j], c->procs[i]))
                                dup = true;
                if (!dup) {
                        int k = write_file(c->procs[i], "0");
                        if (k < 0)
                                r = k;
                }
        }
        if (c->rlimit_memory) {
                struct rlimit rl = { c->limits.memory, c->limits.memory };
                if (setrlimit(RLIMIT_AS, &rl) < 0)
                        r = -errno;
        }
        if (c->rlimit_pids) {
                /* counted per uid: our init runs as the job's uid, bwrap (root) does not count */
                struct rlimit rl = { c->limits.pids + 1, c->limits.pids + 1 };
                if (setrlimit(RLIMIT_NPROC, &rl) < 0)
                        r = -errno;
        }
        return r;
}

static uint64_t read_key(const char *dir, const char *file, const char *key) {
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        char k[64];
        unsigned long long v;

        if (asprintf(&path, "%s/%s", dir, file) < 0)
                return 0;
        f = fopen(path, "re");
        if (!f)
                return 0;
        while (fscanf(f, "%63s %llu", k, &v) == 2)
                if (streq(k, key))
                        return v;
        return 0;
}

bool job_cgroup_oom_killed(const JobCgroup *c) {
        if (!has(c, CG_MEMORY))
                return false;
        if (c->v2)
                return read_key(c->dir[CG_MEMORY], "memory.events", "oom_kill") > 0;
        return read_key(c->dir[CG_MEMORY], "memory.oom_control", "oom_kill") > 0;
}

int job_cgroup_kill(const JobCgroup *c, int sig) {
        int n = 0;

        for (int i = 0; i < _CG_MAX; i++) {
                _cleanup_fclose_ FILE *f = NULL;
                int pid;

                if (!c->procs[i])
                        continue;
                f = fopen(c->procs[i], "re");
                if (!f)
                        continue;
                while (fscanf(f, "%d", &pid) == 1)
                        if (pid > 0 && kill(pid, sig) >= 0)
                                n++;
                if (n > 0 || i == _CG_MAX - 1)
                        break;    /* one hierarchy holding processes is enough */
        }
        return n;
}

void job_cgroup_free(JobCgroup *c) {
        if (!c)
                return;
        for (int i = 0; i < _CG_MAX; i++) {
                if (!c->dir[i])
                        continue;
                /* Removal fails while the last killed processes are still exiting. */
                for (int attempt = 0; attempt < 200 && rmdir(c->dir[i]) < 0 && errno == EBUSY; attempt++) {
                        job_cgroup_kill(c, SIGKILL);
                        usleep(5000);
                }
                if (access(c->dir[i], F_OK) >= 0 && !c->v2)
                        log_warning("Cannot remove cgroup %s.", c->dir[i]);
                free(c->dir[i]);
                free(c->procs[i]);
        }
        /* The last member takes its instance's group with it (EBUSY while others live). */
        for (int i = 0; i < _CG_MAX; i++) {
                if (c->group[i] && rmdir(c->group[i]) >= 0)
                        log_debug("Removed the lab cgroup %s.", c->group[i]);
                free(c->group[i]);
        }
        free(c);
}
