/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include "macro.h"

#define GATEWAY_BUS_NAME "org.gatewayd.Gateway1"
#define GATEWAY_OBJECT_PATH "/org/gatewayd/Gateway1"
#define GATEWAY_SERVICE_PATH_PREFIX "/org/gatewayd/Gateway1/service"
#define GATEWAY_MANAGER_INTERFACE "org.gatewayd.Gateway1.Manager"
#define GATEWAY_SERVICE_INTERFACE "org.gatewayd.Gateway1.Service"

/* Connects to the system bus ($DBUS_SYSTEM_BUS_ADDRESS is honoured, as in every sd-bus
 * program). Interactive polkit authorization is allowed when stdin is a terminal, unless
 * --no-ask-password was given. Logs on failure. */
int ctl_bus_connect(sd_bus **ret);

/* The text to show for a failed call: the daemon's error message, with a hint where the name
 * alone would puzzle a user (daemon not running, access denied by the bus policy). */
const char *ctl_bus_error_message(const sd_bus_error *e, int r);

/* Calls a method of the Manager object. */
int ctl_call_manager(sd_bus *bus, const char *method, sd_bus_error *error, sd_bus_message **reply,
                     const char *types, ...);

/* Calls a Manager method that returns a JSON string ("s") and parses it. On a bus error, logs
 * "Failed to <what>: <message>" and returns the error. */
struct json_object;
int ctl_call_manager_json(sd_bus *bus, const char *what, const char *method,
                          struct json_object **ret, const char *types, ...);

/* Connects (with a polkit agent) and calls a Manager method taking one id ("s") for each of
 * ids[0..n). Every id is tried; a failure logs "Failed to <action> <noun> <id>: <message>" and
 * the first error is returned after all were tried. */
int ctl_call_manager_each_id(const char *method, const char *action, const char *noun, int n, char *ids[]);

/* Object path of a service: prefix + sd_bus_path_encode(name). */
int ctl_service_path(const char *name, char **ret);

static inline void sd_bus_unrefp_(sd_bus **b) {
        sd_bus_unref(*b);
}
#define _cleanup_bus_unref_ _cleanup_(sd_bus_unrefp_)
static inline void sd_bus_message_unrefp_(sd_bus_message **m) {
        sd_bus_message_unref(*m);
}
#define _cleanup_bus_message_unref_ _cleanup_(sd_bus_message_unrefp_)
#define _cleanup_bus_error_free_ _cleanup_(sd_bus_error_free)
