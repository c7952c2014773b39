/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The serverless gateway's API under /api/v1/ (docs/openapi-serverless.yaml, docs/programs.md), so
 * that the qiskit-serverless client and scripts written for it work against gatewayd. It is a
 * view of the program and job registries: programs are the caller's own and those of the providers
 * the caller belongs to (program_registry_lookup()), jobs are program jobs with the same ids as on /v1/jobs, limits are the registry's. Errors are
 * {"message": …} (http-server.c does that for every reply under /api/v1/). */
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "http-api.h"
#include "form-upload.h"
#include "http-auth.h"
#include "http-form.h"
#include "http-serverless.h"
#include "job-registry.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "multipart.h"
#include "program-provider.h"
#include "program-registry.h"
#include "service.h"
#include "spool-layout.h"

#define ACTION_SUBMIT_JOB "org.gatewayd.submit-job"
#define JOBS_PAGE_SIZE 10               /* the gateway's REST_FRAMEWORK PAGE_SIZE */
#define JOBS_PAGE_MAX 1000
#define RESULT_MAX (16U * 1024 * 1024)
#define LOG_MAX (16U * 1024 * 1024)     /* the newest part of a longer log */
#define FORM_ARTIFACT_FIELD "artifact"

/* ---- shapes ---- */

/* The gateway's statuses: it has no UNKNOWN (Ray's other states become FAILED) and calls a
 * cancelled job STOPPED. */
static const char *serverless_status(JobState s) {
        switch (s) {
        case JOB_QUEUED:    return "QUEUED";
        case JOB_PENDING:   return "PENDING";
        case JOB_RUNNING:   return "RUNNING";
        case JOB_SUCCEEDED: return "SUCCEEDED";
        case JOB_CANCELLED: return "STOPPED";
        default:            return "FAILED";
        }
}

static json_object *json_string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

/* env_vars and dependencies are text fields holding JSON there. */
static json_object *json_as_text(json_object *o, const char *empty) {
        return json_object_new_string(o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : empty);
}

/* A program as the gateway's program serializers show it. */
static json_object *program_json(const Program *p) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_string(p->id));
        json_object_object_add(o, "title", json_object_new_string(p->title));
        json_object_object_add(o, "entrypoint", json_string_or_null(p->entrypoint));
        json_object_object_add(o, "artifact", NULL);    /* only its squashfs is kept */
        json_object_object_add(o, "image", json_string_or_null(p->image));
        json_object_object_add(o, "dependencies", json_as_text(p->dependencies, "[]"));
        json_object_object_add(o, "env_vars", json_as_text(p->env, "{}"));
        json_object_object_add(o, "provider", json_string_or_null(p->provider));
        json_object_object_add(o, "description", json_string_or_null(p->description));
        json_object_object_add(o, "documentation_url", NULL);
        json_object_object_add(o, "type", json_object_new_string("GENERIC"));
        json_object_object_add(o, "version", json_string_or_null(p->version));
        return o;
}

static json_object *timestamp_json(uint64_t usec) {
        char buf[64];

        return usec ? json_object_new_string(format_timestamp_iso(buf, sizeof(buf), usec)) : NULL;
}

/* {id, title, provider}: the program of a job, also when it has been removed since. */
static json_object *job_program_json(const Job *j) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_string(j->program_id));
        json_object_object_add(o, "title", json_object_new_string(j->program ?: ""));
        json_object_object_add(o, "provider", json_string_or_null(j->program_provider));
        return o;
}

/* The result as a string of JSON text, or NULL: only a finished job's is complete, and a job
 * that printed none has "null" (the worker writes it atomically). */
static json_object *job_result_text(const Job *j) {
        _cleanup_free_ char *buf = NULL;
        size_t n;

        if (!job_state_is_terminal(j->state) || job_read_spool_file(j, SPOOL_RESULT, RESULT_MAX, &buf, &n) < 0)
                return NULL;
        while (n > 0 && strchr(" \t\r\n", buf[n - 1]))
                buf[--n] = 0;
        if (n == 0 || streq(buf, "null"))
                return NULL;
        return json_object_new_string_len(buf, (int) n);
}

