/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The native programs API (docs/programs.md): /v1/programs. A program exists only for its owner:
 * anyone else (root included) gets 404, as for jobs. A provider's program (?provider=P) exists
 * for P's admins and users (program-provider.h). */
#include "http-api.h"
#include "http-auth.h"
#include "http-jobs.h"
#include "http-programs.h"
#include "job-registry.h"
#include "json-util.h"
#include "log.h"
#include "manager.h"
#include "program-provider.h"
#include "program-registry.h"

#define ACTION_SUBMIT_JOB "org.gatewayd.submit-job"

static void reply_no_such_program(HttpRequest *req, const char *title) {
        http_request_reply_errorf(req, GW_ERROR_NOT_FOUND, "No program '%s'.", title);
}

/* ?provider=P: a provider's program; absent or empty: the caller's own. */
static const char *query_provider(HttpRequest *req) {
        const char *v = http_request_query(req, "provider");

        return v && v[0] ? v : NULL;
}

static Program *find_program(HttpRequest *req, const char *title) {
        return program_registry_lookup(req->manager, http_request_caller(req), query_provider(req), title);
}

/* Everything the caller sees, or with ?provider=P only P's programs. */
void http_list_programs(HttpRequest *req, char **captures) {
        _cleanup_free_ Program **l = program_registry_list(req->manager, http_request_caller(req), NULL);
        const char *provider = query_provider(req);
        json_object *o, *a;

        if (!l)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        a = json_object_new_array();
        for (Program **p = l; *p; p++)
                if (!provider || ((*p)->provider && streq((*p)->provider, provider)))
                        json_object_array_add(a, program_to_json(*p));
        o = json_object_new_object();
        json_object_object_add(o, "programs", a);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

void http_get_program(HttpRequest *req, char **captures) {
        Program *p = find_program(req, captures[0]);

        if (!p)
                return reply_no_such_program(req, captures[0]);
        http_request_reply_json(req, MHD_HTTP_OK, program_to_json(p));
}

void http_remove_program(HttpRequest *req, char **captures) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Program *p = find_program(req, captures[0]);

        if (!p)
                return reply_no_such_program(req, captures[0]);
        if (program_check_manage(req->manager, http_request_caller(req), p, &e) < 0 ||
            program_registry_remove(req->manager, p, &e) < 0)
                return http_request_reply_error(req, &e);
        http_request_reply_empty(req, MHD_HTTP_NO_CONTENT);
}

/* ---- upload: the artifact is the body, the metadata the query ---- */

static void free_program(void *p) {
        program_free(p);
}

static int query_json(HttpRequest *req, json_object *meta, const char *key, GwError *e) {
        _cleanup_free_ char *what = NULL;
        const char *v = http_request_query(req, key);
        json_object *o;
        int r;

        if (!v)
                return 0;
        if (asprintf(&what, "Query parameter %s", key) < 0)
                return gw_error_set(e, GW_ERROR_INTERNAL, "Out of memory.");
        r = http_json_text_parse(what, v, &o, e);
        if (r < 0)
                return r;
        json_object_object_add(meta, key, o);
        return 0;
}

static int upload_metadata(HttpRequest *req, Program **ret, GwError *e) {
        static const char * const text_keys[] = { "title", "entrypoint", "description", "version", "image" };
        _cleanup_(json_object_putp) json_object *meta = json_object_new_object();
        int r;

        if (!meta)
                return gw_error_set_errno(e, -ENOMEM, "Out of memory.");
        for (size_t i = 0; i < ELEMENTSOF(text_keys); i++) {
                const char *v = http_request_query(req, text_keys[i]);
                if (v)
                        json_object_object_add(meta, text_keys[i], json_object_new_string(v));
        }
        r = query_json(req, meta, "arguments", e);
        if (r >= 0)
                r = query_json(req, meta, "env", e);
        if (r >= 0)
                r = query_json(req, meta, "dependencies", e);
        if (r < 0)
                return r;
        return program_from_metadata(meta, ret, e);
}

static void on_uploaded(Manager *m, Program *p, const GwError *error, void *userdata) {
        _cleanup_free_ char *location = NULL;
        HttpRequest *req = userdata;

        if (!p)
                return http_request_reply_error(req, error);
        http_request_reply_json(req, MHD_HTTP_CREATED, program_to_json(p));
        if (asprintf(&location, "/v1/programs/%s%s%s", p->title, p->provider ? "?provider=" : "", strempty(p->provider)) >= 0)
                http_request_add_header(req, MHD_HTTP_HEADER_LOCATION, location);
}

