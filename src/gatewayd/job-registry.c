/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool-layout.h"
#include "config.h"
#include "db.h"
#include "fs-util.h"
#include "fsync-pool.h"
#include "image.h"
#include "job-registry.h"
#include "json-util.h"
#include "lingering-mounts.h"
#include "log.h"
#include "manager.h"
#include "registry-events.h"
#include "platform.h"
#include "program-provider.h"
#include "program-registry.h"
#include "scheduler.h"
#include "service-registry.h"
#include "spool-reserve.h"

#define JOB_COLUMNS "seq, id, service, platform, uid, gid, state, created_usec, started_usec, ended_usec, " \
                    "exit_code, error_code, error_message, subject, program_id, program, program_provider"

static void job_start(Job *j);
static void job_retention_schedule(Job *j);

static void unfinished_link(Job *j) {
        Manager *m = j->manager;

        j->unfinished_prev = NULL;
        j->unfinished_next = m->unfinished_jobs;
        if (m->unfinished_jobs)
                m->unfinished_jobs->unfinished_prev = j;
        m->unfinished_jobs = j;
        m->n_unfinished_jobs++;
}

static void unfinished_unlink(Job *j) {
        Manager *m = j->manager;

        if (j->unfinished_prev)
                j->unfinished_prev->unfinished_next = j->unfinished_next;
        else
                m->unfinished_jobs = j->unfinished_next;
        if (j->unfinished_next)
                j->unfinished_next->unfinished_prev = j->unfinished_prev;
        j->unfinished_prev = j->unfinished_next = NULL;
        m->n_unfinished_jobs--;
}

static void job_busy_update(Job *j) {
        bool want = !job_state_is_terminal(j->state);

        /* An unfinished job keeps gatewayd from exiting on idle: nobody else would watch it. */
        if (want && !j->busy) {
                manager_busy_ref(j->manager);
                unfinished_link(j);
        } else if (!want && j->busy) {
                manager_busy_unref(j->manager);
                unfinished_unlink(j);
        }
        j->busy = want;
}

static int job_attach(Manager *m, Job *j) {
        int r;

        j->manager = m;
        if (asprintf(&j->spool_dir, "%s/jobs/%s", m->state_dir, j->id) < 0)
                return -ENOMEM;
        r = sd_bus_path_encode(JOB_OBJECT_PREFIX, j->id, &j->object_path);
        if (r < 0)
                return r;
        r = hashmap_put(m->jobs, j->id, j);
        if (r < 0)
                return r;
        job_busy_update(j);
        return 0;
}

static char *column_strdup(sqlite3_stmt *st, int i) {
        const unsigned char *t = sqlite3_column_text(st, i);
        return t ? strdup((const char *) t) : NULL;
}

static int job_from_row(sqlite3_stmt *st, Job **ret) {
        _cleanup_(job_freep) Job *j = job_new();

        if (!j)
                return -ENOMEM;
        j->seq = sqlite3_column_int64(st, 0);
        j->id = column_strdup(st, 1);
        j->service = column_strdup(st, 2);
        j->platform = column_strdup(st, 3);
        if (!j->id || !j->service || !j->platform)
                return -ENOMEM;
        j->uid = (uid_t) sqlite3_column_int64(st, 4);
        j->gid = (gid_t) sqlite3_column_int64(st, 5);
        j->state = job_state_from_string((const char *) sqlite3_column_text(st, 6));
        if (j->state < 0)
                return log_error_errno(EBADMSG, "Job %s in the database has an invalid state; skipping it.", j->id);
        j->created_usec = (uint64_t) sqlite3_column_int64(st, 7);
        j->started_usec = (uint64_t) sqlite3_column_int64(st, 8);
        j->ended_usec = (uint64_t) sqlite3_column_int64(st, 9);
        j->exit_code = sqlite3_column_type(st, 10) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 10);
        j->error_code = column_strdup(st, 11);
        j->error_message = column_strdup(st, 12);
        if (sqlite3_column_type(st, 13) != SQLITE_NULL && !(j->subject = column_strdup(st, 13)))
                return -ENOMEM;
        j->program_id = column_strdup(st, 14);
        j->program = column_strdup(st, 15);
        if (sqlite3_column_type(st, 16) != SQLITE_NULL && !(j->program_provider = column_strdup(st, 16)))
                return -ENOMEM;
        *ret = TAKE_PTR(j);
        return 0;
}

/* A spool directory without a row is what a crash leaves between the commit of a removal and the
 * removal of the directory (or between a submission's spool and its row): nobody can reach it
 * any more. At start no submission is under way, so every such directory is an orphan. */
static bool job_row_exists(sqlite3_stmt *st, const char *id) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        return sqlite3_step(st) != SQLITE_DONE;  /* a row, or an error: then keep the spool */
}

static void job_remove_orphaned_spools(Manager *m) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        _cleanup_free_ char *jobs_dir = NULL;
        struct dirent *de;
        DIR *d;

        if (asprintf(&jobs_dir, "%s/jobs", m->state_dir) < 0) {
                log_oom();
                return;
        }
        /* Asked of the database, not the map: a row that could not be loaded still owns its spool. */
        if (db_prepare(m->db, "SELECT 1 FROM jobs WHERE id = ?", &st) < 0)
                return;
        d = opendir(jobs_dir);
        if (!d) {
                if (errno != ENOENT)
                        log_warning_errno(errno, "Cannot read %s: %m", jobs_dir);
                return;
        }
        while ((de = readdir(d))) {
                int r;

                /* Only names we create: anything else is not ours to delete. */
                if (!job_id_is_valid(de->d_name) || hashmap_get(m->jobs, de->d_name) ||
                    job_row_exists(st, de->d_name))
                        continue;
                r = rm_rf_at(dirfd(d), de->d_name);
                if (r < 0)
                        log_warning_errno(r, "Failed to remove orphaned job spool %s/%s: %m", jobs_dir, de->d_name);
                else
                        log_info("Removed spool directory %s/%s of a job that no longer exists.", jobs_dir, de->d_name);
        }
        closedir(d);
}

int job_registry_load(Manager *m) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc, r;

        r = db_prepare(m->db, "SELECT " JOB_COLUMNS " FROM jobs ORDER BY seq", &st);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                Job *j = NULL;

                if (job_from_row(st, &j) < 0)
                        continue;
                r = job_attach(m, j);
                if (r < 0) {
                        job_free(j);
                        return log_error_errno(r, "Failed to register job: %m");
                }
        }
        if (rc != SQLITE_DONE)
                return log_error_errno(db_errno(rc), "Failed to read jobs: %s", sqlite3_errmsg(m->db));
        log_info("Loaded %zu jobs.", hashmap_size(m->jobs));
        job_remove_orphaned_spools(m);
        return 0;
}

