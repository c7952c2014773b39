/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* /v1/clients: local users manage PlanQK client credentials (auth-client.c), which clients trade
 * for tokens at POST /token (http-oauth.c). HTTP_ROUTE_LOCAL_ONLY, like /v1/tokens: a token
 * cannot make credentials. Someone else's client is removed as someone else's token is revoked:
 * with org.gatewayd.manage-tokens; without it, it does not exist. */
#include "auth-client.h"
#include "http-api.h"
#include "http-owned.h"
#include "manager.h"

void http_create_client(HttpRequest *req, char **captures) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        _cleanup_free_ char *name = NULL;
        json_object *body, *o;
        unsigned scopes;
        int r;

        body = http_request_json_body(req);
        if (!body)
                return;
        r = client_parse_request(body, &scopes, &name, &e);
        json_object_put(body);
        if (r < 0)
                return http_request_reply_error(req, &e);
        if (client_create(req->manager, http_request_caller(req), scopes, name, &o, &e) < 0)
                return http_request_reply_error(req, &e);
        http_request_reply_json(req, MHD_HTTP_CREATED, o);
        http_request_add_header(req, "Cache-Control", "no-store");
}

void http_list_clients(HttpRequest *req, char **captures) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        json_object *a, *o;

        if (client_list(req->manager, http_request_caller(req)->uid, &a, &e) < 0)
                return http_request_reply_error(req, &e);
        o = json_object_new_object();
        if (o)
                json_object_object_add(o, "clients", a);
        else
                json_object_put(a);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

void http_remove_client(HttpRequest *req, char **captures) {
        http_remove_owned(req, captures[0], &client_owned_kind);
}