static json_object *job_json(const Job *j, bool with_result) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_string(j->id));
        if (with_result)
                json_object_object_add(o, "result", job_result_text(j));
        json_object_object_add(o, "status", json_object_new_string(serverless_status(j->state)));
        json_object_object_add(o, "program", job_program_json(j));
        json_object_object_add(o, "created", timestamp_json(j->created_usec));
        json_object_object_add(o, "sub_status", NULL);
        json_object_object_add(o, "compute_profile", NULL);
        return o;
}

static void reply_message(HttpRequest *req, unsigned status, const char *message) {
        json_object *o = json_object_new_object();

        if (o)
                json_object_object_add(o, "message", json_object_new_string(message));
        http_request_reply_json(req, status, o);
}

static void reply_no_such_program(HttpRequest *req, const char *title) {
        http_request_reply_errorf(req, GW_ERROR_NOT_FOUND, "Qiskit Function [%s] doesn't exist.", title);
}

/* The caller's job, if it is a program's: anyone else's does not exist for them. */
static Job *find_job(HttpRequest *req, const char *id) {
        Job *j = job_registry_get(req->manager, id);

        if (!j || !j->program_id || !job_is_visible_to(j, http_request_caller(req))) {
                http_request_reply_errorf(req, GW_ERROR_NO_SUCH_JOB, "Job [%s] was not found.", id);
                return NULL;
        }
        return j;
}

/* ---- programs ---- */

/* Whether a program (or a job's program) passes the filters: "serverless" is the caller's own,
 * "catalog" providers' (those the caller belongs to), provider=P is P's. */
static bool provider_filter_matches(const char *filter, const char *provider, const char *program_provider) {
        if (filter && streq(filter, "serverless") && program_provider)
                return false;
        if (filter && streq(filter, "catalog") && !program_provider)
                return false;
        return !provider || !provider[0] || (program_provider && streq(program_provider, provider));
}

void http_serverless_list_programs(HttpRequest *req, char **captures) {
        const char *filter = http_request_query(req, "filter"), *provider = http_request_query(req, "provider");
        _cleanup_free_ Program **l = program_registry_list(req->manager, http_request_caller(req), NULL);
        json_object *a = json_object_new_array();

        if (!l || !a) {
                json_object_put(a);
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        }
        for (Program **p = l; *p; p++)
                if (provider_filter_matches(filter, provider, (*p)->provider))
                        json_object_array_add(a, program_json(*p));
        http_request_reply_json(req, MHD_HTTP_OK, a);
}

void http_serverless_get_program_by_title(HttpRequest *req, char **captures) {
        const char *provider = http_request_query(req, "provider");
        Program *p;

        p = program_registry_lookup(req->manager, http_request_caller(req), provider && provider[0] ? provider : NULL, captures[0]);
        if (!p)
                return reply_no_such_program(req, captures[0]);
        http_request_reply_json(req, MHD_HTTP_OK, program_json(p));
}

/* The gateway's "provider/title" convention: a title may name its provider, unless the provider
 * is given on its own too; one slash at most. Returns the provider (NULL: none), or sets e. */
static int title_and_provider(const char *title, const char *provider, char **ret_title, char **ret_provider, GwError *e) {
        const char *slash = strchr(title, '/');

        *ret_provider = NULL;
        if (slash && provider && provider[0])
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "Provider defined in title and in provider fields.");
        if (slash && strchr(slash + 1, '/'))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "Qiskit Function title is malformed. It can only contain one slash.");
        if (slash == title || (slash && !slash[1]))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "Qiskit Function title is malformed: \"provider/title\" with both.");
        if (slash) {
                *ret_provider = strndup(title, (size_t) (slash - title));
                *ret_title = strdup(slash + 1);
        } else {
                *ret_provider = provider && provider[0] ? strdup(provider) : NULL;
                *ret_title = strdup(title);
        }
        if (!*ret_title || (!*ret_provider && (slash || (provider && provider[0]))))
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        /* a name no configuration can have is no provider's */
        if (*ret_provider && !config_program_provider_name_is_valid(*ret_provider))
                return gw_error_set(e, GW_ERROR_NOT_FOUND, "Provider [%s] was not found.", *ret_provider);
        return 0;
}

