/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spool-layout.h"
#include "build-config.h"
#include "config.h"
#include "fd-limit.h"
#include "fs-util.h"
#include "lingering-mounts.h"
#include "log.h"
#include "manager.h"
#include "job-token.h"
#include "platform-local.h"
#include "platform.h"
#include "process-util.h"
#include "program.h"
#include "service.h"
#include "spool-exit.h"
#include "spool-interim.h"
#include "time-util.h"
#include "worker-events.h"
#include "worker-process.h"

/* The worker gives the job --kill-grace (10 s) after SIGTERM; we give the worker a little more
 * before we stop asking nicely. */
#define CANCEL_KILL_USEC (15 * USEC_PER_SEC)

uint64_t parse_timestamp_iso(const char *s) {
        struct tm tm = {};
        const char *p;
        unsigned ms = 0;
        time_t t;

        if (!s)
                return 0;
        p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!p)
                return 0;
        if (*p == '.') {
                unsigned scale = 100;
                for (p++; *p >= '0' && *p <= '9'; p++) {
                        ms += (unsigned) (*p - '0') * scale;
                        scale /= 10;
                }
        }
        if (*p != 'Z')
                return 0;
        t = timegm(&tm);
        if (t < 0)
                return 0;
        return (uint64_t) t * USEC_PER_SEC + (uint64_t) ms * 1000;
}

static json_object *strv_to_json_array(char **l) {
        json_object *a = json_object_new_array();

        for (char **s = l; s && *s; s++)
                json_object_array_add(a, json_object_new_string(*s));
        return a;
}

static uint64_t min_set(uint64_t a, uint64_t b) {
        /* 0 means unset: the set one wins, else the smaller. */
        if (a == 0)
                return b;
        if (b == 0)
                return a;
        return MIN(a, b);
}

json_object *platform_job_spec_json(Job *j, const Service *s, const Image *image) {
        Config *c = j->manager->config;
        json_object *o = json_object_new_object(), *img, *env, *res;

        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_string(j->id));
        img = json_object_new_object();
        json_object_object_add(img, "path", json_object_new_string(image->squashfs_path));
        if (image->meta_path)
                json_object_object_add(img, "metaPath", json_object_new_string(image->meta_path));
        json_object_object_add(o, "image", img);
        if (s->command)
                json_object_object_add(o, "command", strv_to_json_array(s->command));
        env = json_object_new_object();
        for (char **e = s->env; e && *e; e++) {
                const char *eq = strchr(*e, '=');
                _cleanup_free_ char *k = eq ? strndup(*e, (size_t) (eq - *e)) : NULL;

                if (k)
                        json_object_object_add(env, k, json_object_new_string(eq + 1));
        }
        json_object_object_add(o, "env", env);
        json_object_object_add(o, "network", json_object_new_boolean(s->network));
        res = json_object_new_object();
        json_object_object_add(res, "memory", json_object_new_int64((int64_t) min_set(s->memory, c->memory_max)));
        json_object_object_add(res, "cpus", json_object_new_double(s->cpus));
        json_object_object_add(res, "timeout", json_object_new_int64((int64_t) min_set(s->timeout_sec, c->runtime_max_sec)));
        json_object_object_add(res, "pids", json_object_new_int64((int64_t) c->tasks_max));
        /* result files (/var/runtime/output), bounded on every platform by the job's own spec */
        json_object_object_add(res, "outputMax", json_object_new_int64((int64_t) MIN(c->output_max, (uint64_t) INT64_MAX)));
        json_object_object_add(res, "outputFiles", json_object_new_int64((int64_t) c->output_files));
        json_object_object_add(o, "resources", res);
        json_object_object_add(o, "uid", json_object_new_int64(j->uid));
        json_object_object_add(o, "gid", json_object_new_int64(j->gid));
        if (s->workdir)
                json_object_object_add(o, "workdir", json_object_new_string(s->workdir));
        if (s->program_layer) {
                json_object *prog = json_object_new_object();
                _cleanup_free_ char *token = NULL;

                json_object_object_add(prog, "path", json_object_new_string(s->program_layer));
                /* the job's save_result token: the worker serves the route with it (docs/programs.md) */
                if (job_token_mint(j->manager->state_dir, j->id, &token) < 0) {
                        json_object_put(prog);
                        json_object_put(o);
                        return NULL;
                }
                json_object_object_add(prog, "token", json_object_new_string(token));
                json_object_object_add(o, "program", prog);
        }
        return o;
}

