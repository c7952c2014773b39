/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* DRAFT (issue 10), not yet registered in platform.c: jobs through slurmrestd. Untested. */
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build-config.h"
#include "fs-util.h"
#include "log.h"
#include "manager.h"
#include "platform-local.h"
#include "platform.h"
#include "slurm-rest.h"
#include "slurm-script.h"
#include "spool-layout.h"

#define SLURM_POLL_USEC (500 * 1000ULL)
#define SLURM_PLATFORM_JSON "platform.json"

typedef struct SlurmPlatform {
        SlurmRest *rest;
} SlurmPlatform;

typedef struct SlurmJob {
        Platform *platform;
        Job *job;
        char *user;
        uint32_t slurm_id;
        sd_event_source *poll_timer;
        SlurmRestRequest *request;
        bool started;
} SlurmJob;

static void slurm_job_free(void *data) {
        SlurmJob *s = data;

        if (!s)
                return;
        sd_event_source_disable_unref(s->poll_timer);
        slurm_rest_request_cancel(s->request);
        free(s->user);
        free(s);
}

/* The account a job runs as on the cluster: its owner, root's jobs as nobody (as locally). */
static int job_user(const Job *j, char **ret) {
        struct passwd *pw = getpwuid(j->uid == 0 ? 65534 : j->uid);

        if (!pw)
                return -ESRCH;  /* Slurm would keep the job pending forever */
        *ret = strdup(pw->pw_name);
        return *ret ? 0 : -ENOMEM;
}

/* The Slurm job id, committed in the gateway spool before the submit is announced. */
static int persist_slurm_id(Job *j, uint32_t id) {
        char buf[64];
        int n = snprintf(buf, sizeof(buf), "{\"slurmJobId\":%u}\n", id);

        return write_file_atomic(j->spool_dir, SLURM_PLATFORM_JSON, buf, (size_t) n);
}

static int read_slurm_id(Job *j, uint32_t *ret) {
        _cleanup_free_ char *text = NULL;
        json_object *o, *v;
        int r = job_read_spool_file(j, SLURM_PLATFORM_JSON, 4096, &text, NULL);

        if (r < 0)
                return r;
        o = json_tokener_parse(text);
        if (!o || !json_object_object_get_ex(o, "slurmJobId", &v)) {
                json_object_put(o);
                return -EBADMSG;
        }
        *ret = (uint32_t) json_object_get_int64(v);
        json_object_put(o);
        return 0;
}

static void slurm_job_poll(SlurmJob *s);

static int read_small_file(const char *dir, const char *name, char **ret, size_t *ret_size) {
        _cleanup_free_ char *path = NULL;
        FILE *f;
        char *buf;
        size_t n;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        f = fopen(path, "re");
        if (!f)
                return -errno;
        buf = malloc(1024 * 1024 + 1);
        if (!buf) {
                fclose(f);
                return -ENOMEM;
        }
        n = fread(buf, 1, 1024 * 1024, f);
        fclose(f);
        buf[n] = 0;
        *ret = buf;
        if (ret_size)
                *ret_size = n;
        return 0;
}

/* The worker's outputs live in the Slurm spool (shared with the nodes); the gateway serves them
 * from the job's own spool. */
static void copy_back(const char *from, const char *to, const char *name) {
        _cleanup_free_ char *data = NULL;
        size_t n;

        if (read_small_file(from, name, &data, &n) >= 0)
                (void) write_file_atomic(to, name, data, n);
}

static char *slurm_spool_of(SlurmJob *s) {
        char *p;

        return asprintf(&p, "%s/%s", s->platform->config->slurm_spool_dir, s->job->id) < 0 ? NULL : p;
}

/* exit.json, written last by the worker, is the outcome when it is there; else Slurm's state. */
static void conclude(SlurmJob *s, JobState fallback, const char *code, const char *message) {
        Job *j = s->job;
        _cleanup_free_ char *spool = slurm_spool_of(s), *text = NULL;
        json_object *o = NULL, *v, *err;
        const char *ecode = NULL, *detail = NULL;
        int exit_code = -1;
        JobState state;

        sd_event_source_disable_unref(s->poll_timer);
        s->poll_timer = NULL;
        if (spool && read_small_file(spool, SPOOL_EXIT, &text, NULL) >= 0)
                o = json_tokener_parse(text);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                j->platform_callbacks->on_exit(j, fallback, -1, code, message, 0, 0);
                return;
        }
        copy_back(spool, j->spool_dir, SPOOL_RESULT);
        copy_back(spool, j->spool_dir, SPOOL_LOG);
        state = job_state_from_string(json_object_object_get_ex(o, "status", &v) ? json_object_get_string(v) : NULL);
        if (!job_state_is_terminal(state))
                state = JOB_UNKNOWN;
        if (json_object_object_get_ex(o, "exitCode", &v) && json_object_is_type(v, json_type_int))
                exit_code = json_object_get_int(v);
        if (json_object_object_get_ex(o, "error", &err) && json_object_is_type(err, json_type_object)) {
                if (json_object_object_get_ex(err, "code", &v))
                        ecode = json_object_get_string(v);
                if (json_object_object_get_ex(err, "detail", &v))
                        detail = json_object_get_string(v);
        }
        j->platform_callbacks->on_exit(j, state, exit_code, ecode, detail,
                                       parse_timestamp_iso(json_object_object_get_ex(o, "startedAt", &v) ? json_object_get_string(v) : NULL),
                                       parse_timestamp_iso(json_object_object_get_ex(o, "endedAt", &v) ? json_object_get_string(v) : NULL));
        json_object_put(o);
}

