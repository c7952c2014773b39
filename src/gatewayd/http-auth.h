/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "http-server.h"

typedef void (*HttpAuthorizedHandler)(HttpRequest *req);

/* Asks polkit whether the peer may perform action (asynchronously; the request is suspended
 * meanwhile), then calls next, or replies 403. Root is always allowed. */
void http_request_authorize(HttpRequest *req, const char *action, HttpAuthorizedHandler next);