/* Not flushed to disk (that was a disk flush per job start): job.json only matters to a worker
 * that is running, and a crash of the machine takes the worker with it; recovery then either
 * finds its worker.pid (the job is lost, WORKER_LOST) or starts the job again, which writes
 * job.json anew. */
static int write_job_json(Job *j, json_object *spec) {
        const char *text = json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

        return write_file_atomic_nosync(j->spool_dir, SPOOL_JOB_SPEC, text, strlen(text));
}

/* ---- outcome ---- */

static void job_conclude_from_spool(Job *j, const char *why_missing) {
        _cleanup_free_ char *text = NULL;
        SpoolExit e;
        int r;

        r = job_read_spool_file(j, SPOOL_EXIT, 1024 * 1024, &text, NULL);
        if (r < 0 && j->cancel_requested) {
                /* We stopped it, e.g. before it had its signal handlers set up: that is what
                 * was asked for, nothing was lost. */
                j->platform_callbacks->on_exit(j, JOB_CANCELLED, -1, "CANCELLED", "Cancelled while the worker was starting.", 0, 0);
                return;
        }
        if (r < 0) {
                /* No commit point: whatever happened to the job, nobody can tell its outcome. */
                j->platform_callbacks->on_exit(j, JOB_UNKNOWN, -1, "WORKER_LOST", why_missing, 0, 0);
                return;
        }
        if (spool_exit_parse(text, &e) < 0) {
                j->platform_callbacks->on_exit(j, JOB_UNKNOWN, -1, "WORKER_LOST", "exit.json of the worker is unreadable.", 0, 0);
                return;
        }
        j->platform_callbacks->on_exit(j, e.state, e.exit_code, e.code, e.detail, e.started_usec, e.ended_usec);
        spool_exit_done(&e);
}

/* The job's outcome, if exit.json has it already; false (and nothing done) otherwise. */
static bool job_conclude_if_recorded(Job *j) {
        _cleanup_free_ char *text = NULL;
        SpoolExit e;

        if (job_read_spool_file(j, SPOOL_EXIT, 1024 * 1024, &text, NULL) < 0 || spool_exit_parse(text, &e) < 0)
                return false;
        j->platform_callbacks->on_exit(j, e.state, e.exit_code, e.code, e.detail, e.started_usec, e.ended_usec);
        spool_exit_done(&e);
        return true;
}

/* The platform's own state (p->data): how many jobs it watches, which is what its node reports
 * as running. Counted here rather than asked of the job registry, which platforms do not know.
 * finishing: workers of jobs that are gone (removed once concluded), still cleaning up; ours to
 * reap. */
typedef struct LocalPlatform {
        unsigned n_jobs;
        unsigned n_ended;               /* of those, jobs whose sandbox has ended (not running) */
        WorkerProcess **finishing;
        size_t n_finishing;
} LocalPlatform;

/* What this platform holds of a job while it watches its worker (j->platform_data). */
typedef struct LocalJob {
        LocalPlatform *platform;        /* counts this job while it exists */
        WorkerProcess *worker;          /* our child, with its events pipe (NULL when re-attached) */
        pid_t worker_pid;
        int worker_pidfd;               /* for signals, and the exit of a re-attached worker */
        sd_event_source *pidfd_source;  /* re-attached workers: their exit */
        sd_event_source *kill_timer;    /* SIGKILL if SIGTERM did not stop it */
        sd_event_source *spool_timer;   /* re-attached workers: polls the spool instead of events */
        uint64_t interim_offset, log_size;
        unsigned interim_index;
        bool concluded;                 /* the outcome was taken at the worker's done event */
        bool sandbox_ended;             /* the worker said FINISHING: counted in n_ended */
} LocalJob;