static void on_job_info(SlurmRest *r, int error, const SlurmJobInfo *info, const char *message, void *userdata) {
        SlurmJob *s = userdata;

        s->request = NULL;
        if (error == -ESRCH) {
                conclude(s, JOB_UNKNOWN, "WORKER_LOST", "Slurm no longer knows the job.");
                return;
        }
        if (error < 0 || !info) {
                /* slurmrestd unreachable: the job waits, nothing is lost. */
                log_debug("Slurm job %u: %s", s->slurm_id, message ?: "no answer");
                return;
        }
        switch (info->phase) {
        case SLURM_JOB_RUNNING:
                if (!s->started) {
                        s->started = true;
                        s->job->platform_callbacks->on_started(s->job, info->start_time > 0 ? (uint64_t) info->start_time * USEC_PER_SEC : 0);
                }
                break;
        case SLURM_JOB_COMPLETED:
                conclude(s, JOB_UNKNOWN, "WORKER_LOST", "The Slurm job ended without an exit.json.");
                break;
        case SLURM_JOB_CANCELLED:
                conclude(s, JOB_CANCELLED, "CANCELLED", slurm_job_state_reason(info->state));
                break;
        case SLURM_JOB_FAILED:
                conclude(s, JOB_FAILED, "SLURM_FAILED", slurm_job_state_reason(info->state));
                break;
        default:
                break;
        }
}

static int on_poll(sd_event_source *es, uint64_t usec, void *userdata) {
        SlurmJob *s = userdata;

        slurm_job_poll(s);
        return 0;
}

static void slurm_job_poll(SlurmJob *s) {
        SlurmPlatform *sp = s->platform->data;
        Manager *m = s->platform->manager;

        if (!s->request)
                (void) slurm_rest_job(sp->rest, s->user, s->slurm_id, on_job_info, s, &s->request);
        if (!s->poll_timer)
                (void) sd_event_add_time_relative(m->event, &s->poll_timer, CLOCK_MONOTONIC, SLURM_POLL_USEC, 0, on_poll, s);
        else {
                (void) sd_event_source_set_time_relative(s->poll_timer, SLURM_POLL_USEC);
                (void) sd_event_source_set_enabled(s->poll_timer, SD_EVENT_ONESHOT);
        }
}

static void on_submitted(SlurmRest *r, int error, uint32_t job_id, const char *message, void *userdata) {
        SlurmJob *s = userdata;
        int k;

        s->request = NULL;
        if (error < 0) {
                conclude(s, JOB_FAILED, "SUBMIT_FAILED", message ?: "Slurm refused the job.");
                return;
        }
        s->slurm_id = job_id;
        k = persist_slurm_id(s->job, job_id);
        if (k < 0)
                log_warning_errno(k, "Job %s: cannot record Slurm job %u: %m", s->job->id, job_id);
        slurm_job_poll(s);
}

static int slurm_init(Platform *p) {
        const ConfigPlatform *c = p->config;
        SlurmRestConfig rc = {
                .url = c->slurm_url,
                .jwt_key_file = c->slurm_jwt_key,
                .token_file = c->slurm_token_file,
                .token_user = c->slurm_user,
        };
        SlurmPlatform *sp = calloc(1, sizeof(SlurmPlatform));
        int r;

        if (!sp)
                return -ENOMEM;
        r = slurm_rest_new(p->manager->event, &rc, &sp->rest);
        if (r < 0) {
                free(sp);
                return r;
        }
        p->data = sp;
        return 0;
}

static void slurm_done(Platform *p) {
        SlurmPlatform *sp = p->data;

        if (!sp)
                return;
        slurm_rest_free(sp->rest);
        free(sp);
        p->data = NULL;
}

