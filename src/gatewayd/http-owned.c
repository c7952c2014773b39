/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Removing a user's object over HTTP, shared by DELETE /v1/tokens/<id> and /v1/clients/<id>. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http-api.h"
#include "http-owned.h"
#include "manager.h"
#include "polkit.h"

typedef struct RemoveOwned {
        const OwnedKind *how;
        char *id;
} RemoveOwned;

static void remove_owned_free(void *userdata) {
        RemoveOwned *o = userdata;

        if (!o)
                return;
        free(o->id);
        free(o);
}

static void reply_no_such_object(HttpRequest *req, const OwnedKind *how, const char *id) {
        http_request_reply_errorf(req, how->not_found, "No %s '%s'.", how->noun, id);
}

static void remove_now(HttpRequest *req, const OwnedKind *how, const char *id) {
        _cleanup_gw_error_ GwError e = GW_ERROR_NULL;

        if (how->remove(req->manager, id, &e) < 0)
                return http_request_reply_error(req, &e);
        http_request_reply_empty(req, MHD_HTTP_NO_CONTENT);
}

static void on_remove_checked(int r, const char *message, void *userdata) {
        HttpRequest *req = userdata;
        RemoveOwned *o = req->userdata;

        if (r > 0)
                remove_now(req, o->how, o->id);
        else if (r == -ESHUTDOWN)
                http_request_reply_errorf(req, GW_ERROR_UNAVAILABLE, "%s", message);
        else
                reply_no_such_object(req, o->how, o->id);   /* not yours: it does not exist for you */
}

static int keep_removal(HttpRequest *req, const OwnedKind *how, const char *id) {
        RemoveOwned *o;

        o = calloc(1, sizeof(RemoveOwned));
        if (!o || !(o->id = strdup(id))) {
                free(o);
                http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
                return -ENOMEM;
        }
        o->how = how;
        if (req->free_userdata)
                req->free_userdata(req->userdata);
        req->userdata = o;
        req->free_userdata = remove_owned_free;
        return 0;
}

void http_remove_owned(HttpRequest *req, const char *id, const OwnedKind *how) {
        const Caller *c = http_request_caller(req);
        int r;

        r = how->is_own(req->manager, id, c);
        if (r == -ENOENT)
                return reply_no_such_object(req, how, id);
        if (r < 0)
                return http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Failed to look up the %s.", how->noun);
        if (r > 0)
                return remove_now(req, how, id);

        if (keep_removal(req, how, id) < 0)
                return;
        r = polkit_check(req->manager, c, how->action, false, on_remove_checked, req);
        if (r == 0)
                return http_request_suspend(req);
        if (r > 0)
                return remove_now(req, how, id);
        reply_no_such_object(req, how, id);
}
