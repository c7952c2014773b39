/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <curl/curl.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "curl-event.h"
#include "json-util.h"
#include "log.h"
#include "slurm-jwt.h"
#include "slurm-rest.h"

/* Answers we accept: one job, the partitions of a cluster. Anything larger is not slurmrestd. */
#define ANSWER_MAX (8U * 1024U * 1024U)
/* GET jobs lists every job of the cluster (about 5 KB each): only for recovery. */
#define JOBS_ANSWER_MAX (128U * 1024U * 1024U)
#define TOKEN_FILE_MAX 8192U

static const char *const api_versions[] = { "v0.0.38", "v0.0.37", "v0.0.36" };

/* ---- answers ---------------------------------------------------------------------------- */

void slurm_answer_done(SlurmAnswer *a) {
        if (!a)
                return;
        a->message = mfree(a->message);
        if (a->json)
                json_object_put(a->json);
        a->json = NULL;
}

/* The first entry of "errors": 22.05 writes error_number+description in most handlers but
 * error_code+error on the submit path (facts/slurmrestd.md), so both are read. */
static void first_error(json_object *answer, int *ret_number, const char **ret_text) {
        json_object *errors = json_get_typed(answer, "errors", json_type_array), *e;
        json_object *n;

        *ret_number = 0;
        *ret_text = NULL;
        if (!errors || json_object_array_length(errors) == 0)
                return;
        e = json_object_array_get_idx(errors, 0);
        if (!json_object_is_type(e, json_type_object))
                return;
        if ((json_object_object_get_ex(e, "error_number", &n) || json_object_object_get_ex(e, "error_code", &n)) &&
            json_object_is_type(n, json_type_int))
                *ret_number = json_object_get_int(n);
        *ret_text = json_get_string(e, "description");
        if (!*ret_text || !**ret_text)
                *ret_text = json_get_string(e, "error");
}

static bool has_errors(json_object *answer) {
        json_object *errors = json_get_typed(answer, "errors", json_type_array);
        return errors && json_object_array_length(errors) > 0;
}

static int answer_fail(SlurmAnswer *ret, SlurmOutcome outcome, int error, const char *fmt, ...) _printf_(4, 5);
static int answer_fail(SlurmAnswer *ret, SlurmOutcome outcome, int error, const char *fmt, ...) {
        va_list ap;
        int k;

        ret->outcome = outcome;
        ret->error = error;
        va_start(ap, fmt);
        k = vasprintf(&ret->message, fmt, ap);
        va_end(ap);
        if (k < 0) {
                ret->message = NULL;
                return -ENOMEM;
        }
        return 0;
}

int slurm_answer_parse(long http_status, const char *body, size_t len, SlurmAnswer *ret) {
        json_object *json = NULL;
        const char *text;
        int number;

        *ret = (SlurmAnswer) {};

        if (body && len > 0) {
                size_t offset;
                const char *reason;
                int r = json_parse_untrusted(body, len, &json, &offset, &reason);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 || !json_object_is_type(json, json_type_object)) {
                        if (json)
                                json_object_put(json);
                        json = NULL;
                }
        }
        ret->json = json;

        if (http_status == 401)
                /* Only when a header is missing: a bad token gets a 500 (facts/slurm.md §2). */
                return answer_fail(ret, SLURM_OUTCOME_FAILED, -EACCES,
                                   "slurmrestd refused the request: authentication failure (HTTP 401)");
        if (http_status == 404 && !json)
                return answer_fail(ret, SLURM_OUTCOME_FAILED, -EPROTONOSUPPORT,
                                   "slurmrestd does not know this path (HTTP 404): OpenAPI plugin not loaded?");
        if (http_status == 200 && !json)
                return answer_fail(ret, SLURM_OUTCOME_FAILED, -EBADMSG,
                                   "slurmrestd's answer is not a JSON object");
        if (http_status == 502 || http_status == 503 || http_status == 504)
                return answer_fail(ret, SLURM_OUTCOME_RETRY, -ECOMM, "slurmrestd answered HTTP %ld", http_status);

        first_error(json, &number, &text);
        ret->slurm_error = number;

        if (http_status == 200 && !has_errors(json)) {
                ret->outcome = SLURM_OUTCOME_OK;
                return 0;
        }

        if (number == -1 || number == SLURM_ERROR_ZERO_BYTES)
                /* slurmctld dropped slurmrestd's connection: a refused token looks exactly like a
                 * controller that is down. */
                return answer_fail(ret, SLURM_OUTCOME_RETRY, -ECOMM,
                                   "slurmctld refused the request's token or could not be reached "
                                   "(slurmrestd: %s, error %d, HTTP %ld)",
                                   text ?: "no description", number, http_status);
        if (number == SLURM_ERROR_INVALID_JOB_ID)
                return answer_fail(ret, SLURM_OUTCOME_GONE, -ESRCH, "Slurm does not know the job: %s",
                                   text ?: "invalid job id");
        if (number == SLURM_ERROR_ACCESS_DENIED)
                return answer_fail(ret, SLURM_OUTCOME_FAILED, -EPERM, "Slurm denied access: %s",
                                   text ?: "access/permission denied");
        if (http_status == 200)
                return answer_fail(ret, SLURM_OUTCOME_FAILED, -EREMOTEIO,
                                   "slurmrestd accepted the request but reported error %d: %s",
                                   number, text ?: "no description");
        if (number != 0)
                return answer_fail(ret, SLURM_OUTCOME_FAILED, http_status == 400 ? -EINVAL : -EREMOTEIO,
                                   "Slurm refused the request: %s (error %d, HTTP %ld)",
                                   text ?: "no description", number, http_status);
        if (http_status >= 500)
                return answer_fail(ret, SLURM_OUTCOME_RETRY, -ECOMM, "slurmrestd answered HTTP %ld", http_status);
        return answer_fail(ret, SLURM_OUTCOME_FAILED, -EREMOTEIO, "slurmrestd answered HTTP %ld", http_status);
}

