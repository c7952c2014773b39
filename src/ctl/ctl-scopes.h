/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>

#include <json-c/json.h>
#include <systemd/sd-bus.h>

/* Adds --scope's values (if given) to the options of CreateToken/CreateClient as "scope". */
void ctl_options_add_scope(json_object *options);

/* Reads the "as" of scope names of a token or client from reply into the JSON array scopes and
 * into text, comma separated (cut at size). Returns >= 0 or a negative errno. */
int ctl_read_scopes(sd_bus_message *reply, json_object *scopes, char *text, size_t size);