static void on_finishing_exit(WorkerProcess *w, int status, void *userdata) {
        LocalPlatform *lp = userdata;

        for (size_t i = 0; i < lp->n_finishing; i++)
                if (lp->finishing[i] == w) {
                        lp->finishing[i] = lp->finishing[--lp->n_finishing];
                        break;
                }
        worker_process_free(w);
}

/* The worker of a concluded job, still cleaning up: the platform reaps it when it exits. */
static bool local_platform_adopt(LocalPlatform *lp, WorkerProcess *w) {
        WorkerProcess **l;

        if (!lp)
                return false;
        l = reallocarray(lp->finishing, lp->n_finishing + 1, sizeof(WorkerProcess *));
        if (!l)
                return false;
        lp->finishing = l;
        lp->finishing[lp->n_finishing++] = w;
        worker_process_set_callbacks(w, &(WorkerCallbacks) { .on_exit = on_finishing_exit }, lp);
        return true;
}

static void local_job_free(void *data) {
        LocalJob *l = data;

        if (!l)
                return;
        if (l->platform && l->platform->n_jobs > 0)
                l->platform->n_jobs--;
        if (l->platform && l->sandbox_ended && l->platform->n_ended > 0)
                l->platform->n_ended--;
        sd_event_source_disable_unref(l->spool_timer);
        sd_event_source_disable_unref(l->pidfd_source);
        sd_event_source_disable_unref(l->kill_timer);
        worker_process_free(l->worker);  /* in its own session: it carries on */
        safe_close(l->worker_pidfd);
        free(l);
}

/* The job's LocalJob, created (and counted by lp) if it has none. */
static LocalJob *local_job_get(LocalPlatform *lp, Job *j) {
        LocalJob *l = j->platform_data;

        if (l)
                return l;
        l = calloc(1, sizeof(LocalJob));
        if (!l)
                return NULL;
        l->worker_pidfd = -1;
        l->platform = lp;
        if (lp)
                lp->n_jobs++;
        j->platform_data = l;
        j->platform_data_free = local_job_free;
        return l;
}

/* Stops watching the worker (it carries on if it runs): the platform holds nothing of the job. */
static void job_detach_worker(Job *j) {
        local_job_free(j->platform_data);
        j->platform_data = NULL;
        j->platform_data_free = NULL;
}

/* ---- events ---- */

static void local_job_sandbox_ended(Job *j, WorkerProcess *w) {
        LocalJob *l = j->platform_data;

        if (!l || l->worker != w || l->sandbox_ended)
                return;
        l->sandbox_ended = true;
        if (l->platform)
                l->platform->n_ended++;
        j->platform_callbacks->on_sandbox_ended(j);
}

