/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool-layout.h"
#include "http-api.h"
#include "http-auth.h"
#include "http-jobs.h"
#include "job-registry.h"
#include "log.h"
#include "manager.h"
#include "polkit.h"

#define ACTION_SUBMIT_JOB "org.gatewayd.submit-job"
#define ACTION_MANAGE_JOBS "org.gatewayd.manage-jobs"
#define LIST_LIMIT_DEFAULT 100
#define LIST_LIMIT_MAX 1000

/* ---- finding a job for the caller ---- */

typedef struct JobLookup {
        char *id;
        char *service;
        HttpJobHandler next;
        bool planqk;
} JobLookup;

static void job_lookup_free(void *p) {
        JobLookup *l = p;

        if (!l)
                return;
        free(l->id);
        free(l->service);
        free(l);
}

static void reply_no_such_job(HttpRequest *req, const char *id) {
        http_request_reply_errorf(req, GW_ERROR_NO_SUCH_JOB, "No job '%s'.", id);
}

static Job *job_lookup_find(HttpRequest *req, JobLookup *l) {
        Job *j = job_registry_get(req->manager, l->id);

        if (j && l->service && !streq(j->service, l->service))
                return NULL;
        return j;
}

static void on_manage_jobs_checked(int r, const char *message, void *userdata) {
        HttpRequest *req = userdata;
        JobLookup *l = req->userdata;
        Job *j = job_lookup_find(req, l);

        if (r > 0 && j)
                l->next(req, j);
        else if (r == -ESHUTDOWN)
                http_request_reply_errorf(req, GW_ERROR_UNAVAILABLE, "%s", message);
        else
                reply_no_such_job(req, l->id);   /* not yours: it does not exist for you */
}

void http_with_job(HttpRequest *req, const char *id, const char *service, HttpJobHandler next) {
        const Caller *c = http_request_caller(req);
        JobLookup *l;
        Job *j;
        int r;

        l = calloc(1, sizeof(JobLookup));
        if (!l || !(l->id = strdup(id)) || (service && !(l->service = strdup(service)))) {
                job_lookup_free(l);
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        }
        l->next = next;
        req->userdata = l;
        req->free_userdata = job_lookup_free;

        j = job_lookup_find(req, l);
        if (!j)
                return reply_no_such_job(req, id);
        if (job_is_visible_to(j, c))
                return next(req, j);

        r = polkit_check(req->manager, c, ACTION_MANAGE_JOBS, false, on_manage_jobs_checked, req);
        if (r == 0)
                return http_request_suspend(req);
        if (r > 0)
                return next(req, j);
        reply_no_such_job(req, id);
}

int http_query_bool(HttpRequest *req, const char *key, bool *ret) {
        const char *v = http_request_query(req, key);

        if (!v || streq(v, "false") || streq(v, "0") || streq(v, "no")) {
                *ret = false;
                return 0;
        }
        if (streq(v, "true") || streq(v, "1") || streq(v, "yes") || streq(v, "")) {
                *ret = true;
                return 0;
        }
        http_request_reply_errorf(req, GW_ERROR_INVALID_ARGUMENT, "Query parameter %s: expected true or false, got '%s'.", key, v);
        return -EINVAL;
}

/* ---- submitting ---- */

typedef struct SubmitContext {
        char *service;
        bool planqk;
} SubmitContext;

static void submit_context_free(void *p) {
        SubmitContext *s = p;

        if (s) {
                free(s->service);
                free(s);
        }
}

int job_submission_parse(json_object *body, json_object **ret_data, json_object **ret_params, GwError *e) {
        json_object *data = NULL, *params = NULL;

        if (!json_object_is_type(body, json_type_object))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                    "Request body must be a JSON object {\"data\": ..., \"params\": ...}.");
        json_object_object_foreach(body, k, v) {
                if (streq(k, "data"))
                        data = v;
                else if (streq(k, "params"))
                        params = v;
                else
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                            "%s: unknown key (expected \"data\" and \"params\").", k);
        }
        *ret_data = data;
        *ret_params = params;
        return 0;
}

