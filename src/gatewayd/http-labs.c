/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "http-api.h"
#include "http-auth.h"
#include "lab-access.h"
#include "lab-instance.h"
#include "lab-registry.h"
#include "hashmap.h"
#include "log.h"
#include "manager.h"

#define ACTION_MANAGE_LABS "org.gatewayd.manage-labs"

static void reply_lab(HttpRequest *req, unsigned status, Lab *l) {
        const char *j = lab_json(l);

        if (!j)
                http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        else
                http_request_reply_text(req, status, j);
}

void http_list_labs(HttpRequest *req, char **captures) {
        _cleanup_free_ Lab **l = lab_registry_list(req->manager, NULL);
        json_object *o, *a;

        if (!l)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        a = json_object_new_array();
        for (Lab **i = l; *i; i++)
                json_object_array_add(a, lab_to_json(*i));
        o = json_object_new_object();
        json_object_object_add(o, "labs", a);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

void http_get_lab(HttpRequest *req, char **captures) {
        Lab *l = lab_registry_get(req->manager, captures[0]);

        if (!l)
                return http_request_reply_errorf(req, GW_ERROR_NOT_FOUND, "No lab '%s'.", captures[0]);
        reply_lab(req, MHD_HTTP_OK, l);
}

static void put_lab_authorized(HttpRequest *req) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_free_ char *location = NULL;
        json_object *spec;
        bool created;
        Lab *l;
        int r;

        spec = http_request_json_body(req);
        if (!spec)
                return;
        r = lab_registry_put(req->manager, req->userdata, spec, &l, &created, &e);
        json_object_put(spec);
        if (r < 0)
                return http_request_reply_error(req, &e);

        reply_lab(req, created ? MHD_HTTP_CREATED : MHD_HTTP_OK, l);
        if (created && asprintf(&location, "/v1/labs/%s", l->name) >= 0)
                http_request_add_header(req, MHD_HTTP_HEADER_LOCATION, location);
}

void http_put_lab(HttpRequest *req, char **captures) {
        if (http_request_keep_string(req, captures[0]) < 0)
                return;
        http_request_authorize(req, ACTION_MANAGE_LABS, put_lab_authorized);
}

static void remove_lab_authorized(HttpRequest *req) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;

        if (lab_registry_remove(req->manager, req->userdata, &e) < 0)
                return http_request_reply_error(req, &e);
        http_request_reply_empty(req, MHD_HTTP_NO_CONTENT);
}

void http_remove_lab(HttpRequest *req, char **captures) {
        if (http_request_keep_string(req, captures[0]) < 0)
                return;
        http_request_authorize(req, ACTION_MANAGE_LABS, remove_lab_authorized);
}

/* ---- instances: any local user, their own only (others' do not exist for them: 404) ---- */

static void reply_instance(HttpRequest *req, unsigned status, LabInstance *i) {
        json_object *o = lab_instance_to_json(i);

        if (!o)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        http_request_reply_json(req, status, o);
}

/* A new instance comes with its first access token; without one (no key) it is still made. */
static void reply_new_instance(HttpRequest *req, LabInstance *i) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        json_object *o = lab_instance_to_json(i), *access = NULL;

        if (!o)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        if (lab_access_token(req->manager, i, &access, &e) < 0)
                log_warning("Lab instance %s: no access token: %s", i->id, strna(e.message));
        json_object_object_add(o, "access", access);
        http_request_reply_json(req, MHD_HTTP_CREATED, o);
}

void http_create_lab_instance(HttpRequest *req, char **captures) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_free_ char *location = NULL;
        LabInstance *i;

        if (lab_instance_create(req->manager, captures[0], http_request_caller(req), &i, &e) < 0)
                return http_request_reply_error(req, &e);
        reply_new_instance(req, i);
        if (asprintf(&location, "/v1/lab-instances/%s", i->id) >= 0)
                http_request_add_header(req, MHD_HTTP_HEADER_LOCATION, location);
}

void http_list_lab_instances(HttpRequest *req, char **captures) {
        _cleanup_free_ LabInstance **l = lab_instance_list(req->manager, http_request_caller(req), NULL);
        json_object *o, *a;

        if (!l)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        a = json_object_new_array();
        for (LabInstance **i = l; *i; i++)
                json_object_array_add(a, lab_instance_to_json(*i));
        o = json_object_new_object();
        json_object_object_add(o, "instances", a);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

void http_get_lab_instance(HttpRequest *req, char **captures) {
        LabInstance *i = lab_instance_get(req->manager, captures[0], http_request_caller(req));

        if (!i)
                return http_request_reply_errorf(req, GW_ERROR_NOT_FOUND, "No lab instance '%s'.", captures[0]);
        reply_instance(req, MHD_HTTP_OK, i);
}

void http_remove_lab_instance(HttpRequest *req, char **captures) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        LabInstance *i = lab_instance_get(req->manager, captures[0], http_request_caller(req));

        if (!i)
                return http_request_reply_errorf(req, GW_ERROR_NOT_FOUND, "No lab instance '%s'.", captures[0]);
        if (lab_instance_remove(i, &e) < 0)
                return http_request_reply_error(req, &e);
        http_request_reply_empty(req, MHD_HTTP_NO_CONTENT);
}

void http_lab_instance_token(HttpRequest *req, char **captures) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        LabInstance *i = lab_instance_get(req->manager, captures[0], http_request_caller(req));
        json_object *access;

        if (!i)
                return http_request_reply_errorf(req, GW_ERROR_NOT_FOUND, "No lab instance '%s'.", captures[0]);
        if (lab_access_token(req->manager, i, &access, &e) < 0)
                return http_request_reply_error(req, &e);
        http_request_reply_json(req, MHD_HTTP_OK, access);
}

/* gateway-proxy's question (it runs as root and asks on the unix socket): any instance, with its
 * owner, so that it can check the token's owner and find the network namespace. */
void http_lab_instance_access(HttpRequest *req, char **captures) {
        LabInstance *i = req->manager->lab_instances ? hashmap_get(req->manager->lab_instances, captures[0]) : NULL;
        json_object *o;

        if (http_request_caller(req)->uid != 0)
                return http_request_reply_errorf(req, GW_ERROR_ACCESS_DENIED, "Only gateway-proxy (root) asks this.");
        if (!i)
                return http_request_reply_errorf(req, GW_ERROR_NOT_FOUND, "No lab instance '%s'.", captures[0]);
        o = lab_access_record(i);
        if (!o)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        http_request_reply_json(req, MHD_HTTP_OK, o);
}