static int get_int64(json_object *o, const char *key, int64_t *ret) {
        json_object *v;

        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return -ENOENT;
        *ret = json_object_get_int64(v);
        return 0;
}

int slurm_submit_job_id(json_object *answer, uint32_t *ret_job_id) {
        int64_t id;

        if (get_int64(answer, "job_id", &id) < 0 || id <= 0 || id > UINT32_MAX)
                return -EBADMSG;
        *ret_job_id = (uint32_t) id;
        return 0;
}

static const char *const phase_names[_SLURM_JOB_PHASE_MAX] = {
        [SLURM_JOB_PENDING] = "PENDING",
        [SLURM_JOB_RUNNING] = "RUNNING",
        [SLURM_JOB_COMPLETED] = "COMPLETED",
        [SLURM_JOB_FAILED] = "FAILED",
        [SLURM_JOB_CANCELLED] = "CANCELLED",
};

const char *slurm_job_phase_to_string(SlurmJobPhase p) {
        return p >= 0 && p < _SLURM_JOB_PHASE_MAX ? phase_names[p] : NULL;
}

static const struct {
        const char *state;
        SlurmJobPhase phase;
        const char *reason;
} job_states[] = {
        { "PENDING", SLURM_JOB_PENDING, NULL },
        { "CONFIGURING", SLURM_JOB_PENDING, NULL },
        { "REQUEUED", SLURM_JOB_PENDING, NULL },
        { "REQUEUE_HOLD", SLURM_JOB_PENDING, NULL },
        { "REQUEUE_FED", SLURM_JOB_PENDING, NULL },
        { "RESV_DEL_HOLD", SLURM_JOB_PENDING, NULL },
        { "RUNNING", SLURM_JOB_RUNNING, NULL },
        /* Not final: can last a minute when a node is sick (facts/slurm.md §3). */
        { "COMPLETING", SLURM_JOB_RUNNING, NULL },
        { "SIGNALING", SLURM_JOB_RUNNING, NULL },
        { "STAGE_OUT", SLURM_JOB_RUNNING, NULL },
        { "RESIZING", SLURM_JOB_RUNNING, NULL },
        { "SUSPENDED", SLURM_JOB_RUNNING, NULL },
        { "STOPPED", SLURM_JOB_RUNNING, NULL },
        { "COMPLETED", SLURM_JOB_COMPLETED, NULL },
        { "CANCELLED", SLURM_JOB_CANCELLED, "the Slurm job was cancelled" },
        { "REVOKED", SLURM_JOB_CANCELLED, "the Slurm job was revoked (federation)" },
        { "FAILED", SLURM_JOB_FAILED, "the Slurm job failed" },
        { "TIMEOUT", SLURM_JOB_FAILED, "the Slurm job reached its time limit" },
        { "NODE_FAIL", SLURM_JOB_FAILED, "the Slurm job's node failed" },
        { "OUT_OF_MEMORY", SLURM_JOB_FAILED, "the Slurm job ran out of memory" },
        { "BOOT_FAIL", SLURM_JOB_FAILED, "the Slurm job's node failed to boot" },
        { "DEADLINE", SLURM_JOB_FAILED, "the Slurm job missed its deadline" },
        { "PREEMPTED", SLURM_JOB_FAILED, "the Slurm job was preempted" },
        { "SPECIAL_EXIT", SLURM_JOB_FAILED, "the Slurm job ended with a special exit" },
};

SlurmJobPhase slurm_job_phase_from_state(const char *job_state) {
        if (!job_state)
                return _SLURM_JOB_PHASE_INVALID;
        for (size_t i = 0; i < ELEMENTSOF(job_states); i++)
                if (streq(job_states[i].state, job_state))
                        return job_states[i].phase;
        return _SLURM_JOB_PHASE_INVALID;
}

const char *slurm_job_state_reason(const char *job_state) {
        if (!job_state)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(job_states); i++)
                if (streq(job_states[i].state, job_state))
                        return job_states[i].reason;
        return NULL;
}

void slurm_job_info_done(SlurmJobInfo *j) {
        if (!j)
                return;
        j->name = mfree(j->name);
        j->state = mfree(j->state);
        j->state_reason = mfree(j->state_reason);
        j->user_name = mfree(j->user_name);
}