/* The job's row is durable (or could not be stored): now the client may hear of it. */
static void submit_committed(Manager *m, Job *j, const GwError *error, void *userdata) {
        _cleanup_free_ char *location = NULL;
        HttpRequest *req = userdata;
        SubmitContext *sc = req->userdata;
        int r;

        if (!j)
                return http_request_reply_error(req, error);
        if (sc->planqk) {
                http_request_reply_json(req, MHD_HTTP_CREATED, job_to_planqk_json(j));
                r = asprintf(&location, "/planqk/%s/%s", j->service, j->id);
        } else {
                http_request_reply_json(req, MHD_HTTP_CREATED, job_to_json(j));
                r = asprintf(&location, "/v1/jobs/%s", j->id);
        }
        if (r >= 0)
                http_request_add_header(req, MHD_HTTP_HEADER_LOCATION, location);
}

static void submit_authorized(HttpRequest *req) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        SubmitContext *sc = req->userdata;
        json_object *body, *data = NULL, *params = NULL;
        int r;

        body = http_request_json_body(req);
        if (!body)
                return;
        if (job_submission_parse(body, &data, &params, &e) < 0) {
                json_object_put(body);
                return http_request_reply_error(req, &e);
        }

        /* Answered from the group commit; a suspended request outlives it (shutdown commits the
         * batch before it answers what is still suspended). */
        r = job_registry_submit_async(req->manager, http_request_caller(req), sc->service, data, params,
                                      submit_committed, req, &e);
        json_object_put(body);
        if (r < 0)
                return http_request_reply_error(req, &e);
        http_request_suspend(req);
}

void http_submit_job(HttpRequest *req, const char *service, bool planqk) {
        SubmitContext *sc = calloc(1, sizeof(SubmitContext));

        if (!sc || !(sc->service = strdup(service))) {
                free(sc);
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        }
        sc->planqk = planqk;
        req->userdata = sc;
        req->free_userdata = submit_context_free;
        /* Unknown services are refused before polkit is bothered. */
        if (!hashmap_get(req->manager->services, service))
                return http_request_reply_errorf(req, GW_ERROR_NO_SUCH_SERVICE, "No service '%s'.", service);
        http_request_authorize(req, ACTION_SUBMIT_JOB, submit_authorized);
}

void http_submit_service_job(HttpRequest *req, char **captures) {
        http_submit_job(req, captures[0], false);
}

/* ---- listing ---- */

static int query_uint(HttpRequest *req, const char *key, uint64_t def, uint64_t max, uint64_t *ret) {
        const char *v = http_request_query(req, key);
        char *end;
        unsigned long long n;

        if (!v) {
                *ret = def;
                return 0;
        }
        errno = 0;
        n = strtoull(v, &end, 10);
        if (errno != 0 || end == v || *end != 0 || v[0] == '-' || n > max) {
                http_request_reply_errorf(req, GW_ERROR_INVALID_ARGUMENT,
                                          "Query parameter %s: expected an integer from 0 to %llu, got '%s'.",
                                          key, (unsigned long long) max, v);
                return -EINVAL;
        }
        *ret = n;
        return 0;
}