void job_registry_free(Manager *m) {
        Job *j;

        /* Workers are left running: they are in sessions of their own and will be re-attached
         * by the next gatewayd. */
        m->job_dispatch = sd_event_source_disable_unref(m->job_dispatch);
        m->job_retention_timer = sd_event_source_disable_unref(m->job_retention_timer);
        m->job_retry = sd_event_source_disable_unref(m->job_retry);
        HASHMAP_FOREACH(j, m->jobs)
                job_free(j);
        m->jobs = hashmap_free(m->jobs);
        m->unfinished_jobs = NULL;
        m->n_unfinished_jobs = 0;
}

Job *job_registry_get(Manager *m, const char *id) {
        if (!job_id_is_valid(id))
                return NULL;
        return hashmap_get(m->jobs, id);
}

bool job_is_visible_to(const Job *j, const Caller *c) {
        return caller_is_root(c) || job_is_owned_by(j, c->uid, c->subject);
}

#define RETRY_FIRST_USEC (USEC_PER_SEC / 10)
#define RETRY_MAX_USEC (5 * USEC_PER_SEC)

static const char *db_path(Manager *m) {
        return sqlite3_db_filename(m->db, "main");
}

static int job_store(Job *j, const JobUpdate *u) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        Manager *m = j->manager;
        int rc, r;

        r = db_batch_stage(m->db, /* vital= */ true);  /* the UPDATE joins the group commit */
        if (r < 0)
                return r;
        r = db_prepare(m->db,
                       "UPDATE jobs SET state = ?, started_usec = ?, ended_usec = ?, exit_code = ?, "
                       "error_code = ?, error_message = ? WHERE id = ?", &st);
        if (r < 0) {
                db_batch_unstage(m->db);
                return r;
        }
        sqlite3_bind_text(st, 1, job_state_to_string(u->state), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) u->started_usec);
        sqlite3_bind_int64(st, 3, (sqlite3_int64) u->ended_usec);
        if (u->exit_code >= 0)
                sqlite3_bind_int(st, 4, u->exit_code);
        else
                sqlite3_bind_null(st, 4);
        sqlite3_bind_text(st, 5, u->error_code, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, u->error_message, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, j->id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        db_batch_unstage(m->db);
        if (rc != SQLITE_DONE)
                return log_error_errno(db_errno(rc), "Failed to store state of job %s: %s", j->id, sqlite3_errmsg(m->db));
        return 0;
}

/* Memory and the world, once the database has the change. */
static void job_apply(Job *j, const JobUpdate *u) {
        Manager *m = j->manager;

        if (free_and_strdup(&j->error_code, u->error_code) < 0 ||
            free_and_strdup(&j->error_message, u->error_message) < 0)
                log_oom();
        log_info("Job %s (%s, uid %u): %s → %s%s%s", j->id, j->service, (unsigned) j->uid,
                 job_state_to_string(j->state), job_state_to_string(u->state),
                 u->error_message ? ": " : "", strempty(u->error_message));
        j->state = u->state;
        j->started_usec = u->started_usec;
        j->ended_usec = u->ended_usec;
        j->exit_code = u->exit_code;

        registry_publish_job(j->manager, REGISTRY_JOB_CHANGED, j);
        job_notify_watches(j);
        job_busy_update(j);
        if (job_state_is_terminal(j->state)) {
                job_registry_dispatch(m);  /* a slot was freed */
                job_retention_schedule(j);
        } else if (j->state == JOB_PENDING)
                job_start(j);              /* last: it may end the job at once */
}

static void job_retry_soon(Manager *m) {
        if (!m->job_retry)
                return;
        if (m->job_retry_usec == 0)
                m->job_retry_usec = RETRY_FIRST_USEC;
        (void) sd_event_source_set_time_relative(m->job_retry, m->job_retry_usec);
        (void) sd_event_source_set_enabled(m->job_retry, SD_EVENT_ONESHOT);
}

typedef struct StagedUpdate {
        Manager *manager;
        char *id;
        JobUpdate *update;
} StagedUpdate;

/* The group commit that carried a stored change has ended: applied if it is durable, else kept
 * as the job's pending change and retried, as a refused store is. */
static void on_update_committed(int r, void *userdata) {
        StagedUpdate *s = userdata;
        Manager *m = s->manager;
        Job *j = hashmap_get(m->jobs, s->id);

        if (j && j->staged == s->update)
                j->staged = NULL;
        if (j && r >= 0) {
                job_apply(j, s->update);
                if (r > 0)
                        job_retry_soon(m);  /* it used the reserve: take it again once there is room */
        } else if (j && !(j->pending && job_state_is_terminal(j->pending->state))) {
                log_warning_errno(r, "Job %s: cannot store %s yet; retrying: %m", j->id,
                                  job_state_to_string(s->update->state));
                job_update_free(j->pending);
                j->pending = TAKE_PTR(s->update);
                job_retry_soon(m);
        }
        job_update_free(s->update);
        free(s->id);
        free(s);
}

/* Applies u once the group commit holding it is durable; at once if there is none. */
static void job_apply_committed(Job *j, const JobUpdate *u) {
        Manager *m = j->manager;
        StagedUpdate *s;

        if (!db_batch_is_open(m->db))
                return job_apply(j, u);
        s = calloc(1, sizeof(StagedUpdate));
        if (s) {
                s->manager = m;
                s->id = strdup(j->id);
                s->update = job_update_dup(u);
        }
        if (!s || !s->id || !s->update || db_batch_after(m->db, on_update_committed, s) < 0) {
                if (s) {
                        free(s->id);
                        job_update_free(s->update);
                        free(s);
                }
                log_oom();
                if (db_batch_flush(m->db) >= 0)
                        job_apply(j, u);
                return;
        }
        j->staged = s->update;
        /* Its slot is free once this commit is: the next job is promoted into the same commit
         * (the dispatch runs before the commit, which waits for everything else to stage). */
        if (job_state_is_terminal(u->state))
                job_registry_dispatch(m);
}

/* The one place a job's state changes: database first, then memory, then the world. A change the
 * database refuses (a full disk) is kept as the job's pending change and retried with back-off;
 * memory keeps the committed state until then, so nobody sees what a restart would take back. */
