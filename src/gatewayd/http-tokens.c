/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* /v1/tokens: local users manage the tokens they use on the TCP/TLS listeners (auth-token.c).
 * The routes are HTTP_ROUTE_LOCAL_ONLY: a token cannot make more tokens. */
#include "auth-token.h"
#include "http-api.h"
#include "manager.h"
#include "polkit.h"

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

static void reply_no_such_token(HttpRequest *req, const char *id) {
        http_request_reply_errorf(req, GW_ERROR_NOT_FOUND, "No token '%s'.", id);
}

static void revoke_token(HttpRequest *req, const char *id) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;

        if (token_revoke(req->manager, id, &e) < 0)
                return http_request_reply_error(req, &e);
        http_request_reply_empty(req, MHD_HTTP_NO_CONTENT);
}

static void on_manage_tokens_checked(int r, const char *message, void *userdata) {
        HttpRequest *req = userdata;

        if (r > 0)
                revoke_token(req, req->userdata);
        else if (r == -ESHUTDOWN)
                http_request_reply_errorf(req, GW_ERROR_UNAVAILABLE, "%s", message);
        else
                reply_no_such_token(req, req->userdata);   /* not yours: it does not exist for you */
}

void http_revoke_token(HttpRequest *req, char **captures) {
        const Caller *c = http_request_caller(req);
        uid_t owner;
        int r;

        r = token_owner(req->manager, captures[0], &owner);
        if (r == -ENOENT)
                return reply_no_such_token(req, captures[0]);
        if (r < 0)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Failed to look up the token.");
        if (owner == c->uid)
                return revoke_token(req, captures[0]);

        if (http_request_keep_string(req, captures[0]) < 0)
                return;
        r = polkit_check(req->manager, c, ACTION_MANAGE_TOKENS, false, on_manage_tokens_checked, req);
        if (r == 0)
                return http_request_suspend(req);
        if (r > 0)
                return revoke_token(req, captures[0]);
        reply_no_such_token(req, captures[0]);
}
