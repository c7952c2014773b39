/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

/* Manager methods CreateToken(s options_json) → s json, ListTokens() → a(sttas) (id, created
 * and expiry in µs since the epoch, scopes), RevokeToken(s id): docs/dbus-api.md. */
int bus_method_create_token(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_list_tokens(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_revoke_token(sd_bus_message *message, void *userdata, sd_bus_error *error);
