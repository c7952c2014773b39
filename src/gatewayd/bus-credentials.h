/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

#include <json-c/json.h>

#include "caller.h"

/* Reads the (s options_json) argument of CreateToken and CreateClient and the caller. "" and
 * "null" mean no options (*ret = NULL). Returns 0, or what the method handler should return. */
int bus_read_credential_options(sd_bus_message *message, Caller *caller, json_object **ret, sd_bus_error *error);

/* Appends the scope bits as "as", by their names. */
int bus_append_scopes(sd_bus_message *reply, unsigned scopes);