static int job_commit(Job *j, const JobUpdate *u) {
        Manager *m = j->manager;
        JobUpdate merged;
        int r;

        if (j->pending) {
                /* The first outcome wins, as it would have had it been stored at once. */
                if (job_state_is_terminal(j->pending->state)) {
                        log_debug("Job %s: ignoring %s, %s is waiting to be stored.", j->id,
                                  job_state_to_string(u->state), job_state_to_string(j->pending->state));
                        return -ESTALE;
                }
                merged = *u;
                if (merged.started_usec == 0)
                        merged.started_usec = j->pending->started_usec;
                u = &merged;
        }
        if (j->staged && u->started_usec == 0 && j->staged->started_usec != 0) {
                merged = *u;
                merged.started_usec = j->staged->started_usec;
                u = &merged;
        }
        if (!job_state_transition_is_valid(j->staged ? j->staged->state : j->state, u->state)) {
                log_debug("Job %s: ignoring transition %s → %s.", j->id, job_state_to_string(j->state),
                          job_state_to_string(u->state));
                return -ESTALE;
        }

        r = job_store(j, u);
        if (r < 0 && (r == -ENOSPC || r == -EIO) && db_reserve_release(db_path(m)) > 0) {
                /* How a job ended must be recorded even on a full disk: that is what the space
                 * set aside next to the database is for. */
                log_warning("State database is out of space; using the space reserved for it.");
                r = job_store(j, u);
                job_retry_soon(m);  /* to take the reserve again once there is room */
        }
        if (r < 0) {
                JobUpdate *p = job_update_dup(u);

                if (!p)
                        return log_oom();
                job_update_free(j->pending);
                j->pending = p;
                log_warning_errno(r, "Job %s: cannot store %s yet; retrying: %m", j->id, job_state_to_string(u->state));
                job_retry_soon(m);
                return r;
        }
        j->pending = job_update_free(j->pending);
        job_apply_committed(j, u);
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        bool left = false;
        Job *j;

        HASHMAP_FOREACH(j, m->jobs) {
                JobUpdate *p = TAKE_PTR(j->pending);

                if (!p)
                        continue;
                (void) job_commit(j, p);
                job_update_free(p);
        }
        (void) db_batch_flush(m->db);  /* a refused commit leaves the changes pending again */
        HASHMAP_FOREACH(j, m->jobs)
                if (j->pending)
                        left = true;
        /* Only with everything stored: the reserve must not take the room a retry needs. */
        if (!left && !db_has_reserve(db_path(m))) {
                int r = db_reserve(db_path(m));

                if (errno_is_disk_full(r))
                        left = true;
                else if (r < 0)
                        log_warning_errno(r, "Cannot reserve space for the state database, going on without: %m");
        }
        if (!left) {
                m->job_retry_usec = 0;
                log_debug("Job changes stored, database reserve in place.");
                return 0;
        }
        m->job_retry_usec = MIN(m->job_retry_usec * 2, (usec_t) RETRY_MAX_USEC);
        job_retry_soon(m);
        return 0;
}

/* A submission is refused while the database has no reserve: accepting it would hand the last
 * space to a new job that the running ones need to record their outcomes. */
static int job_check_space(Manager *m, GwError *e) {
        int r;

        if (db_has_reserve(db_path(m)))
                return 0;
        r = db_reserve(db_path(m));
        if (errno_is_disk_full(r))
                return gw_error_set_errno(e, r, "The state file system is full: cannot accept jobs (%s).", strerror(-r));
        if (r < 0)
                log_warning_errno(r, "Cannot reserve space for the state database, going on without: %m");
        return 0;
}

static int job_transition(Job *j, JobState state, const char *error_code, const char *error_message) {
        JobUpdate u = {
                .state = state,
                .started_usec = j->started_usec,
                .ended_usec = j->ended_usec,
                .exit_code = j->exit_code,
                .error_code = error_code ?: j->error_code,
                .error_message = error_message ?: j->error_message,
        };

        if (job_state_is_terminal(state) && u.ended_usec == 0)
                u.ended_usec = realtime_now_usec();
        return job_commit(j, &u);
}

static void job_worker_running(Job *j, uint64_t started_usec) {
        JobUpdate u = {
                .state = JOB_RUNNING,
                .started_usec = started_usec ?: realtime_now_usec(),
                .exit_code = -1,
        };

        if (j->state == JOB_PENDING)
                (void) job_commit(j, &u);
}

static void job_worker_finished(Job *j, JobState state, int exit_code, const char *error_code,
                                const char *error_message, uint64_t started_usec, uint64_t ended_usec) {
        JobUpdate u = {
                .state = state,
                .started_usec = started_usec ?: j->started_usec,
                .ended_usec = ended_usec ?: realtime_now_usec(),
                .exit_code = exit_code,
                .error_code = error_code,
                .error_message = error_message,
        };

        (void) job_commit(j, &u);
        lingering_mounts_sandbox_ended(j->manager);  /* its image's and program's mounts linger */
        if (j->program_id)
                program_registry_job_ended(j->manager, j);  /* an earlier upload's layer may go */
}

/* A cluster is a sandbox: one that has ended holds no slot, while its worker makes the outcome
 * durable (a few journal commits) and the next job starts meanwhile. The job stays RUNNING,
 * and counts for its owner's JobsPerUser, until that outcome is stored. */
static void job_worker_sandbox_ended(Job *j) {
        if (!job_state_is_active(job_effective_state(j)) || j->sandbox_ended)
                return;
        j->sandbox_ended = true;
        job_registry_dispatch(j->manager);
}

static void job_worker_log(Job *j) {
        job_notify_watches(j);
}

static void job_worker_interim(Job *j, unsigned index, const char *json_text) {
        registry_publish(j->manager, &(RegistryEvent) { .kind = REGISTRY_JOB_INTERIM, .job = j,
                                                        .interim_index = index, .interim_json = json_text });
        job_notify_watches(j);
}

/* What the platforms call as the worker reports. */
static const PlatformJobCallbacks job_platform_callbacks = {
        .on_started = job_worker_running,
        .on_log = job_worker_log,
        .on_interim = job_worker_interim,
        .on_sandbox_ended = job_worker_sandbox_ended,
        .on_exit = job_worker_finished,
};

/* The job's platform; one that is no longer configured runs (and is recovered) on the default
 * one, as every job did before there were several. */
static Platform *job_platform(Job *j) {
        return platform_get(j->manager, j->platform) ?: platform_default(j->manager);
}

