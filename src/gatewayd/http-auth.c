/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "http-auth.h"
#include "manager.h"
#include "polkit.h"

typedef struct HttpAuthorization {
        HttpRequest *req;
        HttpAuthorizedHandler next;
} HttpAuthorization;

static void on_polkit_done(int r, const char *message, void *userdata) {
        HttpAuthorization *a = userdata;

        if (r > 0)
                a->next(a->req);
        else
                http_request_reply_errorf(a->req, r == -ESHUTDOWN ? GW_ERROR_UNAVAILABLE : GW_ERROR_ACCESS_DENIED,
                                          "%s", message ?: "Access denied.");
        free(a);
}

void http_request_authorize(HttpRequest *req, const char *action, HttpAuthorizedHandler next) {
        HttpAuthorization *a;
        int r;

        a = calloc(1, sizeof(*a));
        if (!a) {
                http_request_reply_errorf(req, GW_ERROR_INTERNAL, "Out of memory.");
                return;
        }
        *a = (HttpAuthorization) { .req = req, .next = next };

        /* A suspended request cannot be torn down by libmicrohttpd, so req outlives the check. */
        r = polkit_check(req->manager, http_request_caller(req), action, false, on_polkit_done, a);
        if (r == 0) {
                http_request_suspend(req);
                return;
        }
        free(a);
        if (r > 0)
                next(req);
        else if (r == -EACCES)
                http_request_reply_errorf(req, GW_ERROR_ACCESS_DENIED, "Only administrators (Admins) may do this over the network.");
        else
                http_request_reply_errorf(req, GW_ERROR_ACCESS_DENIED,
                                          "Authorization for %s could not be checked (polkit unavailable); only root may do this.",
                                          action);
}