static void on_worker_event(WorkerProcess *w, const WorkerEvent *e, void *userdata) {
        Job *j = userdata;

        switch (e->kind) {
        case WORKER_EVENT_STATUS:
                if (streq(strempty(e->status.status), "RUNNING"))
                        j->platform_callbacks->on_started(j, e->status.started_usec);
                else if (streq(strempty(e->status.status), "FINISHING"))
                        local_job_sandbox_ended(j, w);
                break;
        case WORKER_EVENT_LOG:
                j->platform_callbacks->on_log(j);
                break;
        case WORKER_EVENT_INTERIM:
                j->platform_callbacks->on_interim(j, e->interim.index,
                                                  json_object_to_json_string_ext(e->interim.result, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                break;
        case WORKER_EVENT_DONE: {
                LocalJob *l = j->platform_data;

                /* exit.json is durable and in place before the worker says done (run.c): the
                 * outcome is known, the worker only cleans up from here on (unmounts, cgroups),
                 * and the job's slot goes to the next job meanwhile. Without exit.json, its exit
                 * decides as before. */
                if (!l || l->worker != w || l->concluded || j->cancel_requested || !job_conclude_if_recorded(j))
                        break;
                l->concluded = true;
                /* The job lets go of it (it can be removed at once); else its exit detaches it. */
                if (local_platform_adopt(l->platform, w)) {
                        l->worker = NULL;
                        job_detach_worker(j);
                }
                break;
        }
        default:
                break;
        }
}

static int try_reattach(LocalPlatform *lp, Job *j, bool *ret_had_pid);
static int local_cancel_job(Platform *p, Job *j);
static void spool_poll_interim(Job *j);

/* exited: whether status is known (our child: exit code >= 0 or -signal); a re-attached worker
 * is not ours to reap. */
static void worker_ended(Job *j, bool exited, int status) {
        LocalJob *l = j->platform_data;
        LocalPlatform *lp = l ? l->platform : NULL;
        char why[256];

        if (exited && status >= 0)
                snprintf(why, sizeof(why), "The worker exited with status %i without recording an outcome "
                         "(see worker.err in the spool).", status);
        else if (exited)
                snprintf(why, sizeof(why), "The worker was killed by signal %i before it recorded an outcome.", -status);
        else
                snprintf(why, sizeof(why), "The worker ended without recording an outcome.");

        log_debug("Job %s: worker %i ended.", j->id, l ? (int) l->worker_pid : 0);
        if (l && l->concluded) {
                job_detach_worker(j);
                return;  /* its outcome was taken at its done event */
        }
        job_detach_worker(j);

        /* A worker started after a restart finds the spool locked if the previous gatewayd had
         * started one just before it died, too early for recovery to see its worker.pid: that
         * one is the job's worker, and ours gave way to it. */
        if (!j->cancel_requested && exited && status == 1) {
                bool had_pid;

                if (try_reattach(lp, j, &had_pid) > 0)
                        return;
        }
        job_conclude_from_spool(j, why);
}

/* Our child: called once its events are all delivered. */
static void on_worker_exit(WorkerProcess *w, int status, void *userdata) {
        worker_ended(userdata, true, status);
}

/* A re-attached worker: its pidfd became readable. */
static int on_reattached_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Job *j = userdata;
        LocalJob *l = j->platform_data;

        if (l->spool_timer)
                spool_poll_interim(j);   /* what came since the last look */
        worker_ended(j, false, 0);
        return 0;
}

/* ---- re-attached workers: the pipe died with the previous gatewayd, the spool did not ---- */

static uint64_t spool_file_size(Job *j, const char *name) {
        _cleanup_free_ char *path = NULL;
        struct stat st;

        if (!(path = spool_path(j->spool_dir, name)) || lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
                return 0;
        return (uint64_t) st.st_size;
}

/* Sends the interim results appended since the last look, as the event pipe would have. */
static void spool_poll_interim(Job *j) {
        LocalJob *l = j->platform_data;

        spool_interim_announce(j, j->spool_dir, &l->interim_offset, &l->interim_index);
}

static int on_spool_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Job *j = userdata;
        LocalJob *l = j->platform_data;
        uint64_t log_size = spool_file_size(j, SPOOL_LOG);

        (void) sd_event_source_set_time_relative(s, USEC_PER_SEC);
        spool_poll_interim(j);
        if (log_size != l->log_size) {
                l->log_size = log_size;
                j->platform_callbacks->on_log(j);
        }
        return 0;
}

static int watch_spool(Job *j) {
        LocalJob *l = j->platform_data;
        _cleanup_free_ char *text = NULL;
        int r;

        /* What is there already was announced by the previous gatewayd (or can be read). */
        l->log_size = spool_file_size(j, SPOOL_LOG);
        l->interim_offset = spool_file_size(j, SPOOL_INTERIM);
        l->interim_index = 0;
        if (l->interim_offset > 0 && job_read_spool_file(j, SPOOL_INTERIM, l->interim_offset, &text, NULL) >= 0)
                for (const char *p = text; (p = strchr(p, '\n')); p++)
                        l->interim_index++;

        r = sd_event_add_time_relative(j->manager->event, &l->spool_timer, CLOCK_MONOTONIC, USEC_PER_SEC, 0,
                                       on_spool_timer, j);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(l->spool_timer, "job-spool");
        return sd_event_source_set_enabled(l->spool_timer, SD_EVENT_ON);
}

static int watch_reattached(Job *j) {
        LocalJob *l = j->platform_data;
        int r;

        r = sd_event_add_io(j->manager->event, &l->pidfd_source, l->worker_pidfd, EPOLLIN, on_reattached_exit, j);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(l->pidfd_source, "job-worker");
        return watch_spool(j);
}

/* ---- start ---- */

static int local_start_job(Platform *p, Job *j, const Service *s, const Image *image, GwError *e) {
        Config *c = j->manager->config;
        _cleanup_free_ char *err_path = NULL;
        _cleanup_close_ int err_fd = -1;
        char a_runtime[PATH_MAX], a_result[64], a_interim[64], a_count[64], a_log[64], a_linger[64];
        char a_image_linger[64], *argv[12];
        size_t n = 0;
        json_object *spec;
        bool verb;
        const char *path = worker_run_binary_path(j->manager, &verb);
        WorkerOptions o;
        LocalJob *l;
        int r;

        spec = platform_job_spec_json(j, s, image);
        if (!spec)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        r = write_job_json(j, spec);
        json_object_put(spec);
        if (r < 0)
                return gw_error_set_errno(e, r, "Cannot write job.json: %s", strerror(-r));

        if (!(err_path = spool_path(j->spool_dir, SPOOL_WORKER_ERR)))
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        err_fd = open(err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (err_fd < 0)
                return gw_error_set_errno(e, -errno, "Cannot create %s: %m", err_path);

        snprintf(a_runtime, sizeof(a_runtime), "--runtime-dir=%s/worker", j->manager->runtime_dir);
        snprintf(a_result, sizeof(a_result), "--result-max=%llu", (unsigned long long) c->result_max);
        snprintf(a_interim, sizeof(a_interim), "--interim-max=%llu", (unsigned long long) c->interim_max);
        snprintf(a_count, sizeof(a_count), "--interim-count-max=%llu", (unsigned long long) c->interim_count);
        snprintf(a_log, sizeof(a_log), "--log-max=%llu", (unsigned long long) c->log_max);
        if (verb)
                argv[n++] = (char *) "run";
        argv[n++] = (char *) "--events-fd=3";
        argv[n++] = a_runtime;
        argv[n++] = a_result;
        argv[n++] = a_interim;
        argv[n++] = a_count;
        argv[n++] = a_log;
        /* the image's and the program's next job find their squashfs mounted (lingering-mounts.h
         * unmounts them) */
        snprintf(a_image_linger, sizeof(a_image_linger), "--image-linger=%u", IMAGE_MOUNT_LINGER_SEC);
        argv[n++] = a_image_linger;
        if (s->program_layer) {
                snprintf(a_linger, sizeof(a_linger), "--program-linger=%u", PROGRAM_MOUNT_LINGER_SEC);
                argv[n++] = a_linger;
        }
        argv[n++] = j->spool_dir;
        argv[n] = NULL;

        l = local_job_get(p->data, j);
        if (!l)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        o = (WorkerOptions) {
                .path = path,
                .argv = argv,
                .own_session = true,   /* the job outlives gatewayd; its spool re-attaches it */
                .drop_long_events = true,
                .stderr_fd = err_fd,
        };
        r = worker_process_spawn(j->manager, &o, &(WorkerCallbacks) { .on_event = on_worker_event, .on_exit = on_worker_exit },
                                 j, &l->worker);
        if (r < 0) {
                job_detach_worker(j);
                return gw_error_set_errno(e, r, "Cannot start the worker: %s", strerror(-r));
        }
        l->worker_pid = worker_process_pid(l->worker);
        j->worker_started = true;
        /* For signals: our child cannot be recycled before we reap it, but the pidfd is what
         * cancellation uses for re-attached workers too. */
        l->worker_pidfd = pidfd_open_fd(l->worker_pid);
        if (l->worker_pidfd < 0) {
                r = l->worker_pidfd;
                (void) worker_process_kill(l->worker, SIGKILL);
                (void) waitpid(l->worker_pid, NULL, 0);
                job_detach_worker(j);
                return gw_error_set_errno(e, r, "Cannot watch the worker: %s", strerror(-r));
        }
        log_info("Job %s: started worker %i (%s).", j->id, (int) l->worker_pid, path);
        if (j->cancel_requested)
                (void) local_cancel_job(p, j);
        return 0;
}

/* ---- recovery ---- */

static int read_worker_pid(Job *j, int *ret_fd, pid_t *ret_pid) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        char buf[32] = {};
        ssize_t n;
        int pid;

        if (!(path = spool_path(j->spool_dir, SPOOL_WORKER_PID)))
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0 || sscanf(buf, "%d", &pid) != 1 || pid <= 0)
                return -EBADMSG;
        *ret_pid = pid;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Re-attaches to a live worker of the job, found through its locked worker.pid. Returns 1 if
 * re-attached, 0 if there is none, and sets *ret_had_pid if a worker.pid exists at all. */
static int try_reattach(LocalPlatform *lp, Job *j, bool *ret_had_pid) {
        _cleanup_close_ int fd = -1;
        LocalJob *l;
        pid_t pid = 0;
        int r;

        r = read_worker_pid(j, &fd, &pid);
        *ret_had_pid = r >= 0;
        if (r < 0 || flock(fd, LOCK_SH | LOCK_NB) >= 0 || errno != EWOULDBLOCK)
                return 0;

        /* The lock holder is alive, so pid is the worker (a recycled pid holds no lock). Pin it
         * with a pidfd, then make sure the lock is still held: else it exited in between and its
         * outcome is collected instead. */
        l = local_job_get(lp, j);
        if (!l)
                return 0;
        l->worker_pidfd = MAX(pidfd_open_fd(pid), -1);
        if (l->worker_pidfd >= 0 && flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
                l->worker_pid = pid;
                j->worker_started = true;
                if (watch_reattached(j) >= 0) {
                        log_info("Job %s: re-attached to worker %i.", j->id, (int) pid);
                        return 1;
                }
        }
        job_detach_worker(j);
        return 0;
}

static int local_reattach_job(Platform *p, Job *j) {
        _cleanup_free_ char *exit_path = NULL;
        bool had_pid;

        if (!(exit_path = spool_path(j->spool_dir, SPOOL_EXIT)))
                return -ENOMEM;

        if (try_reattach(p->data, j, &had_pid) > 0)
                return 1;  /* without the pipe, log readers are woken by their own timer */

        if (access(exit_path, F_OK) >= 0 || had_pid) {
                /* Finished while we were away, or started and vanished. */
                j->worker_started = true;
                job_conclude_from_spool(j, "The worker went away without recording an outcome (gatewayd was restarted meanwhile).");
                return 1;
        }
        if (j->state == JOB_RUNNING) {
                j->platform_callbacks->on_exit(j, JOB_UNKNOWN, -1, "WORKER_LOST",
                                               "The job was running, but its worker left no trace in the spool.", 0, 0);
                return 1;
        }
        return 0;
}

/* ---- cancel ---- */

static int on_kill_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Job *j = userdata;
        LocalJob *l = j->platform_data;

        log_warning("Job %s: worker did not stop within %llu s of SIGTERM; killing it.", j->id,
                    (unsigned long long) (CANCEL_KILL_USEC / USEC_PER_SEC));
        if (l->worker_pidfd >= 0)
                (void) pidfd_signal(l->worker_pidfd, SIGKILL);
        return 0;
}