/* Scheduling runs deferred, once per loop iteration, however many jobs changed in it. */
static int on_dispatch(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        SchedulerLimits limits = {
                .jobs_per_user = m->config->jobs_per_user,
                .max_clusters = m->config->max_clusters,
        };
        _cleanup_free_ Job **all = NULL, **promote = NULL;
        size_t n = 0, n_promote;
        Job *j;

        all = calloc(m->n_unfinished_jobs + 1, sizeof(Job *));
        promote = calloc(m->n_unfinished_jobs + 1, sizeof(Job *));
        if (!all || !promote)
                return log_oom();
        /* By the states the open group commit will leave: a slot whose job's end is staged goes
         * to the next job in the same commit, and a staged promotion holds its slot already. */
        for (j = m->unfinished_jobs; j; j = j->unfinished_next)
                if (!job_state_is_terminal(job_effective_state(j)))
                        all[n++] = j;

        n_promote = scheduler_select(&limits, all, n, promote);
        for (size_t i = 0; i < n_promote; i++)
                (void) job_transition(promote[i], JOB_PENDING, NULL, NULL);  /* starts it once stored */
        return 0;
}

void job_registry_dispatch(Manager *m) {
        if (m->exiting || !m->job_dispatch)
                return;
        (void) sd_event_source_set_enabled(m->job_dispatch, SD_EVENT_ONESHOT);
}

static void job_fail(Job *j, const char *code, const char *message) {
        (void) job_transition(j, JOB_FAILED, code, message);
}

/* A program's job runs as a transient service built from the program and the job's spool. */
static void program_job_start(Job *j, Image *image) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(service_freep) Service *s = NULL;
        Program *p = program_registry_get(j->manager, j->program_id);
        int r;

        if (!p)
                return job_fail(j, "NO_SUCH_PROGRAM", "The program was removed before the job could start.");
        r = program_job_service(p, j, image->reference ?: "", &s);
        if (r < 0)
                return job_fail(j, "INTERNAL_ERROR", "Cannot read the job's arguments from its spool.");
        if (platform_start_job(job_platform(j), j, s, image, &job_platform_callbacks, &e) < 0)
                return job_fail(j, e.code == GW_ERROR_INSUFFICIENT_STORAGE ? "DISK_FULL" : "INTERNAL_ERROR",
                                e.message ?: "Failed to start the worker.");
        image_mark_used(image);
}

static void on_image_ready(Manager *m, Image *image, const GwError *error, void *userdata) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        char *id = userdata;
        Job *j = job_registry_get(m, id);
        Service *s;

        if (!j || j->image_request != id) {
                free(id);
                return;
        }
        j->image_request = mfree(j->image_request);
        if (j->state != JOB_PENDING || j->worker_started)
                return; /* cancelled meanwhile */
        if (error && gw_error_is_set(error))
                return job_fail(j, "IMAGE_PULL_FAILED", error->message ?: "Image could not be pulled.");
        if (!image)
                return job_fail(j, "IMAGE_PULL_FAILED", "Image is not available.");

        if (j->program_id)
                return program_job_start(j, image);
        s = service_registry_get(m, j->service);
        if (!s)
                return job_fail(j, "NO_SUCH_SERVICE", "The service was removed before the job could start.");
        if (platform_start_job(job_platform(j), j, s, image, &job_platform_callbacks, &e) < 0)
                return job_fail(j, e.code == GW_ERROR_INSUFFICIENT_STORAGE ? "DISK_FULL" : "INTERNAL_ERROR",
                                e.message ?: "Failed to start the worker.");
        image_mark_used(image);
}

/* What the run's submission checked may have changed while the job waited for its slot (a
 * restart with another configuration, a user taken out of a provider's group): checked again
 * before anything is pulled or started for it. */
static int program_job_still_allowed(Job *j, const Program *p, GwError *e) {
        Caller owner = { .uid = j->uid, .gid = j->gid, .pidfd = -1 };

        if (p->provider && program_provider_role(j->manager, &owner, p->provider) == PROGRAM_ROLE_NONE)
                return gw_error_set(e, GW_ERROR_ACCESS_DENIED,
                                    "The job's owner is no longer an admin or user of provider %s (ProgramProviders).",
                                    p->provider);
        if (p->image)
                return program_registry_check_image(j->manager, p->image, NULL, e);
        return 0;
}

static void job_start(Job *j) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Manager *m = j->manager;
        const char *image;
        Service *s;
        int r;

        if (j->image_request || j->worker_started)
                return;
        if (j->program_id) {
                /* a program's job runs on its own image, or on the base image of programs */
                Program *p = program_registry_get(m, j->program_id);
                if (!p)
                        return job_fail(j, "NO_SUCH_PROGRAM", "The program was removed before the job could start.");
                if (program_job_still_allowed(j, p, &e) < 0)
                        return job_fail(j, "ACCESS_DENIED", e.message ?: "The program may no longer run.");
                image = program_image(p, m->config->program_image);
                if (!image)
                        return job_fail(j, "NO_PROGRAM_IMAGE", "No ProgramImage is configured.");
        } else {
                s = service_registry_get(m, j->service);
                if (!s)
                        return job_fail(j, "NO_SUCH_SERVICE", "The service was removed before the job could start.");
                image = s->image;
        }
        j->image_request = strdup(j->id);
        if (!j->image_request)
                return job_fail(j, "INTERNAL_ERROR", "Out of memory.");

        /* PENDING while the image is made READY; the callback may come at once or after a pull. */
        r = image_registry_ensure_ready(m, job_platform(j)->name, image, j->uid, on_image_ready, j->image_request);
        if (r < 0) {
                j->image_request = mfree(j->image_request);
                log_warning_errno(r, "Job %s: cannot get image %s: %m", j->id, image);
                return job_fail(j, "IMAGE_PULL_FAILED", "The image could not be requested.");
        }
}

/* The input files written, to be flushed before the row that points at them is committed: here,
 * or (unsync given) by the caller, which takes the files' fds. */
typedef struct SpoolInput {
        bool unsync;
        int fds[4];
        size_t n_fds;
} SpoolInput;

static void spool_input_done(SpoolInput *in) {
        for (size_t i = 0; i < in->n_fds; i++)
                safe_close(in->fds[i]);
        in->n_fds = 0;
}

static int write_file_at(int dfd, const char *name, const char *text, SpoolInput *in) {
        _cleanup_close_ int fd = -1;
        int r;

        assert(in->n_fds < ELEMENTSOF(in->fds));
        fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        r = loop_write(fd, text, strlen(text));
        if (r >= 0 && in->unsync) {
                in->fds[in->n_fds++] = TAKE_FD(fd);
                return 0;
        }
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        return r;
}