static void list_jobs(HttpRequest *req, bool all) {
        _cleanup_free_ Job **l = NULL;
        const Caller *c = http_request_caller(req);
        JobFilter f = { .all_users = all, .uid = c->uid, .subject = c->subject, .state = _JOB_STATE_INVALID };
        const char *status = http_request_query(req, "status");
        uint64_t limit, offset, cursor;
        json_object *o, *a;
        size_t n, i;

        if (query_uint(req, "limit", LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, &limit) < 0 ||
            query_uint(req, "offset", 0, INT64_MAX, &offset) < 0 ||
            query_uint(req, "cursor", 0, INT64_MAX, &cursor) < 0)
                return;
        if (status) {
                f.state = job_state_from_string(status);
                if (f.state < 0)
                        return http_request_reply_errorf(req, GW_ERROR_INVALID_ARGUMENT,
                                                         "Query parameter status: unknown job status '%s'.", status);
        }
        f.service = http_request_query(req, "service");
        f.after_seq = (int64_t) cursor;

        l = job_registry_list(req->manager, &f, &n);
        if (!l)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        a = json_object_new_array();
        for (i = (size_t) MIN(offset, (uint64_t) n); i < n && json_object_array_length(a) < limit; i++)
                json_object_array_add(a, job_to_json(l[i]));

        o = json_object_new_object();
        json_object_object_add(o, "jobs", a);
        json_object_object_add(o, "total", json_object_new_int64((int64_t) n));
        /* The cursor is the last job's submission number: stable while jobs are added. */
        if (i < n && i > 0) {
                char buf[32];
                snprintf(buf, sizeof(buf), "%lld", (long long) l[i - 1]->seq);
                json_object_object_add(o, "nextCursor", json_object_new_string(buf));
        } else
                json_object_object_add(o, "nextCursor", NULL);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

static void list_all_jobs_authorized(HttpRequest *req) {
        list_jobs(req, true);
}

void http_list_jobs(HttpRequest *req, char **captures) {
        bool all;

        if (http_query_bool(req, "all", &all) < 0)
                return;
        if (all)
                return http_request_authorize(req, ACTION_MANAGE_JOBS, list_all_jobs_authorized);
        list_jobs(req, false);
}

/* ---- one job ---- */

static void get_job_found(HttpRequest *req, Job *j) {
        http_request_reply_json(req, MHD_HTTP_OK, job_to_json(j));
}

void http_get_job(HttpRequest *req, char **captures) {
        http_with_job(req, captures[0], NULL, get_job_found);
}

void http_reply_job_result(HttpRequest *req, Job *j) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        json_object *o = NULL;

        if (job_result_json(j, &o, &e) < 0)
                return http_request_reply_error(req, &e);
        if (!o)
                return http_request_reply_text(req, MHD_HTTP_OK, "null");
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

void http_get_job_result(HttpRequest *req, char **captures) {
        http_with_job(req, captures[0], NULL, http_reply_job_result);
}

void http_reply_job_interim(HttpRequest *req, Job *j) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        json_object *o = NULL;
        bool last;

        if (http_query_bool(req, "last", &last) < 0)
                return;
        if (job_interim_json(j, last, &o, &e) < 0)
                return http_request_reply_error(req, &e);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

void http_get_job_interim_results(HttpRequest *req, char **captures) {
        http_with_job(req, captures[0], NULL, http_reply_job_interim);
}

static void cancel_found(HttpRequest *req, Job *j) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;

        if (job_registry_cancel(j, &e) < 0 && gw_error_is_set(&e))
                return http_request_reply_error(req, &e);
        http_request_reply_json(req, MHD_HTTP_OK, job_to_json(j));
}

void http_cancel_job(HttpRequest *req, char **captures) {
        http_with_job(req, captures[0], NULL, cancel_found);
}

static void remove_found(HttpRequest *req, Job *j) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;

        if (job_registry_remove(j, &e) < 0)
                return http_request_reply_error(req, &e);
        http_request_reply_empty(req, MHD_HTTP_NO_CONTENT);
}

/* The owner and root remove at once; an admin through polkit's manage-jobs (as http_with_job()
 * finds someone else's job); for everybody else the job does not exist. */
void http_remove_job(HttpRequest *req, char **captures) {
        http_with_job(req, captures[0], NULL, remove_found);
}

/* ---- the log, optionally followed ---- */

/* A follower copies what the worker appended to the log into the HTTP stream whenever the job
 * reports a change, and once a second besides (re-attached jobs have no event pipe). It ends the
 * stream after the job has ended and everything is sent, or when the client has gone. */
typedef struct LogFollow {
        Manager *manager;
        HttpStream *stream;
        char *job_id;
        char *path;
        uint64_t offset;
        int fd;
        sd_event_source *timer;
} LogFollow;

static void log_follow_free(void *userdata) {
        LogFollow *f = userdata;

        if (!f)
                return;
        sd_event_source_disable_unref(f->timer);
        http_stream_unref(f->stream);
        safe_close(f->fd);
        free(f->job_id);
        free(f->path);
        free(f);
}