/* ---- upload: multipart/form-data, the artifact a file part ---- */

/* The form was parsed as it arrived (HTTP_ROUTE_BODY_FORM): its file part is the body file. */
static int upload_form(HttpRequest *req, GwError *e) {
        _cleanup_free_ char *boundary = NULL;
        int r;

        if (!req->form) {
                r = multipart_boundary_from_content_type(http_request_header(req, MHD_HTTP_HEADER_CONTENT_TYPE), &boundary);
                if (r == -EMEDIUMTYPE)
                        return gw_error_set(e, GW_ERROR_UNSUPPORTED_MEDIA_TYPE, "The upload must be multipart/form-data.");
                if (r == -ENOMEM)
                        return gw_error_set_errno(e, r, "Out of memory.");
                return gw_error_set(e, GW_ERROR_BAD_REQUEST, "The multipart/form-data Content-Type has no valid boundary.");
        }
        r = form_upload_finish(req->form);
        if (r == -ENOMEM)
                return gw_error_set_errno(e, r, "Out of memory.");
        if (r == -ENOSPC || r == -EDQUOT)
                return gw_error_set(e, GW_ERROR_INSUFFICIENT_STORAGE, "No space left for the artifact.");
        if (r == -EBADMSG)
                return gw_error_set(e, GW_ERROR_BAD_REQUEST, "%s", form_upload_error(req->form));
        if (r < 0)
                return gw_error_set_errno(e, r, "Cannot store the artifact: %s", strerror(-r));
        return 0;
}

/* The gateway's dependencies are requirement strings or {"name": "version"} objects. */
static int dependencies_from_text(const char *text, json_object **ret, GwError *e) {
        _cleanup_(json_object_putp) json_object *in = NULL, *out = NULL;
        int r;

        r = http_json_text_parse("dependencies", text, &in, e);
        if (r < 0)
                return r;
        if (!json_object_is_type(in, json_type_array))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                    "'dependencies' should be an array of strings or objects: "
                                    "`['pendulum==3.0.0', '...'] or [{'pendulum':'3.0.0'}, {...}]`");
        out = json_object_new_array();
        for (size_t i = 0; out && i < json_object_array_length(in); i++) {
                json_object *d = json_object_array_get_idx(in, i);
                _cleanup_free_ char *s = NULL;

                if (json_object_is_type(d, json_type_object) && json_object_object_length(d) == 1) {
                        json_object_object_foreach(d, k, v) {
                                const char *ver = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
                                if (!ver)
                                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                                            "'dependencies': the version of '%s' must be a string.", k);
                                if (asprintf(&s, "%s%s%s", k, ver[0] >= '0' && ver[0] <= '9' ? "==" : "", ver) < 0)
                                        s = NULL;
                        }
                } else if (json_object_is_type(d, json_type_string))
                        s = strdup(json_object_get_string(d));
                else
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT,
                                            "'dependencies' should be an array with strings or dict containing one dependency only.");
                if (!s)
                        return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
                json_object_array_add(out, json_object_new_string(s));
        }
        if (!out)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        *ret = TAKE_PTR(out);
        return 0;
}

static int json_field(json_object *fields, const char *field, const char *key, json_object *meta, GwError *e) {
        const char *v = json_get_string(fields, field);
        json_object *o;
        int r;

        if (!v || !v[0])
                return 0;
        r = http_json_text_parse(field, v, &o, e);
        if (r < 0)
                return r;
        json_object_object_add(meta, key, o);
        return 0;
}

