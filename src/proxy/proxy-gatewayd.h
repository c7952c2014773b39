/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "macro.h"

/* gateway-proxy asks gatewayd, over its unix socket and as root, about an instance before it
 * lets a connection through (GET /v1/lab-instances/{id}/access): gatewayd is the only keeper of
 * which instances exist, where their network namespace is and what their members listen on, so
 * a deleted instance stops being reachable at once. One request per connection, asynchronous. */

typedef struct GatewaydQuery GatewaydQuery;

/* r < 0: gatewayd could not be asked (status 0); otherwise its HTTP status and JSON body (NULL
 * if there is none). Called once, from the loop, unless the query is freed first. */
typedef void (*GatewaydAnswered)(int r, unsigned status, json_object *body, void *userdata);

int gatewayd_query_start(sd_event *event, const char *socket_path, const char *path, GatewaydAnswered done,
                         void *userdata, GatewaydQuery **ret);
GatewaydQuery *gatewayd_query_free(GatewaydQuery *q);
DEFINE_TRIVIAL_CLEANUP_FUNC(GatewaydQuery *, gatewayd_query_free);