/* The spool exists before the row that points at it, so a committed job always has its input. */
static int job_create_spool(Job *j, json_object *data, json_object *params, json_object *arguments, json_object *env,
                            SpoolInput *in) {
        _cleanup_free_ char *jobs_dir = NULL, *input = NULL;
        _cleanup_close_ int dfd = -1;
        int r;

        if (asprintf(&jobs_dir, "%s/jobs", j->manager->state_dir) < 0 ||
            !(input = spool_path(j->spool_dir, SPOOL_INPUT_DIR)))
                return -ENOMEM;
        if (mkdir(jobs_dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (mkdir(j->spool_dir, 0700) < 0)
                return -errno;
        if (mkdir(input, 0700) < 0)
                return -errno;
        /* Room for the job's final state, whatever its output does to the disk (the worker
         * writes exit.json into it). */
        dfd = open(j->spool_dir, O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        r = reserve_file_at(dfd, SPOOL_RESERVE_NAME, SPOOL_RESERVE_SIZE);
        if (r < 0)
                return r;
        safe_close(r);
        safe_close(dfd);
        dfd = open(input, O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        r = write_file_at(dfd, "data.json",
                          data ? json_object_to_json_string_ext(data, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : "{}", in);
        if (r >= 0)
                r = write_file_at(dfd, "params.json",
                                  params ? json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : "{}", in);
        /* a program's job: its arguments (also /var/input/arguments.json) and the run's env */
        if (r >= 0 && arguments)
                r = write_file_at(dfd, PROGRAM_ARGUMENTS_FILE,
                                  json_object_to_json_string_ext(arguments, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), in);
        if (r >= 0 && env)
                r = write_file_at(dfd, PROGRAM_ENV_FILE,
                                  json_object_to_json_string_ext(env, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), in);
        return r;
}

static unsigned count_unfinished(Manager *m, const Caller *c) {
        unsigned n = 0;
        Job *j;

        for (j = m->unfinished_jobs; j; j = j->unfinished_next)
                if (job_is_owned_by(j, c->uid, c->subject))
                        n++;
        return n;
}

static int job_insert(Job *j, bool now, GwError *e) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        Manager *m = j->manager;
        int rc, r;

        r = db_batch_stage(m->db, /* vital= */ false);
        if (r < 0)
                return gw_error_set_errno(e, r, "Database error.");
        r = db_prepare(m->db,
                       "INSERT INTO jobs (id, service, platform, uid, gid, state, created_usec, started_usec, ended_usec, "
                       "subject, program_id, program, program_provider) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?)", &st);
        if (r < 0) {
                db_batch_unstage(m->db);
                return gw_error_set_errno(e, r, "Database error.");
        }
        sqlite3_bind_text(st, 1, j->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, j->service, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, j->platform, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, j->uid);
        sqlite3_bind_int64(st, 5, j->gid);
        sqlite3_bind_text(st, 6, job_state_to_string(j->state), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, (sqlite3_int64) j->created_usec);
        sqlite3_bind_text(st, 8, j->subject, -1, SQLITE_STATIC);  /* NULL binds NULL */
        sqlite3_bind_text(st, 9, j->program_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 10, j->program, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 11, j->program_provider, -1, SQLITE_STATIC);  /* NULL binds NULL */
        rc = sqlite3_step(st);
        db_batch_unstage(m->db);
        r = db_errno(rc);
        if (rc == SQLITE_DONE) {
                j->seq = sqlite3_last_insert_rowid(m->db);
                /* With what else is staged; the job is announced only once this is durable. */
                r = now ? db_batch_flush(m->db) : 0;
        } else
                log_error("Failed to store job %s: %s", j->id, sqlite3_errmsg(m->db));
        if (r < 0) {
                if (errno_is_disk_full(r))
                        return gw_error_set_errno(e, r, "The state file system is full: cannot store the job.");
                return gw_error_set_errno(e, r, "Database error while storing the job.");
        }
        return 0;
}

/* Submissions whose row waits for the group commit: not in m->jobs yet, but they count
 * against ActiveJobsPerUser. (One manager per process, as one state database.) */
typedef struct Submission {
        Job *job;
        JobSubmitted cb;
        void *userdata;
        struct Submission *next;
} Submission;
static Submission *submissions;

static unsigned count_submitting(const Caller *c) {
        unsigned n = 0;

        for (Submission *s = submissions; s; s = s->next)
                n += job_is_owned_by(s->job, c->uid, c->subject);
        return n;
}

static int job_submitted(Manager *m, Job *j, Job **ret, GwError *e) {
        Job *added = j;
        int r;

        j->spool_dir = mfree(j->spool_dir);  /* job_attach() sets it again */
        r = job_attach(m, j);
        if (r < 0) {
                hashmap_remove(m->jobs, added->id);
                job_free(added);
                return gw_error_set_errno(e, r, "Failed to register the job.");
        }
        log_info("Job %s submitted for service '%s' by uid %u.", added->id, added->service, (unsigned) added->uid);
        registry_publish_job(m, REGISTRY_JOB_ADDED, added);
        job_registry_dispatch(m);
        if (ret)
                *ret = added;
        return 0;
}

/* Ends a submission: its row is committed (r >= 0, e unset) or it failed; the caller is told. */
static void submission_finish(Submission *s, int r, GwError *e) {
        Manager *m = s->job->manager;
        Job *added = NULL;

        for (Submission **p = &submissions; *p; p = &(*p)->next)
                if (*p == s) {
                        *p = s->next;
                        break;
                }
        if (r < 0) {
                (void) rm_rf(s->job->spool_dir);  /* a failed submission leaves nothing behind */
                job_free(s->job);
                if (!gw_error_is_set(e) && errno_is_disk_full(r))
                        (void) gw_error_set_errno(e, r, "The state file system is full: cannot store the job.");
                else if (!gw_error_is_set(e))
                        (void) gw_error_set_errno(e, r, "Database error while storing the job.");
        } else
                (void) job_submitted(m, s->job, &added, e);
        s->cb(m, added, e, s->userdata);
        free(s);
}

static void on_submission_committed(int r, void *userdata) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;

        submission_finish(userdata, r, &e);
}

/* The input is durable: the row joins the group commit. */
static void on_submission_input_synced(int r, void *userdata) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Submission *s = userdata;
        Manager *m = s->job->manager;

        if (r < 0) {
                log_error_errno(r, "Failed to flush the input of job %s: %m", s->job->id);
                if (errno_is_disk_full(r))
                        (void) gw_error_set_errno(&e, r, "The state file system is full: cannot store the job's input.");
                else
                        (void) gw_error_set_errno(&e, r, "Cannot store the job's input.");
                return submission_finish(s, r, &e);
        }
        r = job_insert(s->job, /* now= */ false, &e);
        if (r < 0)
                return submission_finish(s, r, &e);
        r = db_batch_after(m->db, on_submission_committed, s);
        if (r < 0) {
                db_rollback(m->db);  /* takes the staged row (and the rest of the batch) back */
                (void) db_batch_flush(m->db);
                (void) gw_error_set_errno(&e, r, "Out of memory.");
                submission_finish(s, r, &e);
        }
}

/* The row is stored once the input is flushed, off the event loop. */
static int submission_start(Manager *m, Job *j, SpoolInput *in, JobSubmitted cb, void *userdata, GwError *e) {
        Submission *sub = calloc(1, sizeof(Submission));
        int *fds;

        fds = sub ? calloc(ELEMENTSOF(in->fds), sizeof(int)) : NULL;
        if (!fds) {
                free(sub);
                (void) rm_rf(j->spool_dir);
                job_free(j);
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        }
        memcpy(fds, in->fds, in->n_fds * sizeof(int));
        *sub = (Submission) { .job = j, .cb = cb, .userdata = userdata, .next = submissions };
        submissions = sub;  /* counts against ActiveJobsPerUser from now on */
        /* The pool owns the fds now (and closes them on failure too). */
        (void) fsync_pool_sync(m->fsync_pool, fds, in->n_fds, on_submission_input_synced, sub);
        in->n_fds = 0;
        return 0;
}

/* What a program's job adds to a submission. */
typedef struct ProgramRun {
        const Program *program;
        json_object *arguments, *env;
} ProgramRun;

static int job_submit(Manager *m, const Caller *c, const char *service, json_object *data,
                      json_object *params, const ProgramRun *run, JobSubmitted cb, void *userdata, Job **ret, GwError *e) {
        _cleanup_(spool_input_done) SpoolInput in = {};
        _cleanup_(job_freep) Job *j = NULL;
        Platform *p;
        int r;

        if (!run && !service_registry_get(m, service))
                return gw_error_set(e, GW_ERROR_NO_SUCH_SERVICE, "No service '%s'.", service);
        if (m->config->active_jobs_per_user > 0 &&
            count_unfinished(m, c) + count_submitting(c) >= m->config->active_jobs_per_user)
                return gw_error_set(e, GW_ERROR_LIMIT_EXCEEDED,
                                    "You have %u unfinished jobs, the limit (ActiveJobsPerUser) is %u; "
                                    "wait for one to finish or cancel one.",
                                    count_unfinished(m, c) + count_submitting(c),
                                    m->config->active_jobs_per_user);

        p = platform_default(m);
        if (!p)
                return gw_error_set(e, GW_ERROR_INTERNAL, "No platform to run jobs on.");
        if (platform_unsupported(p, /* jobs= */ true))
                return gw_error_set(e, GW_ERROR_UNAVAILABLE, "Platform '%s' (DefaultPlatform): %s.", p->name,
                                    platform_unsupported(p, true));
        j = job_new();
        if (!j)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        r = job_id_new(&j->id);
        if (r < 0)
                return gw_error_set_errno(e, r, "Cannot generate a job id.");
        j->service = strdup(service);
        j->platform = strdup(p->name);
        if (!j->service || !j->platform)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        if (run && (!(j->program_id = strdup(run->program->id)) || !(j->program = strdup(run->program->title))))
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        if (run && run->program->provider && !(j->program_provider = strdup(run->program->provider)))
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        j->uid = c->uid;
        j->gid = caller_gid(c);
        if (c->subject && !(j->subject = strdup(c->subject)))
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        j->created_usec = realtime_now_usec();
        j->manager = m;
        if (asprintf(&j->spool_dir, "%s/jobs/%s", m->state_dir, j->id) < 0)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");

        r = job_check_space(m, e);
        if (r < 0)
                return r;
        /* Submitted asynchronously, the input is flushed off the loop (fsync-pool.h). */
        if (cb && !m->fsync_pool && fsync_pool_new(m->event, &m->fsync_pool) < 0)
                log_warning("Cannot set up the fsync threads; flushing submissions' input on the loop.");
        in.unsync = cb && m->fsync_pool;
        r = job_create_spool(j, data, params, run ? run->arguments : NULL, run ? run->env : NULL, &in);
        if (r < 0) {
                log_error_errno(r, "Failed to create spool directory %s: %m", j->spool_dir);
                if (r != -EEXIST)  /* (not ours to remove then) */
                        (void) rm_rf(j->spool_dir);  /* a failed submission leaves nothing behind */
                if (errno_is_disk_full(r))
                        return gw_error_set_errno(e, r, "The state file system is full: cannot store the job's input.");
                return gw_error_set_errno(e, r, "Cannot create the job's spool directory.");
        }
        if (cb)
                return submission_start(m, TAKE_PTR(j), &in, cb, userdata, e);
        r = job_insert(j, /* now= */ true, e);
        if (r < 0) {
                (void) rm_rf(j->spool_dir);  /* a failed submission leaves nothing behind */
                return r;
        }
        return job_submitted(m, TAKE_PTR(j), ret, e);
}

int job_registry_submit(Manager *m, const Caller *c, const char *service, json_object *data,
                        json_object *params, Job **ret, GwError *e) {
        return job_submit(m, c, service, data, params, NULL, NULL, NULL, ret, e);
}

int job_registry_submit_async(Manager *m, const Caller *c, const char *service, json_object *data,
                              json_object *params, JobSubmitted cb, void *userdata, GwError *e) {
        return job_submit(m, c, service, data, params, NULL, cb, userdata, NULL, e);
}

static int program_submit(Manager *m, const Caller *c, const Program *program, json_object *arguments,
                          json_object *env, JobSubmitted cb, void *userdata, Job **ret, GwError *e) {
        ProgramRun run = { .program = program, .arguments = arguments, .env = env };

        if (program->image) {
                /* the site may have withdrawn it since the upload (ProgramImages, Locations) */
                int r = program_registry_check_image(m, program->image, NULL, e);
                if (r < 0)
                        return r;
        } else if (!m->config->program_image)
                return gw_error_set(e, GW_ERROR_UNAVAILABLE, "Programs cannot run here: no ProgramImage is configured.");
        return job_submit(m, c, "", NULL, NULL, &run, cb, userdata, ret, e);
}

int job_registry_submit_program(Manager *m, const Caller *c, const Program *program, json_object *arguments,
                                json_object *env, Job **ret, GwError *e) {
        return program_submit(m, c, program, arguments, env, NULL, NULL, ret, e);
}

int job_registry_submit_program_async(Manager *m, const Caller *c, const Program *program, json_object *arguments,
                                      json_object *env, JobSubmitted cb, void *userdata, GwError *e) {
        return program_submit(m, c, program, arguments, env, cb, userdata, NULL, e);
}

int job_registry_cancel(Job *j, GwError *e) {
        if (job_state_is_terminal(j->state))
                return 0;
        j->cancel_requested = true;
        if (j->worker_started)
                return platform_cancel_job(job_platform(j), j);
        /* Not started: nothing to stop. A pending image request finds the job cancelled. */
        (void) job_transition(j, JOB_CANCELLED, "CANCELLED", "Cancelled before it started.");
        (void) db_batch_flush(j->manager->db);  /* the caller answers with the stored state */
        return 0;
}

/* ---- removal: by request, and after JobRetention ---- */

/* Finished, and nothing of ours still watches a worker. (A finished job's worker is gone and
 * detached; the check keeps a job its platform still holds from being freed under it.) */
static bool job_is_removable(const Job *j) {
        return job_state_is_terminal(j->state) && !j->platform_data;
}

/* Deletes the rows of l[0..n) in one transaction: all or none. */
static int job_delete_rows(Manager *m, Job **l, size_t n) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc, r;

        r = db_prepare(m->db, "DELETE FROM jobs WHERE id = ?", &st);
        if (r < 0)
                return r;
        r = db_begin(m->db);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                sqlite3_reset(st);
                sqlite3_bind_text(st, 1, l[i]->id, -1, SQLITE_STATIC);
                rc = sqlite3_step(st);
                if (rc != SQLITE_DONE) {
                        log_error("Failed to remove job %s: %s", l[i]->id, sqlite3_errmsg(m->db));
                        db_rollback(m->db);
                        return db_errno(rc);
                }
        }
        r = db_commit(m->db);
        if (r < 0) {
                db_rollback(m->db);
                return log_error_errno(r, "Failed to commit the removal of %zu jobs: %m", n);
        }
        return 0;
}