static int slurm_start_job(Platform *p, Job *j, const Service *svc, const Image *image, GwError *e) {
        SlurmPlatform *sp = p->data;
        _cleanup_free_ char *spool = NULL, *script = NULL, *out = NULL;
        SlurmJob *s;
        int r;

        s = calloc(1, sizeof(SlurmJob));
        if (!s)
                return -ENOMEM;
        s->platform = p;
        s->job = j;
        r = job_user(j, &s->user);
        if (r < 0) {
                slurm_job_free(s);
                return r;
        }
        if (asprintf(&spool, "%s/%s", p->config->slurm_spool_dir, j->id) < 0 || asprintf(&out, "%s/slurm/out", spool) < 0) {
                slurm_job_free(s);
                return -ENOMEM;
        }
        if (mkdir(spool, 0755) < 0 && errno != EEXIST) {
                r = -errno;
                slurm_job_free(s);
                return r;
        }
        /* Slurm's output goes to slurm/out, written by slurmstepd as the user: slurm/ is
         * theirs; the spool itself stays root's (the launcher checks it). */
        {
                _cleanup_free_ char *sd = NULL;
                struct passwd *pw = getpwnam(s->user);

                if (asprintf(&sd, "%s/slurm", spool) < 0) {
                        slurm_job_free(s);
                        return -ENOMEM;
                }
                if ((mkdir(sd, 0700) < 0 && errno != EEXIST) || !pw || chown(sd, pw->pw_uid, pw->pw_gid) < 0) {
                        r = pw ? -errno : -ESRCH;
                        slurm_job_free(s);
                        return r;
                }
        }
        /* TODO: the job's input (j->spool_dir/input) must be copied into spool/input; only an
         * empty one is made so far. */
        {
                _cleanup_free_ char *in = NULL;

                if (asprintf(&in, "%s/" SPOOL_INPUT_DIR, spool) < 0) {
                        slurm_job_free(s);
                        return -ENOMEM;
                }
                if (mkdir(in, 0755) < 0 && errno != EEXIST) {
                        r = -errno;
                        slurm_job_free(s);
                        return r;
                }
        }
        /* The launcher demands a root-owned spool that nobody else may write. */
        json_object *spec = job_spec_json(j, svc, image);
        if (!spec) {
                slurm_job_free(s);
                return -ENOMEM;
        }
        const char *text = json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        r = write_file_atomic(spool, SPOOL_JOB_SPEC, text, strlen(text));
        json_object_put(spec);
        if (r < 0) {
                slurm_job_free(s);
                return r;
        }
        r = slurm_script_generate(&(SlurmScriptParams) { .job_id = j->id, .launcher = p->config->slurm_launcher ?: LIBEXECDIR "/gateway-slurm-launch",
                                                         .spool_dir = spool }, &script);
        if (r < 0) {
                slurm_job_free(s);
                return r;
        }
        _cleanup_free_ char *name = NULL;
        if (asprintf(&name, "gatewayd-%s", j->id) < 0) {
                slurm_job_free(s);
                return -ENOMEM;
        }
        SlurmJobDesc d = {
                .name = name,
                .script = script,
                .partition = p->config->slurm_partition,
                .account = p->config->slurm_account,
                .cwd = spool,
                .standard_output = out,
                .standard_error = out,
                .time_limit_usec = (svc->timeout_sec ?: p->manager->config->runtime_max_sec) * USEC_PER_SEC,
                .memory_bytes = svc->memory ?: p->manager->config->memory_max,
        };
        j->platform_data = s;
        j->platform_data_free = slurm_job_free;
        r = slurm_rest_submit(sp->rest, s->user, &d, on_submitted, s, &s->request);
        if (r < 0) {
                j->platform_data = NULL;
                j->platform_data_free = NULL;
                slurm_job_free(s);
        }
        return r;
}

static void on_cancelled(SlurmRest *r, int error, const char *message, void *userdata) {
        SlurmJob *s = userdata;

        s->request = NULL;
        slurm_job_poll(s);
}

static int slurm_cancel_job(Platform *p, Job *j) {
        SlurmPlatform *sp = p->data;
        SlurmJob *s = j->platform_data;

        if (!s || !s->slurm_id)
                return -EAGAIN;  /* TODO: cancel once the submit answered */
        slurm_rest_request_cancel(s->request);
        s->request = NULL;
        return slurm_rest_cancel(sp->rest, s->user, s->slurm_id, on_cancelled, s, &s->request);
}

static int slurm_reattach_job(Platform *p, Job *j) {
        uint32_t id;
        SlurmJob *s;
        int r;

        if (read_slurm_id(j, &id) < 0)
                return 0;  /* TODO: slurm_rest_find_job() by name when the submit's fate is unknown */
        s = calloc(1, sizeof(SlurmJob));
        if (!s)
                return -ENOMEM;
        s->platform = p;
        s->job = j;
        s->slurm_id = id;
        s->started = j->state == JOB_RUNNING;
        r = job_user(j, &s->user);
        if (r < 0) {
                slurm_job_free(s);
                return r;
        }
        j->platform_data = s;
        j->platform_data_free = slurm_job_free;
        slurm_job_poll(s);
        return 1;
}

static json_object *slurm_report_nodes(Platform *p) {
        /* TODO: ping + partitions, cached by a timer (the report is synchronous). */
        json_object *a = json_object_new_array(), *o = json_object_new_object();

        json_object_object_add(o, "name", json_object_new_string(p->config->slurm_url));
        json_object_object_add(o, "state", json_object_new_string("unknown"));
        json_object_array_add(a, o);
        return a;
}

const PlatformVTable platform_slurm_vtable = {
        .kind = "slurm",
        .init = slurm_init,
        .done = slurm_done,
        .start_job = slurm_start_job,
        .cancel_job = slurm_cancel_job,
        .reattach_job = slurm_reattach_job,
        .report_nodes = slurm_report_nodes,
};
