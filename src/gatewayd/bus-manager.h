/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

typedef struct Manager Manager;

#define MANAGER_OBJECT_PATH "/org/gatewayd/Gateway1"
#define MANAGER_INTERFACE "org.gatewayd.Gateway1.Manager"

int bus_manager_register(Manager *m);
void bus_manager_emit_n_services(Manager *m);
/* Subscribes the signals to the registries' events (registry-events.h). */
int bus_subscribe_registries(Manager *m);