/* After the commit: the spool goes before the announcement, so whoever hears of the removal
 * finds nothing left; a crash before it leaves an orphaned spool, removed at the next start. */
static void job_forget(Job *j) {
        Manager *m = j->manager;
        int r;

        hashmap_remove(m->jobs, j->id);
        r = rm_rf(j->spool_dir);
        if (r < 0)
                log_warning_errno(r, "Failed to remove spool directory %s of job %s: %m", j->spool_dir, j->id);
        registry_publish_job(j->manager, REGISTRY_JOB_REMOVED, j);
        /* An image request still in flight (a job cancelled while its image was pulled) now
         * belongs to its callback, which frees it on finding no job of that id. */
        j->image_request = NULL;
        job_free(j);
}

int job_registry_remove(Job *j, GwError *e) {
        Manager *m = j->manager;
        int r;

        if (!job_is_removable(j))
                return gw_error_set(e, GW_ERROR_CONFLICT, "Job %s is %s; only a finished job can be removed (cancel it first).",
                                    j->id, job_state_to_string(j->state));
        r = job_delete_rows(m, &j, 1);
        if (r < 0)
                return gw_error_set_errno(e, r, "Database error while removing job %s.", j->id);
        log_info("Job %s (%s, uid %u) removed.", j->id, j->service, (unsigned) j->uid);
        job_forget(j);
        return 0;
}

