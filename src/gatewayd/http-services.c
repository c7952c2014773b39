/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "http-api.h"
#include "http-auth.h"
#include "manager.h"
#include "service-registry.h"

#define ACTION_MANAGE_SERVICES "org.gatewayd.manage-services"

static void reply_service(HttpRequest *req, unsigned status, Service *s) {
        const char *j = service_json(s);

        if (!j)
                http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        else
                http_request_reply_text(req, status, j);
}

void http_list_services(HttpRequest *req, char **captures) {
        _cleanup_free_ Service **l = service_registry_list(req->manager, NULL);
        json_object *o, *a;

        if (!l)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        a = json_object_new_array();
        for (Service **s = l; *s; s++)
                json_object_array_add(a, service_to_json(*s));
        o = json_object_new_object();
        json_object_object_add(o, "services", a);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

void http_get_service(HttpRequest *req, char **captures) {
        Service *s = service_registry_get(req->manager, captures[0]);

        if (!s)
                return http_request_reply_errorf(req, GW_ERROR_NO_SUCH_SERVICE, "No service '%s'.", captures[0]);
        reply_service(req, MHD_HTTP_OK, s);
}

static void create_service_authorized(HttpRequest *req) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_free_ char *location = NULL;
        json_object *spec;
        Service *s;
        int r;

        spec = http_request_json_body(req);
        if (!spec)
                return;
        r = service_registry_create(req->manager, spec, &s, &e);
        json_object_put(spec);
        if (r < 0)
                return http_request_reply_error(req, &e);

        reply_service(req, MHD_HTTP_CREATED, s);
        if (asprintf(&location, "/v1/services/%s", s->name) >= 0)
                http_request_add_header(req, MHD_HTTP_HEADER_LOCATION, location);
}

void http_create_service(HttpRequest *req, char **captures) {
        http_request_authorize(req, ACTION_MANAGE_SERVICES, create_service_authorized);
}

static void update_service_authorized(HttpRequest *req) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        json_object *spec;
        Service *s;
        int r;

        spec = http_request_json_body(req);
        if (!spec)
                return;
        r = service_registry_update(req->manager, req->userdata, spec, &s, &e);
        json_object_put(spec);
        if (r < 0)
                return http_request_reply_error(req, &e);
        reply_service(req, MHD_HTTP_OK, s);
}

void http_update_service(HttpRequest *req, char **captures) {
        if (http_request_keep_string(req, captures[0]) < 0)
                return;
        http_request_authorize(req, ACTION_MANAGE_SERVICES, update_service_authorized);
}

static void remove_service_authorized(HttpRequest *req) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;

        if (service_registry_remove(req->manager, req->userdata, &e) < 0)
                return http_request_reply_error(req, &e);
        http_request_reply_empty(req, MHD_HTTP_NO_CONTENT);
}

void http_remove_service(HttpRequest *req, char **captures) {
        if (http_request_keep_string(req, captures[0]) < 0)
                return;
        http_request_authorize(req, ACTION_MANAGE_SERVICES, remove_service_authorized);
}
