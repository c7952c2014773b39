/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* /v1/tokens: local users manage the tokens they use on the TCP/TLS listeners (auth-token.c).
 * The routes are HTTP_ROUTE_LOCAL_ONLY: a token cannot make more tokens. */
#include "auth-token.h"
#include "http-api.h"
#include "http-owned.h"
#include "manager.h"

void http_create_token(HttpRequest *req, char **captures) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        json_object *body, *o;
        uint64_t expires_in;
        unsigned scopes;
        int r;

        /* Both fields are optional; "{}" asks for the defaults. */
        body = http_request_json_body(req);
        if (!body)
                return;
        r = token_parse_request(body, &expires_in, &scopes, &e);
        json_object_put(body);
        if (r < 0)
                return http_request_reply_error(req, &e);
        if (token_create(req->manager, http_request_caller(req), expires_in, scopes, &o, &e) < 0)
                return http_request_reply_error(req, &e);
        http_request_reply_json(req, MHD_HTTP_CREATED, o);
        http_request_add_header(req, "Cache-Control", "no-store");
}

void http_list_tokens(HttpRequest *req, char **captures) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;
        json_object *a, *o;

        if (token_list(req->manager, http_request_caller(req)->uid, false, &a, &e) < 0)
                return http_request_reply_error(req, &e);
        o = json_object_new_object();
        json_object_object_add(o, "tokens", a);
        http_request_reply_json(req, MHD_HTTP_OK, o);
}

void http_revoke_token(HttpRequest *req, char **captures) {
        http_remove_owned(req, captures[0], &token_owned_kind);
}