static int dup_string(json_object *o, const char *key, char **ret) {
        const char *s = json_get_string(o, key);

        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int job_from_object(json_object *o, SlurmJobInfo *ret) {
        _cleanup_(slurm_job_info_done) SlurmJobInfo j = { .exit_code = -1 };
        int64_t v;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return -EBADMSG;
        if (get_int64(o, "job_id", &v) < 0 || v <= 0 || v > UINT32_MAX)
                return -EBADMSG;
        j.job_id = (uint32_t) v;
        if (!json_get_string(o, "job_state"))
                return -EBADMSG;
        if ((r = dup_string(o, "job_state", &j.state)) < 0 ||
            (r = dup_string(o, "state_reason", &j.state_reason)) < 0 ||
            (r = dup_string(o, "name", &j.name)) < 0 ||
            (r = dup_string(o, "user_name", &j.user_name)) < 0)
                return r;
        j.phase = slurm_job_phase_from_state(j.state);
        if (get_int64(o, "exit_code", &v) == 0 && v >= 0 && v <= INT32_MAX)
                j.exit_code = (int) v;
        if (get_int64(o, "start_time", &v) == 0 && v > 0)
                j.start_time = v;
        if (get_int64(o, "end_time", &v) == 0 && v > 0)
                j.end_time = v;

        *ret = j;
        j = (SlurmJobInfo) {};
        return 0;
}

int slurm_job_info_from_json(json_object *answer, SlurmJobInfo *ret) {
        json_object *jobs = json_get_typed(answer, "jobs", json_type_array);

        if (!jobs || json_object_array_length(jobs) < 1)
                return -EBADMSG;
        return job_from_object(json_object_array_get_idx(jobs, 0), ret);
}

int slurm_jobs_find_by_name(json_object *answer, const char *name, const char *user, SlurmJobInfo *ret,
                            unsigned *ret_matches) {
        json_object *jobs = json_get_typed(answer, "jobs", json_type_array);
        json_object *best = NULL;
        int64_t best_id = 0;
        unsigned matches = 0;

        if (!jobs || !name || !user)
                return -EBADMSG;
        for (size_t i = 0; i < json_object_array_length(jobs); i++) {
                json_object *o = json_object_array_get_idx(jobs, i);
                const char *n = json_get_string(o, "name"), *u = json_get_string(o, "user_name");
                int64_t id;

                if (!n || !u || !streq(n, name) || !streq(u, user) || get_int64(o, "job_id", &id) < 0 || id <= 0)
                        continue;
                matches++;
                if (id > best_id)
                        best = o, best_id = id;
        }
        if (ret_matches)
                *ret_matches = matches;
        if (!best)
                return -ENOENT;
        return job_from_object(best, ret);
}

void slurm_partitions_free(SlurmPartition *p, size_t n) {
        for (size_t i = 0; p && i < n; i++) {
                free(p[i].name);
                free(p[i].state);
        }
        free(p);
}

int slurm_partitions_from_json(json_object *answer, SlurmPartition **ret, size_t *ret_n) {
        json_object *parts = json_get_typed(answer, "partitions", json_type_array);
        SlurmPartition *p;
        size_t n, k = 0;

        if (!parts)
                return -EBADMSG;
        n = json_object_array_length(parts);
        p = calloc(n ?: 1, sizeof(SlurmPartition));
        if (!p)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(parts, i);
                int64_t v;

                if (!json_object_is_type(o, json_type_object) || !json_get_string(o, "name"))
                        continue;
                if (dup_string(o, "name", &p[k].name) < 0 || dup_string(o, "state", &p[k].state) < 0) {
                        slurm_partitions_free(p, k + 1);
                        return -ENOMEM;
                }
                if (get_int64(o, "total_nodes", &v) == 0 && v > 0 && v <= UINT32_MAX)
                        p[k].nodes = (uint32_t) v;
                if (get_int64(o, "total_cpus", &v) == 0 && v > 0 && v <= UINT32_MAX)
                        p[k].cpus = (uint32_t) v;
                k++;
        }
        *ret = p;
        *ret_n = k;
        return 0;
}

static bool strcaseeq(const char *a, const char *b) {
        return strcasecmp(a, b) == 0;
}

static bool flags_contain(json_object *flags, const char *flag) {
        size_t n = flags ? json_object_array_length(flags) : 0;

        for (size_t i = 0; i < n; i++) {
                const char *f = json_object_get_string(json_object_array_get_idx(flags, i));
                if (f && strcaseeq(f, flag))
                        return true;
        }
        return false;
}

/* The surfaces' node states (PlatformNode.state) from Slurm's: drained or draining nodes take no
 * new jobs ("draining"), nodes slurmctld cannot reach or use are "unreachable", the rest "up". */
const char *slurm_node_state_to_surface(const char *state, json_object *flags) {
        static const char *const unusable[] = { "down", "fail", "failing", "future", "unknown", "error" };

        if (flags_contain(flags, "DRAIN") || (state && (strcaseeq(state, "drain") || strcaseeq(state, "drained") ||
                                                        strcaseeq(state, "draining"))))
                return "draining";
        if (!state || flags_contain(flags, "NOT_RESPONDING") || flags_contain(flags, "POWERED_DOWN"))
                return "unreachable";
        for (size_t i = 0; i < ELEMENTSOF(unusable); i++)
                if (strcaseeq(state, unusable[i]))
                        return "unreachable";
        return "up";
}

/* Keeps what the surfaces show of a node; everything else of Slurm's answer is dropped. */
int slurm_nodes_from_json(json_object *answer, json_object **ret) {
        json_object *nodes = json_get_typed(answer, "nodes", json_type_array), *a;
        size_t n;

        if (!nodes)
                return -EBADMSG;
        a = json_object_new_array();
        if (!a)
                return -ENOMEM;
        n = json_object_array_length(nodes);
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(nodes, i), *node, *parts, *flags;
                const char *name = json_get_string(o, "name"), *state = json_get_string(o, "state"),
                           *reason = json_get_string(o, "reason");
                int64_t v;

                if (!json_object_is_type(o, json_type_object) || !name)
                        continue;
                node = json_object_new_object();
                if (!node || json_object_array_add(a, node) < 0) {
                        json_object_put(node);
                        json_object_put(a);
                        return -ENOMEM;
                }
                flags = json_get_typed(o, "state_flags", json_type_array);
                json_object_object_add(node, "name", json_object_new_string(name));
                json_object_object_add(node, "state", json_object_new_string(slurm_node_state_to_surface(state, flags)));
                /* Slurm's own words, lower case as 22.05 gives them ("idle", "allocated", ...). */
                if (state) {
                        _cleanup_free_ char *lower = strdup(state);
                        for (char *c = lower; c && *c; c++)
                                *c = (char) (*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
                        json_object_object_add(node, "slurmState", json_object_new_string(lower ?: state));
                }
                if (flags)
                        json_object_object_add(node, "slurmStateFlags", json_object_get(flags));
                if (reason && *reason)
                        json_object_object_add(node, "reason", json_object_new_string(reason));
                if (get_int64(o, "cpus", &v) == 0 && v >= 0)
                        json_object_object_add(node, "cpus", json_object_new_int64(v));
                if (get_int64(o, "alloc_cpus", &v) == 0 && v >= 0)
                        json_object_object_add(node, "allocatedCpus", json_object_new_int64(v));
                parts = json_get_typed(o, "partitions", json_type_array);
                if (parts)
                        json_object_object_add(node, "partitions", json_object_get(parts));
        }
        *ret = a;
        return 0;
}