/* The form's fields as the native upload's metadata (program_from_metadata() checks them). */
int serverless_upload_metadata(json_object *fields, Program **ret, GwError *e) {
        static const char * const text_keys[] = { "title", "entrypoint", "description", "version", "image" };
        _cleanup_(json_object_putp) json_object *meta = json_object_new_object();
        const char *provider = json_get_string(fields, "provider");
        const char *deps = json_get_string(fields, "dependencies");
        _cleanup_free_ char *title = NULL, *provider_name = NULL;
        json_object *d = NULL;
        int r;

        if (!meta)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        /* "provider/title" or title + provider: a provider's program (only its admins may upload) */
        if (json_get_string(fields, "title")) {
                r = title_and_provider(json_get_string(fields, "title"), provider, &title, &provider_name, e);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(text_keys); i++) {
                const char *v = streq(text_keys[i], "title") ? title : json_get_string(fields, text_keys[i]);
                if (v && (v[0] || streq(text_keys[i], "title")))
                        json_object_object_add(meta, text_keys[i], json_object_new_string(v));
        }
        r = json_field(fields, "arguments", "arguments", meta, e);
        if (r >= 0)
                r = json_field(fields, "env_vars", "env", meta, e);
        if (r >= 0 && deps && deps[0]) {
                r = dependencies_from_text(deps, &d, e);
                if (r >= 0)
                        json_object_object_add(meta, "dependencies", d);
        }
        if (r < 0)
                return r;
        r = program_from_metadata(meta, ret, e);
        if (r >= 0)
                (*ret)->provider = TAKE_PTR(provider_name);
        return r;
}

static void on_uploaded(Manager *m, Program *p, const GwError *error, void *userdata) {
        HttpRequest *req = userdata;

        if (!p)
                return http_request_reply_error(req, error);
        http_request_reply_json(req, MHD_HTTP_OK, program_json(p));
}

static void free_program(void *p) {
        program_free(p);
}

static void upload_authorized(HttpRequest *req) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Program *meta = TAKE_PTR(req->userdata);
        int r;

        /* The registry has the Program; the request stays suspended until the callback answers. */
        req->free_userdata = NULL;
        /* As the gateway does: an upload of a title the caller has updates that program. */
        r = program_registry_upload(req->manager, http_request_caller(req), meta, req->body_path, /* replace= */ true,
                                    on_uploaded, req, &e);
        if (r < 0)
                return http_request_reply_error(req, &e);   /* the body file is still ours: removed */
        req->body_path = mfree(req->body_path);             /* the registry has it now */
        http_request_suspend(req);
}

/* The client uploads a program on an image of its own as an application/x-www-form-urlencoded
 * form (requests' data= without files=): its fields, from the body file, bounded as a
 * multipart form's text fields are. */
static int upload_urlencoded_fields(HttpRequest *req, json_object **ret, GwError *e) {
        static const char * const keys[] = { "title", "entrypoint", "image", "provider", "arguments", "env_vars",
                                              "dependencies", "description", "version" };
        _cleanup_(json_object_putp) json_object *fields = NULL;
        _cleanup_free_ char *body = NULL;
        _cleanup_close_ int fd = -1;
        ssize_t n;

        if (req->body_size > FORM_FIELDS_TOTAL_MAX)
                return gw_error_set(e, GW_ERROR_PAYLOAD_TOO_LARGE, "The form's fields exceed %u bytes.", FORM_FIELDS_TOTAL_MAX);
        fd = open(req->body_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        body = malloc(req->body_size + 1);
        fields = json_object_new_object();
        if (fd < 0 || !body || !fields)
                return gw_error_set_errno(e, fd < 0 ? -errno : -ENOMEM, "Cannot read the form.");
        n = pread(fd, body, req->body_size, 0);
        if (n != (ssize_t) req->body_size)
                return gw_error_set_errno(e, n < 0 ? -errno : -EIO, "Cannot read the form.");
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_free_ char *v = NULL;
                int r = form_get(body, (size_t) n, keys[i], &v);

                if (r == -ENOENT)
                        continue;
                if (r == -ENOMEM)
                        return gw_error_set_errno(e, r, "Out of memory.");
                if (r < 0)
                        return gw_error_set(e, GW_ERROR_BAD_REQUEST, "The form is malformed (at '%s').", keys[i]);
                json_object_object_add(fields, keys[i], json_object_new_string(v));
        }
        *ret = TAKE_PTR(fields);
        return 0;
}