static uint64_t job_retention_usec(Manager *m) {
        uint64_t usec;

        if (m->config->job_retention_sec == 0 ||
            __builtin_mul_overflow(m->config->job_retention_sec, USEC_PER_SEC, &usec))
                return UINT64_MAX;  /* keep forever */
        return usec;
}

/* When a finished job is removed by JobRetention; UINT64_MAX = never. */
static uint64_t job_expiry_usec(const Job *j) {
        uint64_t retention = job_retention_usec(j->manager), ended = j->ended_usec ?: j->created_usec, t;

        if (retention == UINT64_MAX || __builtin_add_overflow(ended, retention, &t))
                return UINT64_MAX;
        return t;
}

static int on_retention_timer(sd_event_source *s, uint64_t usec, void *userdata);

/* One timer for all jobs, at the earliest expiry (CLOCK_REALTIME, as the timestamps are).
 * Timers of up to a hundredth of JobRetention (at most a minute) late coalesce, so that jobs
 * ending close together are removed in one pass and one transaction. */
static void job_retention_arm(Manager *m, uint64_t when) {
        uint64_t accuracy = MIN(job_retention_usec(m) / 100, 60 * USEC_PER_SEC);
        int r;

        if (when == UINT64_MAX) {
                if (m->job_retention_timer)
                        (void) sd_event_source_set_enabled(m->job_retention_timer, SD_EVENT_OFF);
                return;
        }
        if (!m->job_retention_timer) {
                r = sd_event_add_time(m->event, &m->job_retention_timer, CLOCK_REALTIME, when, MAX(accuracy, 1),
                                      on_retention_timer, m);
                if (r < 0) {
                        log_warning_errno(r, "Failed to set up the JobRetention timer: %m");
                        return;
                }
                (void) sd_event_source_set_description(m->job_retention_timer, "job-retention");
        } else
                (void) sd_event_source_set_time(m->job_retention_timer, when);
        (void) sd_event_source_set_enabled(m->job_retention_timer, SD_EVENT_ONESHOT);
}

/* A job just finished: its expiry is the latest so far, unless the timer is off. */
static void job_retention_schedule(Job *j) {
        Manager *m = j->manager;
        uint64_t when = job_expiry_usec(j), armed = UINT64_MAX;
        int enabled = SD_EVENT_OFF;

        if (when == UINT64_MAX || m->exiting)
                return;
        if (m->job_retention_timer &&
            sd_event_source_get_enabled(m->job_retention_timer, &enabled) >= 0 && enabled != SD_EVENT_OFF)
                (void) sd_event_source_get_time(m->job_retention_timer, &armed);
        if (when < armed)
                job_retention_arm(m, when);
}