void slurm_ping_done(SlurmPing *p) {
        if (!p)
                return;
        p->hostname = mfree(p->hostname);
        p->version = mfree(p->version);
}

int slurm_ping_from_json(json_object *answer, SlurmPing *ret) {
        json_object *pings = json_get_typed(answer, "pings", json_type_array);
        json_object *meta = json_get_typed(answer, "meta", json_type_object);
        json_object *slurm = json_get_typed(meta, "Slurm", json_type_object);
        SlurmPing p = {};

        if (!pings)
                return -EBADMSG;
        for (size_t i = 0; i < json_object_array_length(pings); i++) {
                json_object *o = json_object_array_get_idx(pings, i);
                const char *up = json_get_string(o, "ping");

                if (!up || !streq(up, "UP"))
                        continue;
                p.responding = true;
                if (dup_string(o, "hostname", &p.hostname) < 0)
                        return -ENOMEM;
                break;
        }
        if (dup_string(slurm, "release", &p.version) < 0) {
                slurm_ping_done(&p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

/* ---- requests ----------------------------------------------------------------------------- */

int slurm_submit_body(const SlurmJobDesc *d, json_object **ret) {
        _cleanup_(json_object_putp) json_object *body = NULL;
        json_object *job, *env;

        if (!d || !d->script || !d->name || !d->cwd || d->cwd[0] != '/')
                return -EINVAL;
        if ((d->standard_output && d->standard_output[0] != '/') ||
            (d->standard_error && d->standard_error[0] != '/'))
                return -EINVAL;

        body = json_object_new_object();
        job = json_object_new_object();
        env = json_object_new_object();
        if (!body || !job || !env) {
                json_object_put(job);
                json_object_put(env);
                return -ENOMEM;
        }
        json_object_object_add(body, "script", json_object_new_string(d->script));
        json_object_object_add(body, "job", job);
        json_object_object_add(job, "environment", env);

        if (d->environment && d->environment[0])
                for (char **e = d->environment; *e; e++) {
                        const char *eq = strchr(*e, '=');
                        _cleanup_free_ char *k = NULL;

                        if (!eq || eq == *e)
                                return -EINVAL;
                        k = strndup(*e, eq - *e);
                        if (!k)
                                return -ENOMEM;
                        json_object_object_add(env, k, json_object_new_string(eq + 1));
                }
        else
                json_object_object_add(env, "PATH", json_object_new_string("/usr/sbin:/usr/bin:/sbin:/bin"));

        json_object_object_add(job, "name", json_object_new_string(d->name));
        json_object_object_add(job, "current_working_directory", json_object_new_string(d->cwd));
        json_object_object_add(job, "standard_output", json_object_new_string(d->standard_output ?: "/dev/null"));
        json_object_object_add(job, "standard_error", json_object_new_string(d->standard_error ?: "/dev/null"));
        /* Flag keys take effect by presence; "requeue": false would still requeue, "no_requeue"
         * (not in the spec) clears it (facts/slurm.md §3). */
        json_object_object_add(job, "no_requeue", json_object_new_boolean(true));
        if (d->partition)
                json_object_object_add(job, "partition", json_object_new_string(d->partition));
        if (d->account)
                json_object_object_add(job, "account", json_object_new_string(d->account));
        if (d->comment)
                json_object_object_add(job, "comment", json_object_new_string(d->comment));
        if (d->time_limit_usec > 0) {
                uint64_t minutes = (d->time_limit_usec + 60 * USEC_PER_SEC - 1) / (60 * USEC_PER_SEC);
                json_object_object_add(job, "time_limit", json_object_new_int64((int64_t) MIN(minutes, (uint64_t) INT32_MAX)));
        }
        if (d->memory_bytes > 0) {
                uint64_t mb = (d->memory_bytes + 1024 * 1024 - 1) / (1024 * 1024);
                json_object_object_add(job, "memory_per_node", json_object_new_int64((int64_t) MIN(mb, (uint64_t) INT64_MAX)));
        }

        *ret = TAKE_PTR(body);
        return 0;
}

/* ---- the client --------------------------------------------------------------------------- */

typedef enum RequestKind {
        REQUEST_SUBMIT,
        REQUEST_JOB,
        REQUEST_CANCEL,
        REQUEST_PING,
        REQUEST_PARTITIONS,
        REQUEST_FIND,
        REQUEST_NODES,
} RequestKind;

struct SlurmRestRequest {
        SlurmRest *rest;
        SlurmRestRequest *prev, *next;
        RequestKind kind;
        char *user;
        char *path;             /* after the version, e.g. "/job/17" */
        char *method;
        char *body;
        char *find_name;        /* REQUEST_FIND */
        size_t answer_max;
        unsigned attempt;
        unsigned version;       /* index into api_versions when the attempt started */
        CURL *easy;
        struct curl_slist *headers;
        char *answer;
        size_t answer_size;
        bool answer_too_big;
        sd_event_source *retry_timer;
        void *callback;
        void *userdata;
};

struct SlurmRest {
        sd_event *event;
        CurlEvent *curl;
        char *base_url;
        char *unix_path;
        uint8_t *jwt_key;
        size_t jwt_key_len;
        char *token;
        char *token_file;       /* re-read when it changes: SlurmUser tokens expire */
        struct stat token_stat;
        char *token_user;
        char *ping_user;
        uint64_t timeout_usec;
        unsigned attempts;
        uint64_t retry_delay_usec;
        uint64_t token_lifetime_sec;
        unsigned version;
        SlurmRestRequest *requests;
};

static void request_free(SlurmRestRequest *q) {
        if (!q)
                return;
        if (q->rest) {
                if (q->prev)
                        q->prev->next = q->next;
                else
                        q->rest->requests = q->next;
                if (q->next)
                        q->next->prev = q->prev;
        }
        if (q->easy) {
                if (q->rest)
                        curl_event_remove(q->rest->curl, q->easy);
                curl_easy_cleanup(q->easy);
        }
        curl_slist_free_all(q->headers);
        sd_event_source_disable_unref(q->retry_timer);
        free(q->user);
        free(q->path);
        free(q->method);
        free(q->body);
        free(q->find_name);
        free(q->answer);
        free(q);
}

void slurm_rest_request_cancel(SlurmRestRequest *q) {
        request_free(q);
}

SlurmRest *slurm_rest_free(SlurmRest *r) {
        if (!r)
                return NULL;
        while (r->requests)
                request_free(r->requests);
        curl_event_free(r->curl);
        sd_event_unref(r->event);
        free(r->base_url);
        free(r->unix_path);
        if (r->jwt_key)
                explicit_bzero(r->jwt_key, r->jwt_key_len);
        free(r->jwt_key);
        if (r->token)
                explicit_bzero(r->token, strlen(r->token));
        free(r->token);
        free(r->token_user);
        free(r->token_file);
        free(r->ping_user);
        free(r);
        return NULL;
}

const char *slurm_rest_version(SlurmRest *r) {
        return api_versions[r->version];
}

static void on_transfer_done(CurlEvent *c, CURL *easy, CURLcode result, void *userdata);

static int read_token_file(const char *path, char **ret) {
        _cleanup_close_ int fd = -1;
        char buf[TOKEN_FILE_MAX + 1];
        ssize_t n;
        struct stat st;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_mode & (S_IROTH | S_IWOTH))
                return -EPERM;
        n = read(fd, buf, sizeof(buf));
        if (n < 0)
                return -errno;
        if ((size_t) n > TOKEN_FILE_MAX)
                return -EMSGSIZE;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
                n--;
        if (n == 0)
                return -EMSGSIZE;
        for (ssize_t i = 0; i < n; i++)
                if ((unsigned char) buf[i] <= ' ' || buf[i] == 0x7f)
                        return -EBADMSG;
        *ret = strndup(buf, n);
        explicit_bzero(buf, sizeof(buf));
        return *ret ? 0 : -ENOMEM;
}

static int parse_url(SlurmRest *r, const char *url) {
        if (strneq(url, "unix:", 5)) {
                if (url[5] != '/')
                        return -EINVAL;
                r->unix_path = strdup(url + 5);
                r->base_url = strdup("http://localhost");
        } else if (strneq(url, "http://", 7) || strneq(url, "https://", 8)) {
                size_t n = strlen(url);
                while (n > 0 && url[n - 1] == '/')
                        n--;
                r->base_url = strndup(url, n);
        } else
                return -EINVAL;
        return r->base_url ? 0 : -ENOMEM;
}

int slurm_rest_new(sd_event *event, const SlurmRestConfig *c, SlurmRest **ret) {
        _cleanup_(slurm_rest_freep) SlurmRest *r = NULL;
        int k;

        if (!c->url || (!c->jwt_key_file == !c->token_file) || (c->token_file && !c->token_user))
                return -EINVAL;

        r = calloc(1, sizeof(SlurmRest));
        if (!r)
                return -ENOMEM;
        r->event = sd_event_ref(event);
        r->timeout_usec = c->timeout_usec ?: 10 * USEC_PER_SEC;
        r->attempts = c->attempts ?: 4;
        r->retry_delay_usec = c->retry_delay_usec ?: 200 * 1000;
        r->token_lifetime_sec = c->token_lifetime_sec ?: 300;
        k = parse_url(r, c->url);
        if (k < 0)
                return k;
        if (c->jwt_key_file) {
                k = slurm_jwt_key_load(c->jwt_key_file, &r->jwt_key, &r->jwt_key_len);
                if (k < 0)
                        return log_error_errno(k, "Cannot load the Slurm JWT key %s: %m", c->jwt_key_file);
        } else {
                k = read_token_file(c->token_file, &r->token);
                if (k < 0)
                        return log_error_errno(k, "Cannot read the Slurm token file %s: %m", c->token_file);
                r->token_file = strdup(c->token_file);
                if (!r->token_file)
                        return -ENOMEM;
                (void) stat(c->token_file, &r->token_stat);
                r->token_user = strdup(c->token_user);
                if (!r->token_user)
                        return -ENOMEM;
        }
        /* Any authenticated user may ping; never root (request_new() refuses it). */
        r->ping_user = strdup(c->ping_user ?: "nobody");
        if (!r->ping_user)
                return -ENOMEM;

        k = curl_event_new(event, "slurm-rest", on_transfer_done, r, &r->curl);
        if (k < 0)
                return k;

        *ret = TAKE_PTR(r);
        return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata) {
        SlurmRestRequest *q = userdata;
        size_t n = size * nmemb;
        char *p;

        if (q->answer_size + n > q->answer_max) {
                q->answer_too_big = true;
                return 0;
        }
        p = realloc(q->answer, q->answer_size + n + 1);
        if (!p)
                return 0;
        memcpy(p + q->answer_size, data, n);
        q->answer = p;
        q->answer_size += n;
        q->answer[q->answer_size] = 0;
        return n;
}

/* A site renews the SlurmUser's token by rewriting the file (scontrol token lifespan=...): the
 * next request uses the new one. A file that became unreadable keeps the old token. */
static void reload_token(SlurmRest *r) {
        _cleanup_free_ char *token = NULL;
        struct stat st;
        int k;

        if (!r->token_file || stat(r->token_file, &st) < 0)
                return;
        if (st.st_ino == r->token_stat.st_ino && st.st_size == r->token_stat.st_size &&
            st.st_mtim.tv_sec == r->token_stat.st_mtim.tv_sec && st.st_mtim.tv_nsec == r->token_stat.st_mtim.tv_nsec)
                return;
        r->token_stat = st;
        k = read_token_file(r->token_file, &token);
        if (k < 0) {
                log_warning_errno(k, "Cannot read the changed Slurm token file %s, keeping the previous token: %m",
                                  r->token_file);
                return;
        }
        log_info("Slurm token file %s changed: using its new token.", r->token_file);
        explicit_bzero(r->token, strlen(r->token));
        free(r->token);
        r->token = TAKE_PTR(token);
}

static int request_headers(SlurmRestRequest *q, struct curl_slist **ret) {
        SlurmRest *r = q->rest;
        _cleanup_free_ char *token = NULL, *h_user = NULL, *h_token = NULL;
        struct curl_slist *l = NULL, *t;
        struct timespec ts;
        int k;

        if (r->jwt_key) {
                clock_gettime(CLOCK_REALTIME, &ts);
                k = slurm_jwt_mint(r->jwt_key, r->jwt_key_len, q->user, (uint64_t) ts.tv_sec, r->token_lifetime_sec,
                                   &token);
                if (k < 0)
                        return k;
        }
        if (!r->jwt_key)
                reload_token(r);
        if (asprintf(&h_user, "X-SLURM-USER-NAME: %s", q->user) < 0 ||
            asprintf(&h_token, "X-SLURM-USER-TOKEN: %s", token ?: r->token) < 0)
                return -ENOMEM;
        if (token)
                explicit_bzero(token, strlen(token));

        const char *lines[] = { h_user, h_token, "Accept: application/json",
                                q->body ? "Content-Type: application/json" : NULL };
        for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
                if (!lines[i])
                        continue;
                t = curl_slist_append(l, lines[i]);
                if (!t) {
                        curl_slist_free_all(l);
                        return -ENOMEM;
                }
                l = t;
        }
        explicit_bzero(h_token, strlen(h_token));
        *ret = l;
        return 0;
}

static int request_start(SlurmRestRequest *q) {
        SlurmRest *r = q->rest;
        _cleanup_free_ char *url = NULL;
        int k;

        if (q->easy) {
                curl_event_remove(r->curl, q->easy);
                curl_easy_cleanup(q->easy);
                q->easy = NULL;
        }
        curl_slist_free_all(q->headers);
        q->headers = NULL;
        q->answer = mfree(q->answer);
        q->answer_size = 0;
        q->answer_too_big = false;
        q->attempt++;
        q->version = r->version;

        if (asprintf(&url, "%s/slurm/%s%s", r->base_url, api_versions[q->version], q->path) < 0)
                return -ENOMEM;
        k = request_headers(q, &q->headers);
        if (k < 0)
                return k;
        q->easy = curl_easy_init();
        if (!q->easy)
                return -ENOMEM;
        if (curl_easy_setopt(q->easy, CURLOPT_URL, url) != CURLE_OK ||
            (r->unix_path && curl_easy_setopt(q->easy, CURLOPT_UNIX_SOCKET_PATH, r->unix_path) != CURLE_OK) ||
            curl_easy_setopt(q->easy, CURLOPT_CUSTOMREQUEST, q->method) != CURLE_OK ||
            curl_easy_setopt(q->easy, CURLOPT_HTTPHEADER, q->headers) != CURLE_OK ||
            curl_easy_setopt(q->easy, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
            curl_easy_setopt(q->easy, CURLOPT_WRITEDATA, q) != CURLE_OK ||
            curl_easy_setopt(q->easy, CURLOPT_PRIVATE, q) != CURLE_OK ||
            curl_easy_setopt(q->easy, CURLOPT_TIMEOUT_MS, (long) (r->timeout_usec / 1000)) != CURLE_OK ||
            curl_easy_setopt(q->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(q->easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
            curl_easy_setopt(q->easy, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK)
                return -EIO;
        if (q->body &&
            (curl_easy_setopt(q->easy, CURLOPT_POSTFIELDS, q->body) != CURLE_OK ||
             curl_easy_setopt(q->easy, CURLOPT_POSTFIELDSIZE, (long) strlen(q->body)) != CURLE_OK))
                return -EIO;
        k = curl_event_add(r->curl, q->easy);
        if (k < 0)
                return k;
        return 0;
}

static void request_finish(SlurmRestRequest *q, int error, const char *message, json_object *answer);
static void on_cancel_unwanted(SlurmRest *r, int error, const char *message, void *userdata);

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        SlurmRestRequest *q = userdata;
        int k;

        q->retry_timer = sd_event_source_disable_unref(q->retry_timer);
        k = request_start(q);
        if (k < 0)
                request_finish(q, k, "cannot start a request to slurmrestd", NULL);
        return 0;
}

static int schedule_retry(SlurmRestRequest *q) {
        uint64_t now, delay = q->rest->retry_delay_usec << MIN(q->attempt - 1, 6U);

        if (sd_event_now(q->rest->event, CLOCK_MONOTONIC, &now) < 0)
                return -EIO;
        return sd_event_add_time(q->rest->event, &q->retry_timer, CLOCK_MONOTONIC, now + delay, 1, on_retry, q);
}

static int curl_code_to_errno(CURLcode c) {
        switch (c) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
                return -ECONNREFUSED;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        default:
                return -EIO;
        }
}

/* Whether a failed transfer certainly never reached slurmctld, so that a submit may be sent
 * again without queueing the job twice. */
static bool transport_error_before_send(CURLcode c) {
        return c == CURLE_COULDNT_CONNECT || c == CURLE_COULDNT_RESOLVE_HOST;
}

static void deliver(SlurmRestRequest *q, SlurmAnswer *a) {
        request_finish(q, a->error, a->message, a->json);
}

static void on_done(SlurmRestRequest *q, CURLcode code) {
        _cleanup_(slurm_answer_done) SlurmAnswer a = {};
        SlurmRest *r = q->rest;
        long status = 0;
        bool retry;
        int k;

        if (code != CURLE_OK) {
                _cleanup_free_ char *msg = NULL;
                retry = q->kind != REQUEST_SUBMIT || transport_error_before_send(code);
                if (q->answer_too_big)
                        retry = false;
                if (retry && q->attempt < r->attempts && schedule_retry(q) >= 0) {
                        log_debug("slurmrestd %s %s: %s, retrying", q->method, q->path, curl_easy_strerror(code));
                        return;
                }
                if (asprintf(&msg, "cannot reach slurmrestd at %s%s after %u attempt%s: %s",
                             r->unix_path ? "unix:" : "", r->unix_path ?: r->base_url, q->attempt,
                             q->attempt == 1 ? "" : "s",
                             q->answer_too_big ? "answer too large" : curl_easy_strerror(code)) < 0)
                        msg = NULL;
                request_finish(q, q->answer_too_big ? -EMSGSIZE : curl_code_to_errno(code),
                               msg ?: "cannot reach slurmrestd", NULL);
                return;
        }

        (void) curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
        k = slurm_answer_parse(status, q->answer, q->answer_size, &a);
        if (k < 0) {
                request_finish(q, k, "out of memory", NULL);
                return;
        }
        if (a.error == -EPROTONOSUPPORT && q->version + 1 < ELEMENTSOF(api_versions)) {
                /* An older slurmrestd: try the next API version, and keep it if it answers. */
                if (r->version == q->version)
                        r->version++;
                q->attempt--;
                k = request_start(q);
                if (k < 0)
                        request_finish(q, k, "cannot start a request to slurmrestd", NULL);
                return;
        }
        if (a.outcome == SLURM_OUTCOME_RETRY && q->attempt < r->attempts && schedule_retry(q) >= 0) {
                log_debug("slurmrestd %s %s: %s, retrying", q->method, q->path, a.message);
                return;
        }
        if (a.outcome == SLURM_OUTCOME_RETRY && q->attempt > 1) {
                _cleanup_free_ char *msg = NULL;
                if (asprintf(&msg, "%s; gave up after %u attempts", a.message, q->attempt) >= 0) {
                        free(a.message);
                        a.message = TAKE_PTR(msg);
                }
        }
        deliver(q, &a);
}

static void on_transfer_done(CurlEvent *c, CURL *easy, CURLcode result, void *userdata) {
        SlurmRestRequest *q = NULL;

        if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &q) != CURLE_OK || !q)
                return;
        on_done(q, result);
}

static void on_cancel_unwanted(SlurmRest *r, int error, const char *message, void *userdata) {
        if (error < 0)
                log_warning_errno(error, "Cannot cancel a Slurm job queued with errors: %s", strna(message));
}

static void request_finish(SlurmRestRequest *q, int error, const char *message, json_object *answer) {
        SlurmRest *r = q->rest;
        int k;

        switch (q->kind) {
        case REQUEST_SUBMIT: {
                uint32_t id = 0;
                if (error == 0 && slurm_submit_job_id(answer, &id) < 0) {
                        error = -EBADMSG;
                        message = "slurmrestd's submit answer has no job_id";
                } else if (error < 0 && answer && slurm_submit_job_id(answer, &id) >= 0) {
                        /* Accepted with errors (e.g. 2015): the job would pend forever. Cancel it
                         * here; the caller learns its id for the record. */
                        log_warning("Slurm job %" PRIu32 " was queued with errors, cancelling it: %s", id,
                                    strna(message));
                        (void) slurm_rest_cancel(r, q->user, id, on_cancel_unwanted, NULL, NULL);
                }
                ((slurm_submit_handler_t) q->callback)(r, error, id, error ? message : NULL, q->userdata);
                break;
        }
        case REQUEST_JOB: {
                _cleanup_(slurm_job_info_done) SlurmJobInfo j = {};
                if (error == 0 && (k = slurm_job_info_from_json(answer, &j)) < 0) {
                        error = k;
                        message = "slurmrestd's job answer is malformed";
                }
                ((slurm_job_handler_t) q->callback)(r, error, error ? NULL : &j, error ? message : NULL, q->userdata);
                break;
        }
        case REQUEST_FIND: {
                _cleanup_(slurm_job_info_done) SlurmJobInfo j = {};
                unsigned matches = 0;
                if (error == 0 && (k = slurm_jobs_find_by_name(answer, q->find_name, q->user, &j, &matches)) < 0) {
                        error = k;
                        message = k == -ENOENT ? "Slurm has no such job" : "slurmrestd's jobs answer is malformed";
                }
                if (matches > 1)
                        log_warning("Slurm has %u jobs named %s of %s; the newest is %" PRIu32 ".", matches,
                                    q->find_name, q->user, j.job_id);
                ((slurm_job_handler_t) q->callback)(r, error, error ? NULL : &j, error ? message : NULL, q->userdata);
                break;
        }
        case REQUEST_CANCEL:
                ((slurm_done_handler_t) q->callback)(r, error, error ? message : NULL, q->userdata);
                break;
        case REQUEST_PING: {
                _cleanup_(slurm_ping_done) SlurmPing p = {};
                if (error == 0 && (k = slurm_ping_from_json(answer, &p)) < 0) {
                        error = k;
                        message = "slurmrestd's ping answer is malformed";
                }
                if (error == 0 && !p.responding) {
                        error = -EHOSTDOWN;
                        message = "slurmctld does not respond to slurmrestd's ping";
                }
                ((slurm_ping_handler_t) q->callback)(r, error, error ? NULL : &p, error ? message : NULL, q->userdata);
                break;
        }
        case REQUEST_PARTITIONS: {
                SlurmPartition *p = NULL;
                size_t n = 0;
                if (error == 0 && (k = slurm_partitions_from_json(answer, &p, &n)) < 0) {
                        error = k;
                        message = "slurmrestd's partitions answer is malformed";
                }
                ((slurm_partitions_handler_t) q->callback)(r, error, p, n, error ? message : NULL, q->userdata);
                slurm_partitions_free(p, n);
                break;
        }
        case REQUEST_NODES: {
                _cleanup_(json_object_putp) json_object *nodes = NULL;
                if (error == 0 && (k = slurm_nodes_from_json(answer, &nodes)) < 0) {
                        error = k;
                        message = "slurmrestd's nodes answer is malformed";
                }
                ((slurm_nodes_handler_t) q->callback)(r, error, nodes, error ? message : NULL, q->userdata);
                break;
        }
        }
        request_free(q);
}

static int request_new(SlurmRest *r, RequestKind kind, const char *method, const char *user, char *path,
                       char *body, void *callback, void *userdata, SlurmRestRequest **ret) {
        _cleanup_free_ char *p = path, *b = body;
        SlurmRestRequest *q;
        int k;

        if (!path)
                return -ENOMEM;
        if (!callback || !user || !*user)
                return -EINVAL;
        /* Never act as root: a root token runs the job as root on the cluster. */
        if (streq(user, "root"))
                return -EPERM;

        q = calloc(1, sizeof(SlurmRestRequest));
        if (!q)
                return -ENOMEM;
        q->rest = r;
        q->kind = kind;
        q->path = TAKE_PTR(p);
        q->body = TAKE_PTR(b);
        q->user = strdup(user);
        q->method = strdup(method);
        q->callback = callback;
        q->userdata = userdata;
        q->answer_max = ANSWER_MAX;
        q->next = r->requests;
        if (r->requests)
                r->requests->prev = q;
        r->requests = q;
        if (!q->user || !q->method) {
                request_free(q);
                return -ENOMEM;
        }
        k = request_start(q);
        if (k < 0) {
                request_free(q);
                return k;
        }
        if (ret)
                *ret = q;
        return 0;
}

static char *path_printf(const char *fmt, ...) _printf_(1, 2);
static char *path_printf(const char *fmt, ...) {
        va_list ap;
        char *s;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&s, fmt, ap);
        va_end(ap);
        return k < 0 ? NULL : s;
}