void http_serverless_upload_program(HttpRequest *req, char **captures) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *urlencoded = NULL;
        _cleanup_(program_freep) Program *meta = NULL;
        const char *file = NULL;

        if (!req->body_path || req->body_size == 0)
                return http_request_reply_errorf(req, GW_ERROR_BAD_REQUEST,
                                                 "The request body must be a multipart/form-data upload with an 'artifact' file.");
        if (!req->form && form_content_type_is_urlencoded(http_request_header(req, MHD_HTTP_HEADER_CONTENT_TYPE))) {
                if (upload_urlencoded_fields(req, &urlencoded, &e) < 0 || serverless_upload_metadata(urlencoded, &meta, &e) < 0)
                        return http_request_reply_error(req, &e);
        } else {
                if (upload_form(req, &e) < 0 || serverless_upload_metadata(form_upload_fields(req->form), &meta, &e) < 0)
                        return http_request_reply_error(req, &e);
                file = form_upload_file_field(req->form);
        }
        if (!file && !meta->image)
                return http_request_reply_errorf(req, GW_ERROR_BAD_REQUEST,
                                                 "A file should be uploaded: the form has no 'artifact' part.");
        if (file && !streq(file, FORM_ARTIFACT_FIELD))
                return http_request_reply_errorf(req, GW_ERROR_BAD_REQUEST,
                                                 "The form's file part must be 'artifact', not '%s'.", file);
        /* a provider's program: its admins only (403 for its users, 404 for everyone else) */
        if (program_provider_check_upload(req->manager, http_request_caller(req), meta->provider, &e) < 0)
                return http_request_reply_error(req, &e);
        if (!file) {
                /* a program on an image of its own: no artifact (upload_authorized() passes none) */
                (void) unlink(req->body_path);
                req->body_path = mfree(req->body_path);
        }
        req->userdata = TAKE_PTR(meta);
        req->free_userdata = free_program;
        http_request_authorize(req, ACTION_SUBMIT_JOB, upload_authorized);
}

/* ---- run ---- */

void serverless_run_request_free(ServerlessRunRequest *r) {
        if (!r)
                return;
        free(r->title);
        free(r->provider);
        json_object_put(r->arguments);
        free(r->arguments_text);
        free(r);
}

static void run_request_free(void *userdata) {
        serverless_run_request_free(userdata);
}

/* {"title", "provider", "arguments": "<JSON text>", "config": {…}, "compute_profile"}: config and
 * compute_profile size a Ray cluster there and mean nothing here. */
int serverless_run_body_parse(json_object *body, ServerlessRunRequest *rr, GwError *e) {
        json_object *title, *args, *provider;
        int r;

        if (!json_object_is_type(body, json_type_object))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "The request body must be a JSON object.");
        title = json_get_typed(body, "title", json_type_string);
        if (!title || json_object_get_string_len(title) == 0)
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "title: This field is required.");
        provider = json_get_typed(body, "provider", json_type_string);
        r = title_and_provider(json_object_get_string(title), provider ? json_object_get_string(provider) : NULL,
                               &rr->title, &rr->provider, e);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(body, "arguments", &args) || json_object_is_type(args, json_type_null))
                return 0;
        if (json_object_is_type(args, json_type_string)) {
                r = http_json_text_parse("arguments", json_object_get_string(args), &rr->arguments, e);
                if (r < 0)
                        return r;
        } else
                rr->arguments = json_object_get(args);
        rr->arguments_text = strdup(json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN));
        if (json_object_is_type(args, json_type_string))
                free_and_strdup(&rr->arguments_text, json_object_get_string(args));
        if (!rr->arguments_text)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        if (!json_object_is_type(rr->arguments, json_type_object))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "arguments: expected a JSON object.");
        return 0;
}

