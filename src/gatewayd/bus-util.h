/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include <json-c/json.h>

#include "caller.h"
#include "gw-error.h"

typedef struct Manager Manager;

/* The rest of an admin method, run once polkit said yes. It reads its arguments from the
 * (rewound) message and sends the reply itself; a negative return is turned into an error
 * reply. */
typedef int (*BusAuthorizedHandler)(Manager *m, sd_bus_message *message, sd_bus_error *error);

/* Checks the action for the sender of message with polkit, asynchronously, then runs handler.
 * Returns what an sd-bus method handler should return. */
int bus_verify_polkit_then(Manager *m, sd_bus_message *message, const char *action,
                           BusAuthorizedHandler handler, sd_bus_error *error);

/* The sender's identity, from the bus daemon (never from the message body). */
int bus_get_caller(sd_bus_message *message, Caller *ret);

/* A JSON argument of a method call, held to the same rules as an HTTP body
 * (json_parse_untrusted()). Returns 0 and the value (NULL for "null"), or a negative errno with
 * e set (BadRequest naming what and the offset). */
int bus_parse_json_argument(const char *text, const char *what, json_object **ret, GwError *e);

/* Getter of an "s" property whose vtable offset points at a char* field: NULL reads as "". */
int bus_property_get_string(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error);

/* Replies with o as JSON text (a method returning "s") and drops o; NULL (a failed allocation)
 * is -ENOMEM. */
int bus_reply_json(sd_bus_message *message, json_object *o);