static int local_cancel_job(Platform *p, Job *j) {
        LocalJob *l = j->platform_data;
        int r;

        j->cancel_requested = true;
        if (!l || l->worker_pidfd < 0)
                return 0;
        if (l->kill_timer)
                return 0; /* asked before: cancelling is idempotent, not an escalation */
        r = pidfd_signal(l->worker_pidfd, SIGTERM);
        if (r < 0 && r != -ESRCH)
                return log_warning_errno(r, "Job %s: failed to signal worker: %m", j->id);
        r = sd_event_add_time_relative(j->manager->event, &l->kill_timer, CLOCK_MONOTONIC, CANCEL_KILL_USEC, 0,
                                       on_kill_timer, j);
        if (r < 0)
                log_warning_errno(r, "Job %s: cannot arm the kill timer: %m", j->id);
        log_info("Job %s: cancelling (SIGTERM to worker %i).", j->id, (int) l->worker_pid);
        return 0;
}

/* ---- results saved from outside the job ---- */

int spool_save_result(const char *dir, const char *json_text) {
        _cleanup_close_ int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (dir_fd < 0)
                return -errno;
        /* The worker has written the outcome (gatewayd has yet to read it): too late. A save
         * between the worker taking the saved result and writing exit.json is lost. */
        if (faccessat(dir_fd, SPOOL_EXIT, F_OK, AT_SYMLINK_NOFOLLOW) >= 0)
                return -ESTALE;
        return write_file_atomic_at(dir_fd, SPOOL_SAVED_RESULT, json_text, strlen(json_text), 0600);
}