static void run_committed(Manager *m, Job *j, const GwError *error, void *userdata) {
        HttpRequest *req = userdata;
        ServerlessRunRequest *rr = req->userdata;
        json_object *o;

        if (!j)
                return http_request_reply_error(req, error);
        o = json_object_new_object();
        if (o) {
                json_object_object_add(o, "id", json_object_new_string(j->id));
                json_object_object_add(o, "result", NULL);
                json_object_object_add(o, "status", json_object_new_string(serverless_status(j->state)));
                json_object_object_add(o, "program", json_object_new_string(j->program_id));
                json_object_object_add(o, "created", timestamp_json(j->created_usec));
                json_object_object_add(o, "arguments", json_object_new_string(rr->arguments_text ?: "{}"));
                json_object_object_add(o, "compute_profile", NULL);
        }
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

static void run_authorized(HttpRequest *req) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *arguments = NULL;
        ServerlessRunRequest *rr = req->userdata;
        Program *p = program_registry_lookup(req->manager, http_request_caller(req), rr->provider, rr->title);
        int r;

        if (!p)  /* removed while polkit was asked */
                return reply_no_such_program(req, rr->title);
        if (program_run_arguments(p, rr->arguments, NULL, &arguments, &e) < 0)
                return http_request_reply_error(req, &e);
        r = job_registry_submit_program_async(req->manager, http_request_caller(req), p, arguments, NULL,
                                              run_committed, req, &e);
        if (r < 0 && e.code == GW_ERROR_LIMIT_EXCEEDED) {
                /* the gateway's ActiveJobLimitExceeded */
                char message[128];
                snprintf(message, sizeof(message), "Active job limit reached. The maximum allowed is %u.",
                         req->manager->config->active_jobs_per_user);
                return reply_message(req, MHD_HTTP_TOO_MANY_REQUESTS, message);
        }
        if (r < 0)
                return http_request_reply_error(req, &e);
        http_request_suspend(req);
}

void http_serverless_run_program(HttpRequest *req, char **captures) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *body = NULL;
        ServerlessRunRequest *rr = calloc(1, sizeof(ServerlessRunRequest));

        if (!rr)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        req->userdata = rr;
        req->free_userdata = run_request_free;
        body = http_request_json_body(req);
        if (!body)
                return;
        if (serverless_run_body_parse(body, rr, &e) < 0)
                return http_request_reply_error(req, &e);
        if (!program_registry_lookup(req->manager, http_request_caller(req), rr->provider, rr->title)) {
                if (rr->provider)
                        return http_request_reply_errorf(req, GW_ERROR_NOT_FOUND, "Qiskit Function [%s/%s] doesn't exist.",
                                                         rr->provider, rr->title);
                return reply_no_such_program(req, rr->title);
        }
        http_request_authorize(req, ACTION_SUBMIT_JOB, run_authorized);
}

/* ---- jobs ---- */

/* ISO 8601 as Django reads it: DATE[(T| )HH:MM[:SS[.FFFFFF]]][Z|±HH[:]MM]; without a zone UTC. */
static int parse_iso8601(const char *s, uint64_t *ret) {
        struct tm tm = {};
        int y, mo, d, h = 0, mi = 0, sec = 0, n = 0, off = 0;
        long usec = 0;
        time_t t;

        if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
                return -EINVAL;
        s += n;
        if (*s == 'T' || *s == 't' || *s == ' ') {
                if (sscanf(s + 1, "%2d:%2d%n", &h, &mi, &n) != 2 || n != 5)
                        return -EINVAL;
                s += 1 + n;
                if (*s == ':') {
                        if (sscanf(s + 1, "%2d%n", &sec, &n) != 1 || n != 2)
                                return -EINVAL;
                        s += 1 + n;
                        if (*s == '.' || *s == ',') {
                                int digits = 0;
                                for (s++; *s >= '0' && *s <= '9'; s++, digits++)
                                        if (digits < 6)
                                                usec = usec * 10 + (*s - '0');
                                if (digits == 0)
                                        return -EINVAL;
                                for (; digits < 6; digits++)
                                        usec *= 10;
                        }
                }
                if (*s == 'Z' || *s == 'z')
                        s++;
                else if (*s == '+' || *s == '-') {
                        int oh, om = 0, sign = *s == '-' ? -1 : 1;
                        if (sscanf(s + 1, "%2d%n", &oh, &n) != 1 || n != 2)
                                return -EINVAL;
                        s += 1 + n;
                        if (*s == ':')
                                s++;
                        if (*s && (sscanf(s, "%2d%n", &om, &n) != 1 || n != 2))
                                return -EINVAL;
                        if (*s)
                                s += n;
                        if (oh > 23 || om > 59)
                                return -EINVAL;
                        off = sign * (oh * 3600 + om * 60);
                }
        }
        if (*s != 0 || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59)
                return -EINVAL;
        tm = (struct tm) { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec };
        t = timegm(&tm);
        if (t == (time_t) -1 || tm.tm_mday != d || (int64_t) t - off < 0)
                return -EINVAL;
        *ret = (uint64_t) ((int64_t) t - off) * USEC_PER_SEC + (uint64_t) usec;
        return 0;
}