static void upload_authorized(HttpRequest *req) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Program *meta = TAKE_PTR(req->userdata);
        int r;

        /* The registry has the Program; the request stays suspended (not freed) until the
         * callback answers it. */
        bool replace = false;

        req->free_userdata = NULL;
        (void) http_query_bool(req, "replace", &replace);  /* checked before */
        /* no body: a program on an image of its own (the registry refuses it without one) */
        r = program_registry_upload(req->manager, http_request_caller(req), meta,
                                    req->body_size > 0 ? req->body_path : NULL, replace, on_uploaded, req, &e);
        if (r < 0)
                return http_request_reply_error(req, &e);
        if (req->body_size == 0 && req->body_path)
                (void) unlink(req->body_path);   /* empty: not taken */
        req->body_path = mfree(req->body_path);  /* the registry has it now */
        http_request_suspend(req);
}

void http_upload_program(HttpRequest *req, char **captures) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Program *meta = NULL;
        bool replace;

        if ((!req->body_path || req->body_size == 0) && !http_request_query(req, "image"))
                return http_request_reply_errorf(req, GW_ERROR_BAD_REQUEST,
                                                 "The request body must be the program's artifact (a tar or tar.gz).");
        if (http_query_bool(req, "replace", &replace) < 0)
                return;
        if (upload_metadata(req, &meta, &e) < 0)
                return http_request_reply_error(req, &e);
        /* a provider's program: its admins only (403 for its users, 404 for everyone else) */
        if ((query_provider(req) && !(meta->provider = strdup(query_provider(req)))) ||
            program_provider_check_upload(req->manager, http_request_caller(req), meta->provider, &e) < 0) {
                program_free(meta);
                if (!gw_error_is_set(&e))
                        return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
                return http_request_reply_error(req, &e);
        }
        /* A title is the caller's until removed, unless the upload asks to replace it. */
        if (!replace && find_program(req, meta->title)) {
                http_request_reply_errorf(req, GW_ERROR_ALREADY_EXISTS,
                                          "%s%s %s a program '%s' already; remove it first, or upload with replace=true.",
                                          meta->provider ? "Provider " : "You", strempty(meta->provider),
                                          meta->provider ? "has" : "have", meta->title);
                program_free(meta);
                return;
        }
        req->userdata = meta;
        req->free_userdata = free_program;
        http_request_authorize(req, ACTION_SUBMIT_JOB, upload_authorized);
}

/* ---- run ---- */

typedef struct RunContext {
        char *title;
        json_object *arguments, *env;
} RunContext;

static void run_context_free(void *p) {
        RunContext *c = p;

        if (!c)
                return;
        free(c->title);
        json_object_put(c->arguments);
        json_object_put(c->env);
        free(c);
}

int program_run_body_parse(json_object *body, json_object **ret_arguments, json_object **ret_env, GwError *e) {
        if (!json_object_is_type(body, json_type_object))
                return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "Request body must be a JSON object {\"arguments\": ..., \"env\": ...}.");
        json_object_object_foreach(body, k, v) {
                if (streq(k, "arguments"))
                        *ret_arguments = json_object_get(v);
                else if (streq(k, "env"))
                        *ret_env = json_object_get(v);
                else
                        return gw_error_set(e, GW_ERROR_INVALID_ARGUMENT, "%s: unknown key (expected \"arguments\" and \"env\").", k);
        }
        return 0;
}

static void run_committed(Manager *m, Job *j, const GwError *error, void *userdata) {
        _cleanup_free_ char *location = NULL;
        HttpRequest *req = userdata;

        if (!j)
                return http_request_reply_error(req, error);
        http_request_reply_json(req, MHD_HTTP_CREATED, job_to_json(j));
        if (asprintf(&location, "/v1/jobs/%s", j->id) >= 0)
                http_request_add_header(req, MHD_HTTP_HEADER_LOCATION, location);
}

static void run_authorized(HttpRequest *req) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_(json_object_putp) json_object *arguments = NULL;
        RunContext *c = req->userdata;
        Program *p = find_program(req, c->title);
        int r;

        if (!p)  /* removed while polkit was asked */
                return reply_no_such_program(req, c->title);
        if (program_run_arguments(p, c->arguments, c->env, &arguments, &e) < 0)
                return http_request_reply_error(req, &e);
        r = job_registry_submit_program_async(req->manager, http_request_caller(req), p, arguments, c->env,
                                              run_committed, req, &e);
        if (r < 0)
                return http_request_reply_error(req, &e);
        http_request_suspend(req);
}

void http_run_program(HttpRequest *req, char **captures) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        RunContext *c;
        json_object *body = NULL;

        if (!find_program(req, captures[0]))
                return reply_no_such_program(req, captures[0]);
        c = calloc(1, sizeof(RunContext));
        if (!c || !(c->title = strdup(captures[0]))) {
                free(c);
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        }
        req->userdata = c;
        req->free_userdata = run_context_free;
        if (req->body_size > 0) {  /* no body: the program's default arguments */
                body = http_request_json_body(req);
                if (!body)
                        return;
                if (program_run_body_parse(body, &c->arguments, &c->env, &e) < 0) {
                        json_object_put(body);
                        return http_request_reply_error(req, &e);
                }
                json_object_put(body);
        }
        http_request_authorize(req, ACTION_SUBMIT_JOB, run_authorized);
}