static void log_follow_pump(void *userdata);

static void log_follow_end(LogFollow *f) {
        Job *j = job_registry_get(f->manager, f->job_id);

        if (!http_stream_is_closed(f->stream))
                http_stream_finish(f->stream);
        if (j)
                job_watch_remove(j, log_follow_pump, f);  /* frees f */
        else
                log_follow_free(f);
}

/* Copies new log bytes; returns how many, or < 0 when the stream is gone. */
static ssize_t log_follow_copy(LogFollow *f) {
        char buf[65536];
        ssize_t n, total = 0;

        if (f->fd < 0)
                f->fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (f->fd < 0)
                return 0;
        while ((n = pread(f->fd, buf, sizeof(buf), (off_t) f->offset)) > 0) {
                if (http_stream_write(f->stream, buf, (size_t) n) < 0)
                        return -EPIPE;
                f->offset += (uint64_t) n;
                total += n;
        }
        return total;
}

static void log_follow_pump(void *userdata) {
        LogFollow *f = userdata;
        Job *j = job_registry_get(f->manager, f->job_id);
        bool ended = !j || job_state_is_terminal(j->state);

        if (http_stream_is_closed(f->stream) || log_follow_copy(f) < 0)
                return log_follow_end(f);
        /* Ended before the copy, so the copy got everything the worker wrote. */
        if (ended)
                return log_follow_end(f);
}

static int on_log_follow_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        LogFollow *f = userdata;

        (void) sd_event_source_set_time_relative(s, USEC_PER_SEC);
        log_follow_pump(f);   /* may free f and with it s; it was re-armed before */
        return 0;
}

static void get_log_found(HttpRequest *req, Job *j) {
        _cleanup_free_ char *path = NULL, *buf = NULL;
        _cleanup_close_ int fd = -1;
        uint64_t offset;
        bool follow;
        LogFollow *f;
        struct stat st;
        ssize_t n;
        int r;

        if (query_uint(req, "offset", 0, INT64_MAX, &offset) < 0 || http_query_bool(req, "follow", &follow) < 0)
                return;
        if (!(path = spool_path(j->spool_dir, SPOOL_LOG)))
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");

        if (!follow) {
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0 && errno == ENOENT)
                        return http_request_reply_data(req, MHD_HTTP_OK, "text/plain; charset=utf-8", "", 0);
                if (fd < 0 || fstat(fd, &st) < 0)
                        return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Cannot read the log: %m");
                if ((uint64_t) st.st_size <= offset)
                        return http_request_reply_data(req, MHD_HTTP_OK, "text/plain; charset=utf-8", "", 0);
                buf = malloc((size_t) st.st_size - offset);
                if (!buf)
                        return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
                n = pread(fd, buf, (size_t) st.st_size - offset, (off_t) offset);
                if (n < 0)
                        return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Cannot read the log: %m");
                return http_request_reply_data(req, MHD_HTTP_OK, "text/plain; charset=utf-8", buf, (size_t) n);
        }

        f = calloc(1, sizeof(LogFollow));
        if (!f)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        *f = (LogFollow) { .manager = req->manager, .offset = offset, .fd = -1, .path = TAKE_PTR(path) };
        f->job_id = strdup(j->id);
        r = f->job_id ? sd_event_add_time_relative(req->manager->event, &f->timer, CLOCK_MONOTONIC, USEC_PER_SEC, 0,
                                                   on_log_follow_timer, f) : -ENOMEM;
        if (r >= 0)
                r = sd_event_source_set_enabled(f->timer, SD_EVENT_ON);
        if (r >= 0)
                r = job_watch_add(j, log_follow_pump, log_follow_free, f);
        if (r < 0) {
                log_follow_free(f);
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Cannot follow the log: %s", strerror(-r));
        }
        f->stream = http_request_reply_stream(req, "text/plain; charset=utf-8");
        if (!f->stream) {
                job_watch_remove(j, log_follow_pump, f);
                return;
        }
        log_follow_pump(f);
}

void http_get_job_log(HttpRequest *req, char **captures) {
        http_with_job(req, captures[0], NULL, get_log_found);
}