static int query_count(HttpRequest *req, const char *key, uint64_t def, uint64_t *ret) {
        const char *v = http_request_query(req, key);
        char *end;
        unsigned long long n;

        *ret = def;
        if (!v || !v[0])
                return 0;
        errno = 0;
        n = strtoull(v, &end, 10);
        if (errno != 0 || *end != 0 || v[0] == '-' || v[0] == '+' || v[0] == ' ') {
                http_request_reply_errorf(req, GW_ERROR_INVALID_ARGUMENT, "%s: A valid integer is required.", key);
                return -EINVAL;
        }
        *ret = n;
        return 0;
}

/* The page's neighbour: this URL with limit and offset replaced (the filters kept). Absolute, as
 * the gateway's, from the Host the client used; relative if it sent none that is usable. */
static json_object *page_url(HttpRequest *req, uint64_t limit, uint64_t offset) {
        static const char * const keep[] = { "filter", "status", "created_after", "function", "provider" };
        const char *host = http_request_header(req, MHD_HTTP_HEADER_HOST);
        _cleanup_free_ char *url = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&url, &size);

        if (!f)
                return NULL;
        if (host && host[0] && strlen(host) < 256 && !strpbrk(host, "/?#@\\ \t\"<>") &&
            strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") == strlen(host))
                fprintf(f, "%s://%s", http_request_is_tls(req) ? "https" : "http", host);
        fprintf(f, "%s?limit=%llu&offset=%llu", req->url, (unsigned long long) limit, (unsigned long long) offset);
        for (size_t i = 0; i < ELEMENTSOF(keep); i++) {
                const char *v = http_request_query(req, keep[i]);
                if (!v)
                        continue;
                fprintf(f, "&%s=", keep[i]);
                for (const unsigned char *p = (const unsigned char *) v; *p; p++)
                        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-._~", *p))
                                fputc(*p, f);
                        else
                                fprintf(f, "%%%02X", *p);
        }
        if (fclose(f) != 0)
                return NULL;
        return json_object_new_string(url);
}

