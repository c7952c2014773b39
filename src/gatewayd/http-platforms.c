/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdlib.h>

#include "http-api.h"
#include "http-auth.h"
#include "manager.h"
#include "platform-record.h"

/* The platforms of the configuration (DESIGN.md §3) and their nodes: reading is open to every
 * local user (and the "read" scope on TCP/TLS); draining and resuming a node needs
 * org.gatewayd.manage-platforms. */

#define ACTION_MANAGE_PLATFORMS "org.gatewayd.manage-platforms"

void http_list_platforms(HttpRequest *req, char **captures) {
        _cleanup_free_ Platform **l = platforms_sorted(req->manager);
        json_object *o, *a;

        if (!l)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");

        a = json_object_new_array();
        o = json_object_new_object();
        if (!a || !o) {
                json_object_put(a);
                json_object_put(o);
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        }
        for (Platform **p = l; *p; p++)
                json_object_array_add(a, platform_to_json(*p));
        json_object_object_add(o, "platforms", a);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

void http_get_platform(HttpRequest *req, char **captures) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        Platform *p = platform_lookup(req->manager, captures[0], &e);
        json_object *o;

        if (!p)
                return http_request_reply_error(req, &e);
        o = platform_to_json(p);
        if (!o)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

/* The platform and node names from the path, kept across the polkit check as "platform\0node". */
static int keep_names(HttpRequest *req, char **captures) {
        size_t a = strlen(captures[0]) + 1, b = strlen(captures[1]) + 1;
        char *s = malloc(a + b);

        if (!s) {
                http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
                return -ENOMEM;
        }
        memcpy(s, captures[0], a);
        memcpy(s + a, captures[1], b);
        if (req->free_userdata)
                req->free_userdata(req->userdata);
        req->userdata = s;
        req->free_userdata = free;
        return 0;
}

static void set_drain_authorized(HttpRequest *req, bool drain) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        const char *platform = req->userdata, *node = platform + strlen(platform) + 1;
        json_object *n = NULL;

        if (platform_set_node_drain(req->manager, platform, node, drain, &n, &e) < 0)
                return http_request_reply_error(req, &e);
        http_request_reply_json(req, MHD_HTTP_OK, n);
}

static void drain_node_authorized(HttpRequest *req) {
        set_drain_authorized(req, true);
}

static void resume_node_authorized(HttpRequest *req) {
        set_drain_authorized(req, false);
}

void http_drain_platform_node(HttpRequest *req, char **captures) {
        if (keep_names(req, captures) >= 0)
                http_request_authorize(req, ACTION_MANAGE_PLATFORMS, drain_node_authorized);
}

void http_resume_platform_node(HttpRequest *req, char **captures) {
        if (keep_names(req, captures) >= 0)
                http_request_authorize(req, ACTION_MANAGE_PLATFORMS, resume_node_authorized);
}