static int local_save_result(Platform *p, Job *j, const char *json_text, PlatformResultSaved done, void *userdata) {
        return spool_save_result(j->spool_dir, json_text);
}

/* ---- images and nodes ---- */

/* Images are converted into this host's image directory: nothing to deploy. */
static int local_deploy_image(Platform *p, Image *i, GwError *e) {
        return 0;
}

/* One node: the gateway host itself, by its host name. It is up whenever gatewayd can answer;
 * its slots are the platform's MaxClusters, its running jobs those whose workers this platform
 * watches (PENDING with a worker, RUNNING) but for those whose sandbox has ended (FINISHING:
 * their workers record the outcome); its last contact is now. It cannot be drained: the
 * platform has no drain_node (-EOPNOTSUPP), so the surfaces refuse with Conflict. */
static json_object *local_report_nodes(Platform *p) {
        LocalPlatform *lp = p->data;
        json_object *a = json_object_new_array(), *n = json_object_new_object();
        char now[64];
        struct utsname u;

        if (!a || !n) {
                json_object_put(a);
                json_object_put(n);
                return NULL;
        }
        json_object_object_add(n, "name", json_object_new_string(uname(&u) >= 0 && u.nodename[0] ? u.nodename : "localhost"));
        json_object_object_add(n, "state", json_object_new_string("up"));
        json_object_object_add(n, "slots", json_object_new_int64(p->manager->config->max_clusters));
        json_object_object_add(n, "running", json_object_new_int64(lp ? lp->n_jobs - lp->n_ended : 0));
        json_object_object_add(n, "lastContact",
                               json_object_new_string(format_timestamp_iso(now, sizeof(now), now_realtime_usec())));
        json_object_array_add(a, n);
        return a;
}

static int local_init(Platform *p) {
        p->data = calloc(1, sizeof(LocalPlatform));
        return p->data ? 0 : -ENOMEM;
}

static void local_done(Platform *p) {
        LocalPlatform *lp = p->data;

        /* Workers still cleaning up carry on without us (their own sessions). */
        for (size_t i = 0; lp && i < lp->n_finishing; i++)
                worker_process_free(lp->finishing[i]);
        if (lp)
                free(lp->finishing);
        p->data = mfree(p->data);
}

const PlatformVTable platform_local_vtable = {
        .kind = "local",
        .init = local_init,
        .done = local_done,
        .start_job = local_start_job,
        .cancel_job = local_cancel_job,
        .reattach_job = local_reattach_job,
        .deploy_image = local_deploy_image,
        .report_nodes = local_report_nodes,
        .save_result = local_save_result,
};