int slurm_rest_submit(SlurmRest *r, const char *user, const SlurmJobDesc *desc, slurm_submit_handler_t cb,
                      void *userdata, SlurmRestRequest **ret_request) {
        _cleanup_(json_object_putp) json_object *body = NULL;
        const char *text;
        char *copy;
        int k;

        k = slurm_submit_body(desc, &body);
        if (k < 0)
                return k;
        text = json_text(body);
        copy = text ? strdup(text) : NULL;
        if (!copy)
                return -ENOMEM;
        return request_new(r, REQUEST_SUBMIT, "POST", user, strdup("/job/submit"), copy, (void *) cb, userdata,
                           ret_request);
}

int slurm_rest_job(SlurmRest *r, const char *user, uint32_t job_id, slurm_job_handler_t cb, void *userdata,
                   SlurmRestRequest **ret_request) {
        return request_new(r, REQUEST_JOB, "GET", user, path_printf("/job/%" PRIu32, job_id), NULL, (void *) cb,
                           userdata, ret_request);
}

int slurm_rest_cancel(SlurmRest *r, const char *user, uint32_t job_id, slurm_done_handler_t cb, void *userdata,
                      SlurmRestRequest **ret_request) {
        return request_new(r, REQUEST_CANCEL, "DELETE", user, path_printf("/job/%" PRIu32, job_id), NULL,
                           (void *) cb, userdata, ret_request);
}