/* Removes every finished job past JobRetention and arms the timer for the next one. */
static void job_retention_run(Manager *m) {
        _cleanup_free_ Job **expired = NULL;
        uint64_t now = realtime_now_usec(), next = UINT64_MAX;
        size_t n = 0;
        Job *j;
        int r;

        if (job_retention_usec(m) == UINT64_MAX)
                return;
        expired = calloc(hashmap_size(m->jobs) + 1, sizeof(Job *));
        if (!expired) {
                log_oom();
                job_retention_arm(m, now + 60 * USEC_PER_SEC);
                return;
        }
        HASHMAP_FOREACH(j, m->jobs) {
                uint64_t t;

                if (!job_state_is_terminal(j->state))
                        continue;
                t = job_expiry_usec(j);
                if (t > now)
                        next = MIN(next, t);
                else if (job_is_removable(j))
                        expired[n++] = j;
                else
                        next = MIN(next, now + USEC_PER_SEC);  /* its worker is still being let go */
        }
        if (n > 0) {
                r = job_delete_rows(m, expired, n);
                if (r < 0) {
                        /* Nothing was removed; try again later rather than at once. */
                        log_warning_errno(r, "JobRetention: removing %zu finished jobs failed, retrying in a minute: %m", n);
                        next = MIN(next, now + 60 * USEC_PER_SEC);
                } else {
                        log_info("JobRetention: removing %zu finished jobs older than %" PRIu64 " s.", n,
                                 m->config->job_retention_sec);
                        for (size_t i = 0; i < n; i++)
                                job_forget(expired[i]);
                }
        }
        job_retention_arm(m, next);
}

static int on_retention_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        job_retention_run(userdata);
        return 0;
}

static int compare_seq(const void *a, const void *b) {
        const Job *x = *(Job * const *) a, *y = *(Job * const *) b;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

Job **job_registry_list(Manager *m, const JobFilter *f, size_t *ret_n) {
        Job **l = calloc(hashmap_size(m->jobs) + 1, sizeof(Job *)), *j;
        size_t n = 0;

        if (!l)
                return NULL;
        HASHMAP_FOREACH(j, m->jobs) {
                if (!f->all_users && !job_is_owned_by(j, f->uid, f->subject))
                        continue;
                if (f->state >= 0 && j->state != f->state)
                        continue;
                if (f->service && !streq(j->service, f->service))
                        continue;
                if (j->seq <= f->after_seq)
                        continue;
                l[n++] = j;
        }
        qsort(l, n, sizeof(Job *), compare_seq);
        if (ret_n)
                *ret_n = n;
        return l;
}

void job_registry_start(Manager *m) {
        Job *j;
        int r;

        r = sd_event_add_defer(m->event, &m->job_dispatch, on_dispatch, m);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the job scheduler: %m");
                return;
        }
        (void) sd_event_source_set_description(m->job_dispatch, "job-dispatch");
        (void) sd_event_source_set_enabled(m->job_dispatch, SD_EVENT_OFF);
        r = sd_event_add_time_relative(m->event, &m->job_retry, CLOCK_MONOTONIC, RETRY_FIRST_USEC, 0, on_retry, m);
        if (r < 0)
                log_error_errno(r, "Failed to set up retries of job changes: %m");
        else {
                (void) sd_event_source_set_description(m->job_retry, "job-retry");
                (void) sd_event_source_set_enabled(m->job_retry, SD_EVENT_OFF);
                if (!db_has_reserve(db_path(m)))
                        job_retry_soon(m);  /* takes the database's reserve (again) */
        }

        /* Jobs that had a slot when we went away: find their worker, or what it left behind. */
        HASHMAP_FOREACH(j, m->jobs) {
                if (!job_state_is_active(j->state))
                        continue;
                r = platform_reattach_job(job_platform(j), j, &job_platform_callbacks);
                if (r == 0 && j->state == JOB_PENDING)
                        job_start(j);  /* the worker had not been started yet */
        }
        job_registry_dispatch(m);
        /* Jobs that expired while we were away go now; the timer takes care of the rest. */
        job_retention_run(m);
}

int job_result_json(const Job *j, json_object **ret, GwError *e) {
        _cleanup_free_ char *text = NULL;
        enum json_tokener_error jerr;
        json_object *o;
        int r;

        if (!job_state_is_terminal(j->state))
                return gw_error_set(e, GW_ERROR_CONFLICT, "Job %s is %s; it has no result yet.", j->id,
                                    job_state_to_planqk(j->state));
        if (j->state != JOB_SUCCEEDED) {
                o = json_object_new_object();
                json_object_object_add(o, "code", json_object_new_string(j->error_code ?: job_state_to_string(j->state)));
                json_object_object_add(o, "detail", json_object_new_string(j->error_message ?: ""));
                *ret = o;
                return 0;
        }
        r = job_read_spool_file(j, SPOOL_RESULT, j->manager->config->result_max + 4096, &text, NULL);
        if (r == -ENOENT) {
                *ret = NULL;  /* succeeded without printing a result */
                return 0;
        }
        if (r < 0)
                return gw_error_set_errno(e, r, "Cannot read the result of job %s.", j->id);
        /* "null" parses to NULL too: a job may end without a result. */
        o = json_parse_deep(text, &jerr);
        if (jerr != json_tokener_success)
                return gw_error_set(e, GW_ERROR_INTERNAL, "The result of job %s is not valid JSON.", j->id);
        *ret = o;
        return 0;
}

int job_interim_json(const Job *j, bool last, json_object **ret, GwError *e) {
        _cleanup_free_ char *text = NULL;
        Config *c = j->manager->config;
        json_object *a = json_object_new_array();
        char *line, *save = NULL;
        int r;

        if (!a)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        /* The latest one is within the last InterimMax bytes (+ its newline): no need to read
         * up to InterimCount × InterimMax for it. */
        if (last)
                r = job_read_spool_tail(j, SPOOL_INTERIM, c->interim_max + 2, &text);
        else
                r = job_read_spool_file(j, SPOOL_INTERIM, (c->interim_max + 64) * (c->interim_count + 1), &text, NULL);
        if (r < 0 && r != -ENOENT) {
                json_object_put(a);
                return gw_error_set_errno(e, r, "Cannot read the interim results of job %s.", j->id);
        }
        for (line = text ? strtok_r(text, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
                enum json_tokener_error jerr;
                json_object *o = json_parse_deep(line, &jerr);

                if (jerr != json_tokener_success)
                        continue; /* a line cut off by a crash */
                if (last && json_object_array_length(a) > 0)
                        json_object_array_del_idx(a, 0, 1);
                json_object_array_add(a, o);
        }
        *ret = a;
        return 0;
}
