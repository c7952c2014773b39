/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <systemd/sd-bus.h>

/* Manager methods CreateClient(s options_json) → s json, ListClients() → a(ssttas) (id, name,
 * creation and last use in µs since the epoch, scopes), RemoveClient(s id): the D-Bus side of
 * /v1/clients (auth-client.c), docs/dbus-api.md. */
int bus_method_create_client(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_list_clients(sd_bus_message *message, void *userdata, sd_bus_error *error);
int bus_method_remove_client(sd_bus_message *message, void *userdata, sd_bus_error *error);