int slurm_rest_ping(SlurmRest *r, slurm_ping_handler_t cb, void *userdata, SlurmRestRequest **ret_request) {
        return request_new(r, REQUEST_PING, "GET", r->ping_user, strdup("/ping"), NULL, (void *) cb, userdata,
                           ret_request);
}

int slurm_rest_partitions(SlurmRest *r, slurm_partitions_handler_t cb, void *userdata,
                          SlurmRestRequest **ret_request) {
        return request_new(r, REQUEST_PARTITIONS, "GET", r->ping_user, strdup("/partitions"), NULL, (void *) cb,
                           userdata, ret_request);
}

int slurm_rest_nodes(SlurmRest *r, slurm_nodes_handler_t cb, void *userdata, SlurmRestRequest **ret_request) {
        return request_new(r, REQUEST_NODES, "GET", r->ping_user, strdup("/nodes"), NULL, (void *) cb, userdata,
                           ret_request);
}

int slurm_rest_find_job(SlurmRest *r, const char *user, const char *name, slurm_job_handler_t cb, void *userdata,
                        SlurmRestRequest **ret_request) {
        SlurmRestRequest *q = NULL;
        char *copy;
        int k;

        if (!name || !*name)
                return -EINVAL;
        copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        k = request_new(r, REQUEST_FIND, "GET", user, strdup("/jobs"), NULL, (void *) cb, userdata, &q);
        if (k < 0) {
                free(copy);
                return k;
        }
        q->find_name = copy;
        q->answer_max = JOBS_ANSWER_MAX;
        if (ret_request)
                *ret_request = q;
        return 0;
}