void http_serverless_list_jobs(HttpRequest *req, char **captures) {
        const Caller *c = http_request_caller(req);
        JobFilter jf = { .uid = c->uid, .subject = c->subject, .state = _JOB_STATE_INVALID };
        const char *status = http_request_query(req, "status"), *function = http_request_query(req, "function");
        const char *provider = http_request_query(req, "provider"), *filter = http_request_query(req, "filter");
        const char *after = http_request_query(req, "created_after");
        _cleanup_free_ Job **l = NULL;
        uint64_t limit, offset, after_usec = 0, count = 0;
        json_object *o, *a;
        size_t n;

        if (query_count(req, "limit", JOBS_PAGE_SIZE, &limit) < 0 || query_count(req, "offset", 0, &offset) < 0)
                return;
        limit = MIN(limit, (uint64_t) JOBS_PAGE_MAX);
        if (filter && filter[0] && !streq(filter, "catalog") && !streq(filter, "serverless"))
                return http_request_reply_errorf(req, GW_ERROR_INVALID_ARGUMENT, "\"%s\" is not a valid choice.", filter);
        if (after && after[0] && parse_iso8601(after, &after_usec) < 0)
                return http_request_reply_errorf(req, GW_ERROR_INVALID_ARGUMENT,
                                                 "Datetime has wrong format. Use one of these formats instead: "
                                                 "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].");

        l = job_registry_list(req->manager, &jf, &n);
        if (!l)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        a = json_object_new_array();
        /* newest first, as the gateway orders them */
        for (size_t i = n; a && i > 0; i--) {
                const Job *j = l[i - 1];

                if (!j->program_id || !provider_filter_matches(filter, provider, j->program_provider) ||
                    (function && function[0] && !streq(strempty(j->program), function)) ||
                    (status && status[0] && !streq(serverless_status(j->state), status)) ||
                    (after_usec && j->created_usec <= after_usec))
                        continue;
                if (count >= offset && count - offset < limit)
                        json_object_array_add(a, job_json(j, false));
                count++;
        }
        o = json_object_new_object();
        if (!o || !a) {
                json_object_put(o);
                json_object_put(a);
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        }
        json_object_object_add(o, "count", json_object_new_int64((int64_t) count));
        json_object_object_add(o, "next", offset + limit < count ? page_url(req, limit, offset + limit) : NULL);
        json_object_object_add(o, "previous", offset > 0 ? page_url(req, limit, offset > limit ? offset - limit : 0) : NULL);
        json_object_object_add(o, "results", a);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

void http_serverless_get_job(HttpRequest *req, char **captures) {
        const char *wr = http_request_query(req, "with_result");
        Job *j = find_job(req, captures[0]);

        if (!j)
                return;
        if (wr && !streq(wr, "true") && !streq(wr, "false") && !streq(wr, "True") && !streq(wr, "False") &&
            !streq(wr, "1") && !streq(wr, "0"))
                return http_request_reply_errorf(req, GW_ERROR_INVALID_ARGUMENT, "with_result: Must be a valid boolean.");
        http_request_reply_json(req, MHD_HTTP_OK,
                                job_json(j, !wr || streq(wr, "true") || streq(wr, "True") || streq(wr, "1")));
}

/* 200 {"result": "<JSON text>"} once there is one; 204 before. */
void http_serverless_get_job_result(HttpRequest *req, char **captures) {
        Job *j = find_job(req, captures[0]);
        json_object *text, *o;

        if (!j)
                return;
        text = job_result_text(j);
        if (!text)
                return http_request_reply_empty(req, MHD_HTTP_NO_CONTENT);
        o = json_object_new_object();
        if (o)
                json_object_object_add(o, "result", text);
        else
                json_object_put(text);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

/* 200 {"logs": "…"}; 204 while the job has not written any. */
void http_serverless_get_job_logs(HttpRequest *req, char **captures) {
        _cleanup_free_ char *log = NULL;
        Job *j = find_job(req, captures[0]);
        json_object *o;
        int r;

        if (!j)
                return;
        r = job_read_spool_tail(j, SPOOL_LOG, LOG_MAX, &log);
        if (r == -ENOENT)
                return http_request_reply_empty(req, MHD_HTTP_NO_CONTENT);
        if (r < 0)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Cannot read the log: %s", strerror(-r));
        o = json_object_new_object();
        if (o)
                json_object_object_add(o, "logs", json_new_string_utf8_lossy(log, strlen(log)));
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

/* The body ({"service": …}, a runtime service whose jobs the gateway cancels too) means nothing
 * here; a finished job stays as it is. */
void http_serverless_stop_job(HttpRequest *req, char **captures) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Job *j = find_job(req, captures[0]);

        if (!j)
                return;
        if (req->body_size > 0) {
                json_object *body = http_request_json_body(req);
                if (!body)
                        return;
                if (!json_object_is_type(body, json_type_object)) {
                        json_object_put(body);
                        return http_request_reply_errorf(req, GW_ERROR_INVALID_ARGUMENT, "The request body must be a JSON object.");
                }
                json_object_put(body);
        }
        if (job_state_is_terminal(j->state))
                return reply_message(req, MHD_HTTP_OK, "Job was already not running.");
        if (job_registry_cancel(j, &e) < 0 && gw_error_is_set(&e))
                return http_request_reply_error(req, &e);
        reply_message(req, MHD_HTTP_OK, "Job has been stopped.");
}
